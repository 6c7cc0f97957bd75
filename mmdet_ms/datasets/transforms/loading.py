"""Loading transforms: the image (from a file or an array) and its annotations."""
import os

import cv2
import numpy as np
import pycocotools.mask as mask_utils

from ...registry import PIPELINES


class ImageReadError(ValueError):
    """An image file is missing, unreadable or not a decodable image."""


def read_image(filename):
    """Read ``filename`` as the original does (``cv2.imread(..., IMREAD_COLOR)``): BGR uint8 (H, W, 3).

    Grayscale files come back with the gray value in all three channels, RGBA files without alpha.
    """
    if os.path.isdir(filename):
        raise ImageReadError(f"image file '{filename}' is a folder (run.py segments a folder)")
    if not os.path.isfile(filename):
        raise ImageReadError(f"image file '{filename}' does not exist")
    if _is_truncated_jpeg(filename):
        raise ImageReadError(f"image file '{filename}' is a truncated JPEG (no end marker after "
                             "its last scan): its lower part would be read as grey")
    img = cv2.imread(filename, cv2.IMREAD_COLOR)
    if img is None:
        raise ImageReadError(f"cannot decode image file '{filename}': unreadable, corrupt or not an image")
    return img


def _is_truncated_jpeg(filename):
    """True for a JPEG whose last scan has no end-of-image marker after it.

    libjpeg decodes such a file with a warning on stderr only ("Premature end of JPEG file") and
    fills the missing rows with grey, so ``imread`` returns an image. Inside scan data 0xFF is
    always stuffed (FF 00), so a real end marker (FF D9) after the last start-of-scan (FF DA)
    is the test; marker bytes in a thumbnail or in data appended after the end do not matter.
    """
    with open(filename, "rb") as f:
        data = f.read()
    if not data.startswith(b"\xff\xd8"):
        return False
    return data.rfind(b"\xff\xd9") < data.rfind(b"\xff\xda")


def to_bgr_image(img):
    """An in-memory image made 3-channel BGR the way IMREAD_COLOR reads files.

    (H, W) and (H, W, 1) gray -> gray in every channel; (H, W, 4) BGRA -> alpha dropped.
    """
    if not isinstance(img, np.ndarray):
        raise ValueError(f"an image must be a numpy array or a file path, got {type(img).__name__}")
    if img.dtype != np.uint8:
        # The network was trained on 0-255 values: a uint16 or a 0-1 float image gives
        # meaningless detections (or none) without any error.
        raise ValueError(f"an image array must be uint8 BGR (0-255, as cv2.imread gives), got "
                         f"dtype {img.dtype}; convert it first, e.g. (img / 257).astype(np.uint8) "
                         "for uint16, (img * 255).round().astype(np.uint8) for 0-1 floats")
    if img.ndim == 2:
        img = img[:, :, None]
    if img.ndim != 3 or img.shape[2] not in (1, 3, 4) or img.shape[0] == 0 or img.shape[1] == 0:
        raise ValueError(f"an image array must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), "
                         f"got shape {img.shape}")
    if img.shape[2] == 1:
        return np.repeat(img, 3, axis=2)
    return np.ascontiguousarray(img[:, :, :3])


def _set_image(results, img, filename):
    results["filename"] = filename
    results["img"] = img
    results["img_shape"] = img.shape
    results["ori_shape"] = img.shape
    return results


@PIPELINES.register_module()
class LoadImageFromFile:
    """Read ``img_prefix / img_info['filename']`` into ``results['img']`` (BGR uint8, HWC)."""

    def __call__(self, results):
        prefix = results.get("img_prefix")
        filename = results["img_info"]["filename"]
        if prefix:
            filename = os.path.join(prefix, filename)
        return _set_image(results, read_image(filename), filename)

    def __repr__(self):
        return f"{type(self).__name__}()"


@PIPELINES.register_module()
class LoadImage:
    """For the inference API: ``results['img']`` is already an array (BGR, HWC) or a file path.

    ``filename`` is the path, or None for an array.
    """

    def __call__(self, results):
        img = results["img"]
        if isinstance(img, (str, os.PathLike)):
            filename = os.fspath(img)
            return _set_image(results, read_image(filename), filename)
        return _set_image(results, to_bgr_image(img), None)

    def __repr__(self):
        return f"{type(self).__name__}()"


def ann_to_mask(segmentation, height, width):
    """A COCO segmentation -> (height, width) uint8 0/1 mask, as pycocotools' ``annToMask``.

    ``segmentation`` is a list of polygons (merged into one mask), an uncompressed RLE
    (``counts`` a list) or a compressed RLE (``counts`` a string or bytes).
    """
    if isinstance(segmentation, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    elif isinstance(segmentation, dict) and isinstance(segmentation.get("counts"), list):
        rle = mask_utils.frPyObjects(segmentation, height, width)
    elif isinstance(segmentation, dict) and "counts" in segmentation:
        rle = segmentation
    else:
        raise ValueError(f"a segmentation must be a polygon list or an RLE dict, got {segmentation!r:.80}")
    mask = mask_utils.decode(rle)
    if mask.shape != (height, width):
        raise ValueError(f"an RLE of size {mask.shape} does not match its image's size {(height, width)}")
    return mask


@PIPELINES.register_module()
class LoadAnnotations:
    """Put ``gt_bboxes`` (+ ``gt_bboxes_ignore``), ``gt_labels`` and ``gt_masks`` into the results.

    Reads ``results['ann_info']`` (from ``CocoDataset.get_ann_info``). Masks become one (N, H, W)
    uint8 array at the image's size from ``img_info``.
    """

    def __init__(self, with_bbox=True, with_label=True, with_mask=True):
        self.with_bbox = with_bbox
        self.with_label = with_label
        self.with_mask = with_mask

    def __call__(self, results):
        ann_info = results["ann_info"]
        if self.with_bbox:
            results["gt_bboxes"] = ann_info["bboxes"]
            results.setdefault("bbox_fields", []).append("gt_bboxes")
            if "bboxes_ignore" in ann_info:
                results["gt_bboxes_ignore"] = ann_info["bboxes_ignore"]
                results["bbox_fields"].append("gt_bboxes_ignore")
        if self.with_label:
            results["gt_labels"] = ann_info["labels"]
        if self.with_mask:
            results["gt_masks"] = self._load_masks(results)
            results.setdefault("mask_fields", []).append("gt_masks")
        return results

    @staticmethod
    def _load_masks(results):
        img_info = results["img_info"]
        height, width = int(img_info["height"]), int(img_info["width"])
        if "ori_shape" in results and tuple(results["ori_shape"][:2]) != (height, width):
            raise ValueError(
                f"image '{results.get('filename')}' is {results['ori_shape'][0]}x"
                f"{results['ori_shape'][1]} (h x w) but its annotation says {height}x{width}")
        masks = [ann_to_mask(segmentation, height, width) for segmentation in results["ann_info"]["masks"]]
        if not masks:
            return np.zeros((0, height, width), dtype=np.uint8)
        return np.stack(masks)  # (N, H, W)

    def __repr__(self):
        return (f"{type(self).__name__}(with_bbox={self.with_bbox}, with_label={self.with_label}, "
                f"with_mask={self.with_mask})")
