"""A small synthetic COCO-format dataset of coloured shapes, to try training on a CPU in minutes.

Each image holds 2-6 non-overlapping filled shapes (circle, rectangle, triangle: category ids
1, 2, 3) on a noisy, smoothly varying background. Every annotation is exact: the shape is first
written as its annotation (a polygon for rectangles and triangles, a compressed RLE for circles),
that annotation is decoded with pycocotools, and exactly the decoded pixels are painted. Boxes and
areas are measured on the decoded mask. The same seed gives the same files.

Layout::

    out_dir/train/000001.jpg ...            out_dir/annotations/instances_train.json
    out_dir/val/000001.jpg ...              out_dir/annotations/instances_val.json
"""
import json
import os

import cv2
import numpy as np
import pycocotools.mask as mask_utils

from .transforms.loading import ann_to_mask

CATEGORIES = (
    dict(id=1, name="circle", supercategory="shape"),
    dict(id=2, name="rectangle", supercategory="shape"),
    dict(id=3, name="triangle", supercategory="shape"),
)
_MIN_OBJECTS, _MAX_OBJECTS = 2, 6
_PLACEMENT_TRIES = 50
_GAP = 4  # px kept free between the boxes of two shapes


def _background(rng, size):
    """Gray-ish base colour + smooth colour blotches + pixel noise: (size, size, 3) float."""
    base = rng.uniform(70, 180) + rng.uniform(-15, 15, size=3)
    blotches = cv2.resize(rng.normal(0, 25, size=(6, 6, 3)), (size, size), interpolation=cv2.INTER_CUBIC)
    return base + blotches + rng.normal(0, 8, size=(size, size, 3))


def _object_colour(rng):
    """A saturated, bright BGR colour, so objects stand out from the gray background."""
    hsv = np.array([[[rng.integers(0, 180), rng.integers(150, 256), rng.integers(150, 256)]]], dtype=np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].astype(np.float64)


def _rotated(points, angle):
    cos, sin = np.cos(angle), np.sin(angle)
    return points @ np.array([[cos, sin], [-sin, cos]])


def _outline(rng, category_id, extent):
    """Vertices (k, 2) around (0, 0) of a rectangle or triangle; a circle's (radius,) otherwise."""
    if category_id == 1:
        return np.array([extent / 2])
    if category_id == 2:
        half_w = extent / 2
        half_h = half_w * rng.uniform(0.5, 1.0)
        corners = np.array([[-half_w, -half_h], [half_w, -half_h], [half_w, half_h], [-half_w, half_h]])
        return _rotated(corners, rng.uniform(0, np.pi))
    angles = rng.uniform(0, 2 * np.pi) + np.arange(3) * 2 * np.pi / 3 + rng.uniform(-0.25, 0.25, size=3)
    return extent / 2 * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _segmentation(category_id, outline, centre, size):
    """The COCO segmentation of a shape centred at ``centre``: RLE for circles, else a polygon."""
    if category_id == 1:
        ys, xs = np.mgrid[:size, :size]
        disk = ((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2 <= outline[0] ** 2).astype(np.uint8)
        rle = mask_utils.encode(np.asfortranarray(disk))
        return dict(size=[int(s) for s in rle["size"]], counts=rle["counts"].decode("ascii"))
    return [np.round(outline + centre, 2).ravel().tolist()]


def _box_of(mask):
    ys, xs = np.nonzero(mask)
    return [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)]


def _overlaps(box, boxes):
    x, y, w, h = box
    return any(x < bx + bw + _GAP and bx < x + w + _GAP and y < by + bh + _GAP and by < y + h + _GAP
               for bx, by, bw, bh in boxes)


def draw_scene(rng, size):
    """One image: (size, size, 3) uint8 BGR and a list of dict(category_id, segmentation, mask, bbox)."""
    min_extent, max_extent = max(8, round(30 * size / 320)), max(12, round(150 * size / 320))
    canvas = _background(rng, size)
    objects = []
    for _ in range(rng.integers(_MIN_OBJECTS, _MAX_OBJECTS + 1)):
        category_id = int(rng.integers(1, len(CATEGORIES) + 1))
        outline = _outline(rng, category_id, rng.uniform(min_extent, max_extent))
        for _ in range(_PLACEMENT_TRIES):
            reach = outline[0] if category_id == 1 else np.abs(outline).max()
            centre = rng.uniform(reach + 1, size - reach - 1, size=2)
            segmentation = _segmentation(category_id, outline, centre, size)
            mask = ann_to_mask(segmentation, size, size)
            if mask.any() and not _overlaps(_box_of(mask), [obj["bbox"] for obj in objects]):
                break
        else:
            continue
        painted = mask.astype(bool)
        canvas[painted] = _object_colour(rng) + rng.normal(0, 6, size=(int(painted.sum()), 3))
        objects.append(dict(category_id=category_id, segmentation=segmentation, mask=mask, bbox=_box_of(mask)))
    return np.clip(np.round(canvas), 0, 255).astype(np.uint8), objects


def _write_split(out_dir, split, num_images, size, rng):
    img_dir = os.path.join(out_dir, split)
    os.makedirs(img_dir, exist_ok=True)
    images, annotations = [], []
    for img_id in range(1, num_images + 1):
        img, objects = draw_scene(rng, size)
        file_name = f"{img_id:06d}.jpg"
        if not cv2.imwrite(os.path.join(img_dir, file_name), img, [cv2.IMWRITE_JPEG_QUALITY, 95]):
            raise OSError(f"cannot write image '{os.path.join(img_dir, file_name)}'")
        images.append(dict(id=img_id, file_name=file_name, width=size, height=size))
        for obj in objects:
            annotations.append(dict(id=len(annotations) + 1, image_id=img_id, category_id=obj["category_id"],
                                    segmentation=obj["segmentation"], area=int(obj["mask"].sum()),
                                    bbox=obj["bbox"], iscrowd=0))
    ann_file = os.path.join(out_dir, "annotations", f"instances_{split}.json")
    with open(ann_file, "w", encoding="utf-8") as f:
        json.dump(dict(images=images, annotations=annotations, categories=list(CATEGORIES)), f)
    return ann_file, img_dir + os.sep


def make_synthetic_coco(out_dir, num_train=200, num_val=50, size=320, seed=0):
    """Write the dataset under ``out_dir``; returns ``{split: (ann_file, img_prefix)}``."""
    if size < 64:
        raise ValueError(f"size must be at least 64 px to hold the shapes, got {size}")
    if num_train < 0 or num_val < 0:
        raise ValueError(f"image counts must be >= 0, got num_train={num_train}, num_val={num_val}")
    os.makedirs(os.path.join(out_dir, "annotations"), exist_ok=True)
    splits = {}
    for stream, (split, num_images) in enumerate([("train", num_train), ("val", num_val)]):
        rng = np.random.default_rng([seed, stream])
        splits[split] = _write_split(out_dir, split, num_images, size, rng)
    return splits
