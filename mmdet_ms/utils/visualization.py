"""Instance masks, contours and labels drawn on an image; detections as a text table."""
import colorsys
import os

import cv2
import numpy as np

# Stepping the hue by the golden ratio's conjugate spreads any number of colours around the
# wheel with consecutive ones far apart, and is the same on every run.
_HUE_STEP = 0.618033988749895
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_LABEL_PADDING = 2


def instance_color(index):
    """A saturated BGR colour for the ``index``-th instance (deterministic, distinct neighbours)."""
    red, green, blue = colorsys.hsv_to_rgb((0.1 + index * _HUE_STEP) % 1.0, 0.85, 0.95)
    return int(blue * 255), int(green * 255), int(red * 255)


def _text_color_on(bgr):
    """Black text on a light fill, white on a dark one (ITU-R BT.601 luma)."""
    blue, green, red = bgr
    return (0, 0, 0) if 0.299 * red + 0.587 * green + 0.114 * blue > 140 else (255, 255, 255)


def _class_name(class_names, label):
    if not 0 <= label < len(class_names):
        raise ValueError(f"label {label} has no class name: {len(class_names)} names given")
    return class_names[label]


def _check_inputs(img_bgr, result):
    if img_bgr.ndim != 3 or img_bgr.shape[2] != 3 or img_bgr.dtype != np.uint8:
        raise ValueError(f"draw_instances expects a (H, W, 3) uint8 BGR image, got "
                         f"{img_bgr.dtype} {img_bgr.shape}")
    if len(result) and tuple(result.masks.shape[1:]) != tuple(img_bgr.shape[:2]):
        raise ValueError(f"masks of size {tuple(result.masks.shape[1:])} do not match the image "
                         f"size {tuple(img_bgr.shape[:2])}")


def _blend_mask(canvas, mask, color, alpha):
    """canvas[mask] = (1 - alpha) * canvas[mask] + alpha * color, in place."""
    blended = canvas[mask].astype(np.float32) * (1.0 - alpha) + np.float32(alpha) * np.array(
        color, np.float32)
    canvas[mask] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def _draw_contours(canvas, mask, color, thickness):
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(canvas, contours, -1, color, thickness)


def _draw_label(canvas, text, box, color, font_scale):
    """``text`` on a filled box just above the instance's box (inside it at the image top)."""
    height, width = canvas.shape[:2]
    thickness = max(1, int(round(font_scale * 1.5)))
    (text_width, text_height), baseline = cv2.getTextSize(text, _FONT, font_scale, thickness)
    label_width = text_width + 2 * _LABEL_PADDING
    label_height = text_height + baseline + 2 * _LABEL_PADDING
    x1, y1 = int(box[0]), int(box[1])
    left = max(0, min(x1, width - label_width))
    top = y1 - label_height if y1 >= label_height else min(y1, max(0, height - label_height))
    cv2.rectangle(canvas, (left, top), (left + label_width - 1, top + label_height - 1), color,
                  thickness=-1)
    origin = (left + _LABEL_PADDING, top + _LABEL_PADDING + text_height)
    cv2.putText(canvas, text, origin, _FONT, font_scale, _text_color_on(color), thickness,
                cv2.LINE_AA)


def draw_instances(img_bgr, result, class_names, score_thr=0.3, alpha=0.5):
    """A new BGR uint8 image with the instances of ``result`` scoring ``>= score_thr`` drawn.

    Each instance gets a translucent mask (``alpha`` of its colour), its outline, and a
    "name score" label on a filled box at its top. Masks are painted largest first so small
    instances stay visible; labels come last so no mask covers one.

    Args:
        img_bgr: (H, W, 3) uint8, the image the masks were predicted on.
        result: InstanceResult with (N, H, W) masks.
        class_names: names indexed by the 0-based labels.
    """
    img_bgr = np.asarray(img_bgr)
    _check_inputs(img_bgr, result)
    canvas = img_bgr.copy()
    shown = np.flatnonzero(np.asarray(result.scores) >= score_thr)  # highest score first
    if shown.size == 0:
        return canvas
    masks = np.asarray(result.masks, dtype=bool)
    colors = {index: instance_color(rank) for rank, index in enumerate(shown)}
    areas = masks[shown].sum(axis=(1, 2))
    paint_order = shown[np.argsort(-areas, kind="stable")]
    short_side = min(canvas.shape[:2])
    contour_thickness = max(1, short_side // 500)
    for index in paint_order:
        _blend_mask(canvas, masks[index], colors[index], alpha)
        _draw_contours(canvas, masks[index], colors[index], contour_thickness)
    font_scale = float(np.clip(short_side / 900.0, 0.35, 1.5))
    boxes = result.boxes
    for index in paint_order:
        if not masks[index].any():
            continue
        text = f"{_class_name(class_names, int(result.labels[index]))} {result.scores[index]:.2f}"
        _draw_label(canvas, text, boxes[index], colors[index], font_scale)
    return canvas


def format_detections_table(result, class_names, score_thr=0.3):
    """A text table (index, class, score, box x1 y1 x2 y2) of the instances scoring >= score_thr."""
    shown = np.flatnonzero(np.asarray(result.scores) >= score_thr)
    if shown.size == 0:
        return f"no detection with score >= {score_thr:.2f}"
    names = [_class_name(class_names, int(result.labels[index])) for index in shown]
    name_width = max(len("class"), *(len(name) for name in names))
    boxes = result.boxes
    lines = [f"{'#':>3}  {'class':<{name_width}}  {'score':>5}  box (x1, y1, x2, y2)"]
    for row, (index, name) in enumerate(zip(shown, names)):
        x1, y1, x2, y2 = (int(v) for v in boxes[index])
        lines.append(f"{row:>3}  {name:<{name_width}}  {result.scores[index]:>5.2f}  "
                     f"{x1}, {y1}, {x2}, {y2}")
    return "\n".join(lines)


def write_image(path, image):
    """Write ``image`` to ``path`` (format from its extension), creating missing folders."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    if not cv2.imwrite(path, image):
        raise OSError(f"could not write image file {path}")
