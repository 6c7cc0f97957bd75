"""Chaining transforms: ``Compose`` and the (single-scale) test-time wrapper ``MultiScaleFlipAug``.

Every transform takes a results dict and returns it (or None to drop the sample), so a pipeline is
a list of config dicts such as ``dict(type='Resize', img_scale=(1333, 800))``.
"""
import numbers
from collections.abc import Sequence

from ...registry import PIPELINES, ConfigError


@PIPELINES.register_module()
class Compose:
    """Run transforms in order; stop and return None as soon as one returns None.

    Args:
        transforms: list of config dicts (built through ``PIPELINES``) or callables.
    """

    def __init__(self, transforms):
        if isinstance(transforms, (str, dict)) or not isinstance(transforms, Sequence):
            raise ConfigError(f"a pipeline must be a list of transforms, got {transforms!r}")
        self.transforms = [self._build(transform) for transform in transforms]

    @staticmethod
    def _build(transform):
        if isinstance(transform, dict):
            return PIPELINES.build(transform)
        if callable(transform):
            return transform
        raise ConfigError(f"a pipeline step must be a config dict or a callable, got {transform!r}")

    def __call__(self, results):
        for transform in self.transforms:
            results = transform(results)
            if results is None:
                return None
        return results

    def __repr__(self):
        steps = "".join(f"\n    {transform!r}," for transform in self.transforms)
        return f"{type(self).__name__}({steps}\n)"


def _single_scale(img_scale):
    """``(w, h)`` or ``[(w, h)]`` -> ``(w, h)``; anything else is a ConfigError."""
    if isinstance(img_scale, list) and len(img_scale) == 1:
        img_scale = img_scale[0]
    if (isinstance(img_scale, (tuple, list)) and len(img_scale) == 2
            and all(isinstance(side, numbers.Integral) and side > 0 for side in img_scale)):
        return tuple(int(side) for side in img_scale)
    raise ConfigError(
        f"MultiScaleFlipAug: img_scale must be one (long, short) pair, got {img_scale!r}; "
        "SOLOv2 has no test-time augmentation, so several scales are not supported")


@PIPELINES.register_module()
class MultiScaleFlipAug:
    """Test-time wrapper kept for config compatibility with mmdetection 1.0.

    The original ran its transforms once per (scale, flip) pair and returned lists. SOLOv2 never
    used test-time augmentation, so this accepts exactly one scale and ``flip=False``, sets
    ``results['scale']`` and ``results['flip']`` for ``Resize`` / ``RandomFlip``, and returns a
    single results dict.
    """

    def __init__(self, transforms, img_scale, flip=False):
        if flip:
            raise ConfigError("MultiScaleFlipAug: flip=True is not supported; SOLOv2 has no "
                              "test-time augmentation, set flip=False")
        self.img_scale = _single_scale(img_scale)
        self.transforms = Compose(transforms)

    def __call__(self, results):
        results = dict(results, scale=self.img_scale, flip=False)
        return self.transforms(results)

    def __repr__(self):
        return f"{type(self).__name__}(img_scale={self.img_scale}, transforms={self.transforms!r})"
