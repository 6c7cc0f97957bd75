"""SOLOv2 training targets for one image: which grid cells are positive and what they predict.

Pure numpy, so it runs in data-loading workers and is tested on hand-made arrays. It reproduces
`SOLOv2Head.solov2_target_single` of the original (WXinlong/SOLO) bit for bit: the arithmetic is
done in float32 where the original did it on float32 torch tensors.
"""
from collections import namedtuple

import cv2
import numpy as np

# The mask feature is at stride 4 of the padded input: targets are built at that resolution.
MASK_FEAT_STRIDE = 4

LevelTargets = namedtuple("LevelTargets", ["ins_labels", "cate_labels", "ins_ind_labels", "grid_order"])
LevelTargets.__doc__ = """Targets of one image on one FPN level with an S x S grid.

ins_labels: (n_pos, Hf, Wf) uint8, one mask per positive cell, in `grid_order` order.
cate_labels: (S, S) int64, 0 = background, k + 1 for class k.
ins_ind_labels: (S*S,) bool, True on positive cells.
grid_order: (n_pos,) int64, the flat cell index of each mask target (duplicates possible).
"""


def solov2_targets_single(gt_bboxes, gt_labels, gt_masks, mask_feat_size, scale_ranges, num_grids,
                          sigma=0.2):
    """Targets of one image on every level.

    Args:
        gt_bboxes: (n, 4) [x1, y1, x2, y2] in the mmdet-1.0 convention (x2 = x + w - 1).
        gt_labels: (n,) int, 0-based class indices.
        gt_masks: (n, Hp, Wp) uint8 binary masks at the padded input size.
        mask_feat_size: (Hf, Wf) of the batch's mask feature (stride 4).
        scale_ranges: per level (lower, upper) bounds on sqrt(box area), both inclusive.
        num_grids: per level grid size S.
        sigma: the centre region is the box scaled by sigma around the mask's centre of mass.

    Returns:
        list over levels of LevelTargets.
    """
    gt_bboxes, gt_labels, gt_masks = _checked_inputs(gt_bboxes, gt_labels, gt_masks)
    if len(scale_ranges) != len(num_grids):
        raise ValueError(f"scale_ranges has {len(scale_ranges)} levels but num_grids has {len(num_grids)}")
    feat_h, feat_w = (int(size) for size in mask_feat_size)
    # sqrt of the box area in float32, as the original computes it on float32 tensors
    box_sides = np.sqrt((gt_bboxes[:, 2] - gt_bboxes[:, 0]) * (gt_bboxes[:, 3] - gt_bboxes[:, 1]))
    half_ws = np.float32(0.5) * (gt_bboxes[:, 2] - gt_bboxes[:, 0]) * np.float32(sigma)
    half_hs = np.float32(0.5) * (gt_bboxes[:, 3] - gt_bboxes[:, 1]) * np.float32(sigma)
    centres_x, centres_y = _centres_of_mass(gt_masks)
    mask_areas = gt_masks.sum(axis=(1, 2), dtype=np.int64)

    level_targets = []
    for (lower, upper), num_grid in zip(scale_ranges, num_grids):
        instances = []
        for idx in np.flatnonzero((box_sides >= lower) & (box_sides <= upper)):
            if mask_areas[idx] == 0:
                continue
            cells = _positive_cells(centres_x[idx], centres_y[idx], half_ws[idx], half_hs[idx],
                                    (feat_h, feat_w), num_grid)
            instances.append((cells, int(gt_labels[idx]) + 1, gt_masks[idx]))
        level_targets.append(_level_targets(instances, num_grid, (feat_h, feat_w)))
    return level_targets


def _checked_inputs(gt_bboxes, gt_labels, gt_masks):
    gt_bboxes = np.asarray(gt_bboxes, dtype=np.float32).reshape(-1, 4)
    gt_labels = np.asarray(gt_labels, dtype=np.int64).reshape(-1)
    gt_masks = np.asarray(gt_masks)
    if gt_masks.ndim != 3:
        raise ValueError(f"gt_masks must be (n, H, W), got shape {gt_masks.shape}")
    if not len(gt_bboxes) == len(gt_labels) == len(gt_masks):
        raise ValueError(f"gt_bboxes ({len(gt_bboxes)}), gt_labels ({len(gt_labels)}) and "
                         f"gt_masks ({len(gt_masks)}) must have the same number of instances")
    if np.any(gt_labels < 0):
        raise ValueError(f"gt_labels must be 0-based class indices >= 0, got {gt_labels.min()}")
    return gt_bboxes, gt_labels, gt_masks.astype(np.uint8, copy=False)


def _centres_of_mass(gt_masks):
    """Mask centres (x, y) in pixels, float32.

    The moments are integers, summed exactly in int64 and rounded once to float32; the original
    sums them on float32 tensors, whose rounding depends on torch's reduction order. The two agree
    except when a centre lies within a few float32 ulps of a grid-cell border.
    """
    num, height, width = gt_masks.shape
    masks = gt_masks.astype(np.int64)
    m00 = np.maximum(masks.sum(axis=(1, 2)), 1).astype(np.float32)
    m10 = (masks.sum(axis=1) * np.arange(width, dtype=np.int64)).sum(axis=1).astype(np.float32)
    m01 = (masks.sum(axis=2) * np.arange(height, dtype=np.int64)).sum(axis=1).astype(np.float32)
    return m10 / m00, m01 / m00


def _grid_index(position, upsampled_len, num_grid):
    """Cell index of a float32 position: `int((position / upsampled_len) // (1. / num_grid))`.

    Exactly torch's float32 floor division (fmod based) with the scalar 1/S rounded to float32,
    which numpy's float32 floor_divide reproduces bit for bit.
    """
    relative = np.float32(position) / np.float32(upsampled_len)
    return int(np.floor_divide(relative, np.float32(1.0 / num_grid)))


def _positive_cells(centre_x, centre_y, half_w, half_h, mask_feat_size, num_grid):
    """Row-major flat indices of the cells of the centre region within the centre's 3x3 neighbourhood."""
    upsampled_h = mask_feat_size[0] * MASK_FEAT_STRIDE
    upsampled_w = mask_feat_size[1] * MASK_FEAT_STRIDE
    coord_h = _grid_index(centre_y, upsampled_h, num_grid)
    coord_w = _grid_index(centre_x, upsampled_w, num_grid)
    top_box = max(0, _grid_index(centre_y - half_h, upsampled_h, num_grid))
    down_box = min(num_grid - 1, _grid_index(centre_y + half_h, upsampled_h, num_grid))
    left_box = max(0, _grid_index(centre_x - half_w, upsampled_w, num_grid))
    right_box = min(num_grid - 1, _grid_index(centre_x + half_w, upsampled_w, num_grid))
    top, down = max(top_box, coord_h - 1), min(down_box, coord_h + 1)
    left, right = max(left_box, coord_w - 1), min(right_box, coord_w + 1)
    return [i * num_grid + j for i in range(top, down + 1) for j in range(left, right + 1)]


def _rescaled_mask_target(mask, mask_feat_size, stride=MASK_FEAT_STRIDE):
    """The mask at 1/``stride`` scale (as mmcv.imrescale: bilinear on uint8), top-left on a
    (Hf, Wf) canvas."""
    height, width = mask.shape
    new_size = (int(width / stride + 0.5), int(height / stride + 0.5))
    small = cv2.resize(mask, new_size, interpolation=cv2.INTER_LINEAR)
    if small.shape[0] > mask_feat_size[0] or small.shape[1] > mask_feat_size[1]:
        raise ValueError(f"gt mask of size {mask.shape} rescales to {small.shape}, larger than the "
                         f"mask feature size {tuple(mask_feat_size)}: masks must be at the padded input size")
    canvas = np.zeros(mask_feat_size, dtype=np.uint8)
    canvas[:small.shape[0], :small.shape[1]] = small
    return canvas


def _level_targets(instances, num_grid, mask_feat_size):
    """Assemble one level from (cells, 1-based label, mask) per instance, in the original's order."""
    cate_labels = np.zeros((num_grid, num_grid), dtype=np.int64)
    ins_ind_labels = np.zeros(num_grid * num_grid, dtype=bool)
    grid_order, ins_labels = [], []
    for cells, label, mask in instances:
        cate_labels.flat[cells] = label  # later instances overwrite earlier ones
        ins_ind_labels[cells] = True
        mask_target = _rescaled_mask_target(mask, mask_feat_size)
        grid_order.extend(cells)
        ins_labels.extend([mask_target] * len(cells))
    if ins_labels:
        ins_labels = np.stack(ins_labels)  # (n_pos, Hf, Wf)
    else:
        ins_labels = np.zeros((0,) + tuple(mask_feat_size), dtype=np.uint8)
    return LevelTargets(ins_labels, cate_labels, ins_ind_labels, np.asarray(grid_order, dtype=np.int64))
