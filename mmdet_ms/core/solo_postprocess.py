"""Test-time post-processing of SOLO v1 and Decoupled SOLO: the original ``get_seg_single`` of
``SOLOHead`` and ``DecoupledSOLOHead``, whose steps after the soft masks (thresholds, maskness,
Matrix NMS, resizing) are SOLOv2's (`postprocess.segment_cells`).

The network returns each level's mask probabilities at the level's own resolution; the original
first resizes all of them (bilinear) to level 0's size (stride 4). Here only the candidate cells'
masks are resized, with `resize_bilinear` (torch's sampling), which gives the same values.
"""
import numpy as np

from .postprocess import _cell_strides, get_seg_batch, resize_bilinear, segment_cells


def _level_offsets(num_grids):
    """First cell index of each level among the ΣS² cells."""
    return np.cumsum([0] + [grid * grid for grid in num_grids])


def _cell_levels(cells, num_grids):
    """(level, cell index within the level) of each cell."""
    offsets = _level_offsets(num_grids)
    levels = np.searchsorted(offsets, cells, side="right") - 1
    return levels, cells - offsets[levels]


def _check_levels(cate_scores, level_maps, num_grids, channels_per_level, what):
    num_cells = sum(grid * grid for grid in num_grids)
    if cate_scores.ndim != 2 or len(cate_scores) != num_cells:
        raise ValueError(f"{what}: cate_scores must be ({num_cells}, C) for num_grids "
                         f"{list(num_grids)}, got {cate_scores.shape}")
    if len(level_maps) != len(num_grids):
        raise ValueError(f"{what}: {len(level_maps)} mask levels for {len(num_grids)} num_grids")
    for level, (maps, channels) in enumerate(zip(level_maps, channels_per_level)):
        if maps.ndim != 3 or len(maps) != channels:
            raise ValueError(f"{what}: level {level} masks must be ({channels}, H, W), "
                             f"got {maps.shape}")


def _resized(maps, channels, size):
    """(len(channels), H0, W0) float32: the chosen channels of (S, H, W) ``maps`` at ``size``."""
    return resize_bilinear(np.asarray(maps[channels], dtype=np.float32), size)


def get_seg_single_solo(cate_scores, ins_levels, num_grids, strides, img_shape, ori_shape,
                        test_cfg):
    """Instances of one image from SOLO v1 outputs.

    Args:
        cate_scores: (ΣS², C) scores after sigmoid and points NMS, levels concatenated.
        ins_levels: per level (S², H_l, W_l) mask probabilities (level 0 at stride 4).
        num_grids, strides, img_shape, ori_shape, test_cfg: as `postprocess.get_seg_single`.
    """
    cate_scores = np.asarray(cate_scores, dtype=np.float32)
    _check_levels(cate_scores, ins_levels, num_grids, [g * g for g in num_grids],
                  "get_seg_single_solo")
    size = ins_levels[0].shape[1:]

    def soft_masks_of(cells):
        levels, local = _cell_levels(cells, num_grids)
        masks = np.empty((len(cells), *size), dtype=np.float32)
        for level in np.unique(levels):
            chosen = levels == level
            masks[chosen] = _resized(ins_levels[level], local[chosen], size)
        return masks

    return segment_cells(cate_scores, soft_masks_of, _cell_strides(num_grids, strides),
                         img_shape, ori_shape, test_cfg)


def get_seg_single_decoupled(cate_scores, x_levels, y_levels, num_grids, strides, img_shape,
                             ori_shape, test_cfg):
    """Instances of one image from Decoupled SOLO outputs: the soft mask of cell (i, j) of a
    level is X_j * Y_i, both resized to level 0's size first (as the original).

    Args:
        cate_scores: (ΣS², C) scores after sigmoid and points NMS.
        x_levels, y_levels: per level (S, H_l, W_l) probabilities of the X and Y branches.
    """
    cate_scores = np.asarray(cate_scores, dtype=np.float32)
    _check_levels(cate_scores, x_levels, num_grids, num_grids, "get_seg_single_decoupled")
    _check_levels(cate_scores, y_levels, num_grids, num_grids, "get_seg_single_decoupled")
    size = x_levels[0].shape[1:]

    def soft_masks_of(cells):
        levels, local = _cell_levels(cells, num_grids)
        masks = np.empty((len(cells), *size), dtype=np.float32)
        for level in np.unique(levels):
            chosen = levels == level
            rows, cols = np.divmod(local[chosen], num_grids[level])
            masks[chosen] = (_resized(x_levels[level], cols, size)
                             * _resized(y_levels[level], rows, size))
        return masks

    return segment_cells(cate_scores, soft_masks_of, _cell_strides(num_grids, strides),
                         img_shape, ori_shape, test_cfg)


def get_seg_batch_solo(outputs, num_grids, strides, img_metas, cfg):
    """`get_seg_single_solo` per image of a batch of network outputs (numpy, leading axis N):
    ``outputs`` = (cate scores, the L levels' mask probabilities)."""
    cate_scores, ins_levels = outputs[0], outputs[1:]
    return [get_seg_single_solo(cate_scores[i], [level[i] for level in ins_levels], num_grids,
                                strides, meta["img_shape"][:2], meta["ori_shape"][:2], cfg)
            for i, meta in enumerate(img_metas)]


def get_seg_batch_decoupled(outputs, num_grids, strides, img_metas, cfg):
    """`get_seg_single_decoupled` per image of a batch of network outputs (numpy, leading axis
    N): ``outputs`` = (cate scores, the L levels' X probabilities, the L levels' Y ones)."""
    num_levels = len(num_grids)
    cate_scores = outputs[0]
    x_levels, y_levels = outputs[1:1 + num_levels], outputs[1 + num_levels:]
    return [get_seg_single_decoupled(cate_scores[i], [level[i] for level in x_levels],
                                     [level[i] for level in y_levels], num_grids, strides,
                                     meta["img_shape"][:2], meta["ori_shape"][:2], cfg)
            for i, meta in enumerate(img_metas)]


def batch_postprocess_of(head_type):
    """``fn(outputs, num_grids, strides, img_metas, test_cfg)``: the batch post-processing of the
    network outputs of a head type (its registered name)."""
    if head_type == "SOLOHead":
        return get_seg_batch_solo
    if head_type in ("DecoupledSOLOHead", "DecoupledSOLOLightHead"):
        return get_seg_batch_decoupled
    if head_type == "SOLOv2Head":
        return lambda outputs, *args: get_seg_batch(*outputs, *args)
    raise ValueError(f"no post-processing for head type '{head_type}'")
