"""Geometric transforms: Resize, RandomFlip, Pad (image, boxes and masks together).

They reproduce mmdetection 1.0 with mmcv 0.2.16 (the versions SOLOv2 was trained with), whose
resize rounds sizes with ``int(x * scale + 0.5)`` and uses cv2's bilinear / nearest kernels.
"""
import numbers

import cv2
import numpy as np

from ...registry import PIPELINES, ConfigError


def keep_ratio_scale(height, width, img_scale):
    """mmcv ``imrescale``'s factor: the largest that fits the long side in ``max(img_scale)``
    and the short side in ``min(img_scale)``."""
    long_edge, short_edge = max(img_scale), min(img_scale)
    return min(long_edge / max(height, width), short_edge / min(height, width))


def scaled_size(height, width, scale):
    """(new_w, new_h) as mmcv rounds it: ``int(w * scale + 0.5)``."""
    return int(width * float(scale) + 0.5), int(height * float(scale) + 0.5)


def resize_masks(masks, size):
    """(N, H, W) uint8 masks -> (N, size[1], size[0]) with nearest interpolation."""
    new_w, new_h = size
    if len(masks) == 0:
        return np.zeros((0, new_h, new_w), dtype=np.uint8)
    return np.stack([cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST) for mask in masks])


def _is_scale(value):
    return (isinstance(value, (tuple, list)) and len(value) == 2
            and all(isinstance(side, numbers.Integral) and side > 0 for side in value))


def _scale_list(img_scale):
    """``(w, h)`` or a list of them -> list of int tuples; None stays None."""
    if img_scale is None:
        return None
    if _is_scale(img_scale):
        return [tuple(int(side) for side in img_scale)]
    if isinstance(img_scale, (tuple, list)) and img_scale and all(_is_scale(s) for s in img_scale):
        return [tuple(int(side) for side in scale) for scale in img_scale]
    raise ConfigError(f"Resize: img_scale must be a (long, short) pair of positive ints or a list of "
                      f"them, got {img_scale!r}")


@PIPELINES.register_module()
class Resize:
    """Resize the image, its boxes and masks.

    The scale is ``results['scale']`` when set (``MultiScaleFlipAug`` sets it), else drawn from
    ``img_scale`` with numpy's global RNG: ``'value'`` picks one of the listed scales,
    ``'range'`` (two scales) draws the long and the short edge between them.

    ``keep_ratio=True`` stores ``scale_factor`` as one float and multiplies the boxes by it, as the
    original does (not by the slightly different factor the integer rounding realises).
    ``keep_ratio=False`` resizes to exactly ``scale`` = (w, h) and stores a (4,) float32 factor.
    """

    def __init__(self, img_scale=None, multiscale_mode="value", keep_ratio=True):
        if multiscale_mode not in ("value", "range"):
            raise ConfigError(f"Resize: multiscale_mode must be 'value' or 'range', got {multiscale_mode!r}")
        self.img_scales = _scale_list(img_scale)
        if multiscale_mode == "range" and self.img_scales is not None and len(self.img_scales) != 2:
            raise ConfigError(f"Resize: multiscale_mode='range' needs exactly two scales, got {img_scale!r}")
        self.multiscale_mode = multiscale_mode
        self.keep_ratio = keep_ratio

    def _random_scale(self):
        if self.img_scales is None:
            raise ConfigError("Resize: no img_scale given and results has no 'scale' "
                              "(set img_scale, or wrap Resize in MultiScaleFlipAug)")
        if len(self.img_scales) == 1:
            return self.img_scales[0]
        if self.multiscale_mode == "value":
            return self.img_scales[np.random.randint(len(self.img_scales))]
        long_edges = [max(scale) for scale in self.img_scales]
        short_edges = [min(scale) for scale in self.img_scales]
        long_edge = np.random.randint(min(long_edges), max(long_edges) + 1)
        short_edge = np.random.randint(min(short_edges), max(short_edges) + 1)
        return long_edge, short_edge

    def __call__(self, results):
        if "scale" not in results:
            results["scale"] = self._random_scale()
        img = results["img"]
        height, width = img.shape[:2]
        if self.keep_ratio:
            scale_factor = keep_ratio_scale(height, width, results["scale"])
            new_size = scaled_size(height, width, scale_factor)
        else:
            new_size = tuple(int(side) for side in results["scale"])
            w_scale, h_scale = new_size[0] / width, new_size[1] / height
            scale_factor = np.array([w_scale, h_scale, w_scale, h_scale], dtype=np.float32)
        img = cv2.resize(img, new_size, interpolation=cv2.INTER_LINEAR)
        results["img"] = img
        results["img_shape"] = img.shape
        results["pad_shape"] = img.shape  # until Pad runs
        results["scale_factor"] = scale_factor
        results["keep_ratio"] = self.keep_ratio
        for key in results.get("bbox_fields", []):
            results[key] = self._resize_boxes(results[key], scale_factor, img.shape)
        for key in results.get("mask_fields", []):
            results[key] = resize_masks(results[key], new_size)
        return results

    @staticmethod
    def _resize_boxes(boxes, scale_factor, img_shape):
        boxes = boxes * scale_factor
        boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, img_shape[1] - 1)
        boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, img_shape[0] - 1)
        return boxes

    def __repr__(self):
        return (f"{type(self).__name__}(img_scale={self.img_scales}, "
                f"multiscale_mode={self.multiscale_mode!r}, keep_ratio={self.keep_ratio})")


def flip_boxes(boxes, img_width):
    """Horizontal flip in the mmdet-1.0 convention: x1' = w - x2 - 1, x2' = w - x1 - 1."""
    flipped = boxes.copy()
    flipped[:, 0] = img_width - boxes[:, 2] - 1
    flipped[:, 2] = img_width - boxes[:, 0] - 1
    return flipped


@PIPELINES.register_module()
class RandomFlip:
    """Horizontal flip of the image, boxes and masks.

    Uses ``results['flip']`` when set (``MultiScaleFlipAug`` sets False); otherwise flips with
    probability ``flip_ratio`` drawn from numpy's global RNG (``flip_ratio=None``: never).
    """

    def __init__(self, flip_ratio=None):
        if flip_ratio is not None and not 0 <= flip_ratio <= 1:
            raise ConfigError(f"RandomFlip: flip_ratio must be in [0, 1], got {flip_ratio!r}")
        self.flip_ratio = flip_ratio

    def __call__(self, results):
        if "flip" not in results:
            results["flip"] = self.flip_ratio is not None and bool(np.random.rand() < self.flip_ratio)
        if not results["flip"]:
            return results
        results["img"] = np.ascontiguousarray(results["img"][:, ::-1])
        img_width = results["img_shape"][1]
        for key in results.get("bbox_fields", []):
            results[key] = flip_boxes(results[key], img_width)
        for key in results.get("mask_fields", []):
            results[key] = np.ascontiguousarray(results[key][:, :, ::-1])  # (N, H, W)
        return results

    def __repr__(self):
        return f"{type(self).__name__}(flip_ratio={self.flip_ratio})"


def pad_to(array, height, width):
    """Zero-pad the first two axes of ``array`` at the bottom/right to (height, width)."""
    if array.shape[0] > height or array.shape[1] > width:
        raise ValueError(f"cannot pad an array of shape {array.shape} to the smaller {(height, width)}")
    padded = np.zeros((height, width) + array.shape[2:], dtype=array.dtype)
    padded[:array.shape[0], :array.shape[1]] = array
    return padded


def pad_masks(masks, height, width):
    """Zero-pad (N, H, W) masks at the bottom/right to (N, height, width)."""
    if masks.shape[1] > height or masks.shape[2] > width:
        raise ValueError(f"cannot pad masks of shape {masks.shape} to the smaller {(height, width)}")
    padded = np.zeros((len(masks), height, width), dtype=masks.dtype)
    padded[:, :masks.shape[1], :masks.shape[2]] = masks
    return padded


@PIPELINES.register_module()
class Pad:
    """Zero-pad the image (and masks) at the bottom/right, to ``size`` = (h, w) or to multiples
    of ``size_divisor``. Records ``pad_shape``."""

    def __init__(self, size=None, size_divisor=None):
        if (size is None) == (size_divisor is None):
            raise ConfigError(f"Pad: give exactly one of size and size_divisor, got size={size!r}, "
                              f"size_divisor={size_divisor!r}")
        if size_divisor is not None and not (isinstance(size_divisor, numbers.Integral) and size_divisor > 0):
            raise ConfigError(f"Pad: size_divisor must be a positive int, got {size_divisor!r}")
        self.size = size
        self.size_divisor = size_divisor

    def _padded_hw(self, height, width):
        if self.size is not None:
            return int(self.size[0]), int(self.size[1])
        divisor = self.size_divisor
        return -(-height // divisor) * divisor, -(-width // divisor) * divisor

    def __call__(self, results):
        pad_h, pad_w = self._padded_hw(*results["img"].shape[:2])
        img = pad_to(results["img"], pad_h, pad_w)
        results["img"] = img
        results["pad_shape"] = img.shape
        for key in results.get("mask_fields", []):
            results[key] = pad_masks(results[key], pad_h, pad_w)
        return results

    def __repr__(self):
        return f"{type(self).__name__}(size={self.size}, size_divisor={self.size_divisor})"
