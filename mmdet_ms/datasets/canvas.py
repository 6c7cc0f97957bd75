"""Fixed batch canvases for training (``data.train.pad_to``).

Padding every batch to its own largest image (the original's way) gives a compiled training step
a new input shape for nearly every multi-scale batch, and each new shape compiles again. With
canvases every batch is zero-padded at the bottom/right to the smallest-area canvas of a fixed
set that holds all its images, a canvas (long, short) laid out in the batch's orientation:
landscape batches (largest width > largest height) get (H, W) = (short, long), the others
(long, short) (the sampler never mixes the two aspect groups). A run compiles the step for at
most one shape per canvas and orientation.

- ``None``: each batch padded to its own largest height and width (rounded up to 32);
- ``(long, short)``: one canvas; ``[(long, short), ...]``: buckets (multiples of 32);
- ``'auto'``: buckets derived from the train pipeline's ``Resize`` (`pipeline_canvases`);
  per-batch padding when the pipeline does not bound the sizes (no ``Resize`` with
  ``img_scale``, or a ``Pad`` to a fixed size).

Why buckets: on a simulated COCO-like mix (aspect ratios 4:3, 3:2, 16:9, 1:1; 3x multi-scale
short sides 640..800; batch 2; tests/test_train_data.py) one canvas of the largest size computes
1.31× the pixels of per-batch padding, the 6 canvases of 'auto' 1.11×.
"""
import math
import numbers

from ..registry import ConfigError
from .transforms.geometric import Pad, Resize

PAD_TO_KEY = "data.train.pad_to"


def _is_canvas(value):
    return (isinstance(value, (tuple, list)) and len(value) == 2
            and all(isinstance(side, numbers.Integral) and side > 0 for side in value))


def _by_area(canvas):
    return canvas[0] * canvas[1], tuple(canvas)


def _explicit_canvases(pad_to):
    """(long, short) or a non-empty list of them → sorted tuple of (long, short) int tuples;
    ConfigError otherwise."""
    canvases = [pad_to] if _is_canvas(pad_to) else pad_to
    if (not isinstance(canvases, (tuple, list)) or not canvases
            or not all(_is_canvas(canvas) for canvas in canvases)):
        raise ConfigError(f"{PAD_TO_KEY} must be None, 'auto', (long, short) positive ints or a "
                          f"non-empty list of them, e.g. (1344, 800); got {pad_to!r}")
    for long_side, short_side in canvases:
        if long_side < short_side:
            raise ConfigError(f"{PAD_TO_KEY}={pad_to!r}: each canvas is (long, short) with "
                              f"long >= short; got {(long_side, short_side)}")
    return tuple(sorted({(int(long_side), int(short_side)) for long_side, short_side in canvases},
                        key=_by_area))


def check_pad_to(pad_to):
    """Raise `ConfigError` unless ``pad_to`` is None, ``'auto'``, (long, short) positive ints with
    long >= short or a non-empty list of them."""
    if pad_to is None or pad_to == "auto":
        return
    _explicit_canvases(pad_to)


def _round_up(side, divisor):
    return math.ceil(side / divisor) * divisor


def pipeline_canvases(transforms, size_divisor=32):
    """The canvases (long, short) for what ``transforms``' Resize can produce, smallest area first,
    each side rounded up to the Pad's size_divisor and ``size_divisor``; or (None, why not).

    Exact scales (keep_ratio=False, 'value' mode): one canvas per scale. Otherwise, with S the
    largest short side the Resize allows, s the smallest and L the largest long side: short sides
    S and (s + S) / 2, long sides S + k (L - S) / 3 for k = 1, 2, 3, each long with each short;
    e.g. 2 × 3 canvases for the 3x multi-scale COCO Resize, 3 for a single scale, 1 for a square.
    """
    resizes = [t for t in transforms if isinstance(t, Resize)]
    pads = [t for t in transforms if isinstance(t, Pad)]
    if len(resizes) != 1 or resizes[0].img_scales is None:
        return None, "the train pipeline has no single Resize with an img_scale"
    if any(pad.size is not None for pad in pads):
        return None, "the train pipeline's Pad pads every image to a fixed size already"
    divisor = math.lcm(size_divisor, *(pad.size_divisor for pad in pads))
    resize = resizes[0]
    scales = resize.img_scales
    if not resize.keep_ratio and resize.multiscale_mode == "value":
        canvases = [(max(scale), min(scale)) for scale in scales]
    else:
        # keep_ratio: long side <= max(scale), short side <= min(scale); 'range' draws both edges
        long_side = max(max(scale) for scale in scales)
        short_sides = [min(scale) for scale in scales]
        largest, smallest = max(short_sides), min(short_sides)
        canvases = [(largest + k * (long_side - largest) / 3, short)
                    for k in (1, 2, 3) for short in (largest, (smallest + largest) / 2)]
    rounded = {tuple(_round_up(side, divisor) for side in canvas) for canvas in canvases}
    return tuple(sorted(rounded, key=_by_area)), None


def resolve_canvas(pad_to, transforms, size_divisor=32):
    """``pad_to`` (see the module docstring) → (the canvases, (long, short) each, smallest area
    first, or None for per-batch padding; one line saying how the training batches are padded)."""
    check_pad_to(pad_to)
    if pad_to is None:
        return None, f"{PAD_TO_KEY}=None: each batch padded to its own size"
    if pad_to == "auto":
        canvases, why_not = pipeline_canvases(transforms, size_divisor)
        if canvases is None:
            return None, (f"{PAD_TO_KEY}='auto': {why_not}, so each batch is padded to its own "
                          "size (a compiled step compiles once per new size)")
    else:
        canvases = _explicit_canvases(pad_to)
        if any(side % size_divisor for canvas in canvases for side in canvas):
            rounded = [tuple(_round_up(side, size_divisor) for side in canvas)
                       for canvas in canvases]
            example = rounded[0] if len(rounded) == 1 else rounded
            raise ConfigError(f"{PAD_TO_KEY}={pad_to!r}: every side must be a multiple of "
                              f"{size_divisor}, e.g. {example}")
    which = ("the canvas" if len(canvases) == 1
             else f"the smallest of {len(canvases)} canvases that fits it,")
    listed = ", ".join(f"{long_side}x{short_side}" for long_side, short_side in canvases)
    return canvases, (f"{PAD_TO_KEY}={pad_to!r}: each batch padded to {which} long x short "
                      f"(W x H for landscape batches, H x W for the others): {listed}")


def canvas_hw(canvases, sizes, names=None):
    """(H, W) of the smallest-area canvas of ``canvases`` ((long, short) each) that holds every
    image of ``sizes`` ((H, W) each) in the batch's orientation: landscape (the largest width >
    the largest height) → (short, long), otherwise (long, short). When none holds them, ValueError
    naming an image larger than the largest canvas (``names``: one per image, e.g. file names)."""
    largest_h, largest_w = max(h for h, _ in sizes), max(w for _, w in sizes)
    landscape = largest_w > largest_h
    layouts = [(short_side, long_side) if landscape else (long_side, short_side)
               for long_side, short_side in sorted(canvases, key=_by_area)]
    for canvas_h, canvas_w in layouts:
        if largest_h <= canvas_h and largest_w <= canvas_w:
            return canvas_h, canvas_w
    # the largest canvas holds each image alone iff it holds the batch, so one does not fit it
    canvas_h, canvas_w = layouts[-1]
    slot, (height, width) = next((slot, (height, width)) for slot, (height, width)
                                 in enumerate(sizes) if height > canvas_h or width > canvas_w)
    name = f" ({names[slot]})" if names else ""
    largest = "canvas" if len(layouts) == 1 else "largest canvas"
    raise ValueError(f"an image of {width}x{height} (W x H){name} does not fit the {largest} of "
                     f"{PAD_TO_KEY} ({canvas_w}x{canvas_h}); make it larger, or set {PAD_TO_KEY} "
                     "to 'auto' or None")
