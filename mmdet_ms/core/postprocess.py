"""SOLOv2 test-time post-processing of one image: candidates, masks, Matrix NMS, final masks.

A numpy re-statement of the original ``SOLOv2Head.get_seg_single`` (WXinlong/SOLO), step for
step, so that scores, labels and masks match the PyTorch code's.
"""
import functools
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from mmdet_ms.core.instances import InstanceResult
from mmdet_ms.core.matrix_nms import MATRIX_NMS_KERNELS, matrix_nms
from mmdet_ms.core.targets import MASK_FEAT_STRIDE  # the mask feature is at 1/4 of the padded input
from mmdet_ms.registry import ConfigError

TEST_CFG_KEYS = ("nms_pre", "score_thr", "mask_thr", "update_thr", "kernel", "sigma", "max_per_img")
MASK_CHUNK = 64  # cells whose soft masks are computed together
RESIZE_THREADS = min(8, os.cpu_count() or 1)  # threads resizing the final masks


def get_seg_single(cate_scores, kernel_preds, mask_feat, num_grids, strides, img_shape, ori_shape,
                   test_cfg):
    """Instances of one image from the head's outputs.

    Args:
        cate_scores: (sum_l S_l**2, C) float32 category scores after sigmoid and points NMS, the
            levels' cells concatenated (level 0 row-major first).
        kernel_preds: (sum_l S_l**2, E) dynamic kernels, cells in the same order.
        mask_feat: (E, Hf, Wf) mask feature of this image.
        num_grids: grid size S_l of each level.
        strides: stride of each level (a candidate survives if its mask area > its level's stride).
        img_shape: (h, w[, c]) of the image after resize, before padding.
        ori_shape: (H, W[, c]) of the original image.
        test_cfg: dict or attribute object with nms_pre, score_thr, mask_thr, update_thr, kernel,
            sigma, max_per_img.

    Returns:
        InstanceResult at (H, W); empty when no candidate survives a step.
    """
    cfg = _read_test_cfg(test_cfg)
    cate_scores = np.asarray(cate_scores, dtype=np.float32)
    kernel_preds = np.asarray(kernel_preds, dtype=np.float32)
    mask_feat = np.asarray(mask_feat, dtype=np.float32)
    _check_inputs(cate_scores, kernel_preds, mask_feat, num_grids, strides)
    return segment_cells(cate_scores, lambda cells: _soft_masks(kernel_preds[cells], mask_feat),
                         _cell_strides(num_grids, strides), img_shape, ori_shape, cfg)


def segment_cells(cate_scores, soft_masks_of, cell_strides, img_shape, ori_shape, test_cfg):
    """The SOLO family's post-processing of one image once its cells' soft masks can be had.

    Args:
        cate_scores: (num_cells, C) float32 category scores after sigmoid and points NMS.
        soft_masks_of: callable, (n,) cell indices → (n, Hf, Wf) float32 soft masks (after
            sigmoid) at stride 4 of the padded input; called on candidate cells only.
        cell_strides: (num_cells,) float32 stride of each cell's level.
        img_shape, ori_shape, test_cfg: as in ``get_seg_single``.

    Returns:
        InstanceResult at the original size.
    """
    cfg = _read_test_cfg(test_cfg)
    height, width = int(img_shape[0]), int(img_shape[1])
    ori_height, ori_width = int(ori_shape[0]), int(ori_shape[1])
    empty = InstanceResult.empty(ori_height, ori_width)

    cell_inds, cate_labels = np.nonzero(cate_scores > cfg["score_thr"])  # row-major, as torch
    if len(cell_inds) == 0:
        return empty
    scores = cate_scores[cell_inds, cate_labels]

    # Several classes of one cell share its mask: compute each cell's once.
    candidate_cells, cand_to_cell = np.unique(cell_inds, return_inverse=True)
    soft_masks, mask_areas, maskness, cell_to_mask = _surviving_soft_masks(
        candidate_cells, soft_masks_of, cfg["mask_thr"], cell_strides[candidate_cells])
    cand_to_mask = cell_to_mask[cand_to_cell]
    keep = cand_to_mask >= 0
    if not keep.any():
        return empty
    cand_to_mask, cate_labels = cand_to_mask[keep], cate_labels[keep]
    scores = scores[keep] * maskness[cand_to_mask]

    order = _sort_desc(scores)[:cfg["nms_pre"]]
    cand_to_mask, cate_labels, scores = cand_to_mask[order], cate_labels[order], scores[order]
    binary_masks = soft_masks[cand_to_mask] > cfg["mask_thr"]  # (n, Hf, Wf), n <= nms_pre
    scores = matrix_nms(binary_masks, cate_labels, scores, kernel=cfg["kernel"], sigma=cfg["sigma"],
                        sum_masks=mask_areas[cand_to_mask])

    keep = scores >= cfg["update_thr"]
    if not keep.any():
        return empty
    cand_to_mask, cate_labels, scores = cand_to_mask[keep], cate_labels[keep], scores[keep]
    order = _sort_desc(scores)[:cfg["max_per_img"]]
    cand_to_mask, cate_labels, scores = cand_to_mask[order], cate_labels[order], scores[order]

    final_masks = _masks_at_original_size(soft_masks, cand_to_mask, (height, width),
                                          (ori_height, ori_width), cfg["mask_thr"])
    return InstanceResult(masks=final_masks, labels=cate_labels.astype(np.int64), scores=scores)


def get_seg_batch(cate_scores, kernel_preds, mask_feat, num_grids, strides, img_metas, cfg):
    """``get_seg_single`` for each image of a batch of network outputs (numpy, leading axis N);
    ``img_metas``: one dict per image with ``img_shape`` and ``ori_shape``."""
    return [get_seg_single(cate_scores[i], kernel_preds[i], mask_feat[i], num_grids, strides,
                           meta["img_shape"][:2], meta["ori_shape"][:2], cfg)
            for i, meta in enumerate(img_metas)]


def resize_bilinear(images, size):
    """(..., h, w) float32 ``images`` resized to ``size`` = (H, W) as torch's
    ``F.interpolate(mode='bilinear', align_corners=False)`` does it: the same sampling positions and
    weights bit for bit, the values within 1 ulp (the order of the float32 operations differs).
    A resize to the same size is the identity there (weights 1 and 0) and returns ``images``.

    cv2.resize(INTER_LINEAR) computes the sampling positions in double and differs from torch by
    up to ~1e-4 on large odd sizes, enough to flip thresholded mask pixels.
    """
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    rows0, rows1, row_weights1 = _linear_sampling(images.shape[-2], size[0])
    cols0, cols1, col_weights1 = _linear_sampling(images.shape[-1], size[1])
    along_cols = images[..., cols0] * (1 - col_weights1)  # (..., h, W)
    along_cols += images[..., cols1] * col_weights1
    resized = along_cols[..., rows0, :] * (1 - row_weights1)[:, None]  # (..., H, W)
    resized += along_cols[..., rows1, :] * row_weights1[:, None]
    return resized


@functools.lru_cache(maxsize=16)
def _linear_sampling(in_size, out_size):
    """Source indices (i0, i1) and the weight of i1 for each output index, torch's formula.
    Cached: every mask of an image is resized between the same sizes (read-only arrays)."""
    scale = np.float32(in_size) / np.float32(out_size)
    # torch's compiled kernels (CPU with FMA, CUDA) fuse ``scale * (i + 0.5) - 0.5`` into one
    # multiply-add rounded once; the float64 product of a float32 and i + 0.5 is exact, so rounding
    # the float64 result to float32 gives the same value.
    source = (np.float64(scale) * (np.arange(out_size) + 0.5) - 0.5).astype(np.float32)
    source = np.maximum(source, np.float32(0))
    index0 = np.minimum(np.floor(source).astype(np.int64), in_size - 1)
    weight1 = np.clip(source - index0.astype(np.float32), 0, 1).astype(np.float32)
    index1 = np.minimum(index0 + 1, in_size - 1)
    for array in (index0, index1, weight1):
        array.setflags(write=False)
    return index0, index1, weight1


def _masks_at_original_size(soft_masks, mask_inds, img_size, ori_size, mask_thr):
    """(N, H, W) bool: each chosen soft mask upsampled x4, cropped to the unpadded image, resized to
    the original size and thresholded. One mask at a time bounds memory; the masks are shared
    among ``RESIZE_THREADS`` threads (numpy releases the GIL in these loops)."""
    feat_height, feat_width = soft_masks.shape[1:]
    upsampled_size = (feat_height * MASK_FEAT_STRIDE, feat_width * MASK_FEAT_STRIDE)
    final_masks = np.zeros((len(mask_inds), *ori_size), dtype=bool)

    def finish(index):
        upsampled = resize_bilinear(soft_masks[mask_inds[index]], upsampled_size)
        cropped = upsampled[:img_size[0], :img_size[1]]
        final_masks[index] = resize_bilinear(cropped, ori_size) > mask_thr

    with ThreadPoolExecutor(RESIZE_THREADS) as pool:
        list(pool.map(finish, range(len(mask_inds))))
    return final_masks


def _surviving_soft_masks(cells, soft_masks_of, mask_thr, cell_strides):
    """Soft masks of the cells whose binary area (``> mask_thr``) exceeds their level's stride.

    Args:
        cells: (U,) the candidate cells.
        soft_masks_of: callable, cell indices → their (n, Hf, Wf) soft masks.
        mask_thr: threshold of the binary masks.
        cell_strides: (U,) float32 stride of each cell's level.

    Returns:
        soft_masks (K, Hf, Wf), mask_areas (K,) and maskness (K,) of the K surviving cells, and
        cell_to_mask (U,): each cell's row in those arrays, -1 for a dropped cell. Computed
        ``MASK_CHUNK`` cells at a time, so that dropped cells never pile up in memory.
    """
    kept_masks, kept_areas, kept_maskness = [], [], []
    cell_to_mask = np.full(len(cells), -1, dtype=np.int64)
    num_kept = 0
    for start in range(0, len(cells), MASK_CHUNK):
        soft_masks = soft_masks_of(cells[start:start + MASK_CHUNK])  # (chunk, Hf, Wf)
        binary_masks = soft_masks > mask_thr
        mask_areas = binary_masks.sum(axis=(1, 2)).astype(np.float32)
        keep = np.flatnonzero(mask_areas > cell_strides[start:start + MASK_CHUNK])
        soft_masks, binary_masks, mask_areas = soft_masks[keep], binary_masks[keep], mask_areas[keep]
        # maskness: mean of the soft mask over its own binary mask.
        kept_maskness.append((soft_masks * binary_masks).sum(axis=(1, 2)) / mask_areas)
        kept_masks.append(soft_masks)
        kept_areas.append(mask_areas)
        cell_to_mask[start + keep] = num_kept + np.arange(len(keep))
        num_kept += len(keep)
    return (np.concatenate(kept_masks), np.concatenate(kept_areas), np.concatenate(kept_maskness),
            cell_to_mask)


def _soft_masks(kernels, mask_feat):
    """(n, Hf, Wf) sigmoid of the 1x1 dynamic convolution of ``mask_feat`` with ``kernels`` (n, E)."""
    channels, feat_height, feat_width = mask_feat.shape
    logits = kernels @ mask_feat.reshape(channels, -1)  # (n, Hf*Wf)
    return _sigmoid(logits).reshape(-1, feat_height, feat_width)


def _sigmoid(values):
    """Float32 ``1 / (1 + exp(-x))``, torch's formula; exp overflows to inf (giving 0) for x < -88."""
    with np.errstate(over="ignore"):
        return (1 / (1 + np.exp(-values))).astype(np.float32)


def _cell_strides(num_grids, strides):
    """(sum_l S_l**2,) float32 stride of each cell's level."""
    return np.concatenate([np.full(grid * grid, stride, dtype=np.float32)
                           for grid, stride in zip(num_grids, strides)])


def _sort_desc(values):
    """Indices sorting ``values`` descending, ties kept in input order (torch's argsort is not
    stable, so tied candidates may come out in another order there)."""
    return np.argsort(-values, kind="stable")


def _is_number(value):
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _is_integer(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


# What each test_cfg value must be, as (test, description); a string or a fraction given with
# --cfg-options would otherwise fail inside numpy after the network ran, or be truncated.
_TEST_CFG_TYPES = {
    "nms_pre": (lambda v: _is_integer(v) and v >= 1, "an integer >= 1"),
    "max_per_img": (lambda v: _is_integer(v) and v >= 1, "an integer >= 1"),
    "score_thr": (_is_number, "a number"),
    "mask_thr": (_is_number, "a number"),
    "update_thr": (_is_number, "a number"),
    "sigma": (_is_number, "a number"),
    "kernel": (lambda v: v in MATRIX_NMS_KERNELS, " or ".join(map(repr, MATRIX_NMS_KERNELS))),
}


def check_test_cfg(test_cfg):
    """Raise ConfigError naming the key for a test_cfg value of the wrong type (present keys only;
    a missing one is reported when post-processing runs)."""
    for key, (valid, wanted) in _TEST_CFG_TYPES.items():
        value = test_cfg.get(key) if isinstance(test_cfg, dict) else getattr(test_cfg, key, None)
        if value is not None and not valid(value):
            raise ConfigError(f"test_cfg.{key} must be {wanted}, got {value!r:.40}")


def _read_test_cfg(test_cfg):
    """The post-processing settings (from a dict or an attribute object) as a plain dict."""
    check_test_cfg(test_cfg)
    cfg = {}
    for key in TEST_CFG_KEYS:
        value = test_cfg.get(key) if isinstance(test_cfg, dict) else getattr(test_cfg, key, None)
        if value is None:
            raise ValueError(f"test_cfg: missing key '{key}' (needs {', '.join(TEST_CFG_KEYS)})")
        cfg[key] = value
    cfg["nms_pre"] = int(cfg["nms_pre"])
    cfg["max_per_img"] = int(cfg["max_per_img"])
    return cfg


def _check_inputs(cate_scores, kernel_preds, mask_feat, num_grids, strides):
    """Shapes must agree: one row per grid cell in both predictions, E kernel weights per channel."""
    num_cells = sum(grid * grid for grid in num_grids)
    if len(num_grids) != len(strides):
        raise ValueError(f"get_seg_single: {len(num_grids)} num_grids but {len(strides)} strides")
    if cate_scores.ndim != 2 or len(cate_scores) != num_cells:
        raise ValueError(f"get_seg_single: cate_scores must be ({num_cells}, C) for num_grids "
                         f"{list(num_grids)}, got {cate_scores.shape}")
    if kernel_preds.ndim != 2 or len(kernel_preds) != num_cells:
        raise ValueError(f"get_seg_single: kernel_preds must be ({num_cells}, E), "
                         f"got {kernel_preds.shape}")
    if mask_feat.ndim != 3 or mask_feat.shape[0] != kernel_preds.shape[1]:
        raise ValueError(f"get_seg_single: mask_feat must be ({kernel_preds.shape[1]}, Hf, Wf) to match "
                         f"kernel_preds, got {mask_feat.shape}")
