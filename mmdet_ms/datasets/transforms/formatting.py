"""Turning a results dict into network input: Normalize, layout (CHW) and Collect.

Everything stays numpy here (data loading runs in worker processes without MindSpore); the
trainer and the inference API turn the batch into tensors.
"""
import numpy as np

from ...registry import PIPELINES, ConfigError


@PIPELINES.register_module()
class Normalize:
    """float32, optionally BGR -> RGB, then ``(img - mean) / std`` per channel."""

    def __init__(self, mean, std, to_rgb=True):
        self.mean = np.array(mean, dtype=np.float32)
        self.std = np.array(std, dtype=np.float32)
        if self.mean.shape != (3,) or self.std.shape != (3,) or np.any(self.std == 0):
            raise ConfigError(f"Normalize: mean and std must be 3 values each (std non-zero), "
                              f"got mean={mean!r}, std={std!r}")
        self.to_rgb = to_rgb

    def __call__(self, results):
        img = results["img"].astype(np.float32)
        if self.to_rgb:
            img = img[:, :, ::-1]
        results["img"] = (img - self.mean) / self.std
        results["img_norm_cfg"] = dict(mean=self.mean, std=self.std, to_rgb=self.to_rgb)
        return results

    def __repr__(self):
        return (f"{type(self).__name__}(mean={self.mean.tolist()}, std={self.std.tolist()}, "
                f"to_rgb={self.to_rgb})")


def image_to_chw(img):
    """(H, W, C) or (H, W) -> contiguous (C, H, W)."""
    if img.ndim == 2:
        img = img[:, :, None]
    return np.ascontiguousarray(img.transpose(2, 0, 1))


@PIPELINES.register_module()
class ImageToTensor:
    """``results[key]`` (H, W, C) -> (C, H, W) numpy array for each key (dtype kept)."""

    def __init__(self, keys):
        self.keys = list(keys)

    def __call__(self, results):
        for key in self.keys:
            results[key] = image_to_chw(results[key])
        return results

    def __repr__(self):
        return f"{type(self).__name__}(keys={self.keys})"


@PIPELINES.register_module()
class DefaultFormatBundle:
    """Training layout: ``img`` -> (3, H, W) float32; boxes float32 (N, 4); labels int64 (N,);
    masks uint8 (N, H, W). All stay numpy arrays."""

    _DTYPES = dict(gt_bboxes=np.float32, gt_bboxes_ignore=np.float32, gt_labels=np.int64, gt_masks=np.uint8)

    def __call__(self, results):
        if "img" in results:
            results["img"] = image_to_chw(results["img"].astype(np.float32, copy=False))
        for key, dtype in self._DTYPES.items():
            if key in results:
                results[key] = np.ascontiguousarray(results[key], dtype=dtype)
        return results

    def __repr__(self):
        return f"{type(self).__name__}()"


@PIPELINES.register_module()
class Collect:
    """Keep ``keys`` and gather ``meta_keys`` into ``img_meta``; everything else is dropped."""

    def __init__(self, keys, meta_keys=("filename", "ori_shape", "img_shape", "pad_shape",
                                        "scale_factor", "flip", "img_norm_cfg")):
        self.keys = list(keys)
        self.meta_keys = list(meta_keys)

    @staticmethod
    def _get(results, key, kind):
        if key not in results:
            raise ConfigError(f"Collect: {kind} '{key}' is not produced by the pipeline before it; "
                              f"available: {', '.join(sorted(results))}")
        return results[key]

    def __call__(self, results):
        data = {"img_meta": {key: self._get(results, key, "meta key") for key in self.meta_keys}}
        for key in self.keys:
            data[key] = self._get(results, key, "key")
        return data

    def __repr__(self):
        return f"{type(self).__name__}(keys={self.keys}, meta_keys={self.meta_keys})"
