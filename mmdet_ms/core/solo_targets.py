"""SOLO v1 / Decoupled SOLO training targets for one image (``solo_target_single`` of the
original's ``SOLOHead`` and ``DecoupledSOLOHead``, which compute the same targets).

The positive cells and category labels are SOLOv2's (`targets`): same scale ranges, centre of
mass, centre region and 3x3 neighbourhood. What differs is the mask target: at the level's own
mask resolution (stride ``strides[l] / 2``) instead of stride 4, and one per positive cell (a cell
that two instances claim takes the later one's mask), the cells in ascending order.
"""
import numpy as np

from .targets import (LevelTargets, _centres_of_mass, _checked_inputs, _positive_cells,
                      _rescaled_mask_target)


def solo_targets_single(gt_bboxes, gt_labels, gt_masks, mask_sizes, strides, scale_ranges,
                        num_grids, sigma=0.2):
    """Targets of one image on every level.

    Args:
        gt_bboxes: (n, 4) [x1, y1, x2, y2] in the mmdet-1.0 convention (x2 = x + w - 1).
        gt_labels: (n,) int, 0-based class indices.
        gt_masks: (n, Hp, Wp) uint8 binary masks at the padded input size.
        mask_sizes: per level (H_l, W_l) of the head's mask predictions (level 0 at stride 4).
        strides: per level nominal stride; masks of level l are rescaled by 2 / strides[l].
        scale_ranges: per level (lower, upper) bounds on sqrt(box area), both inclusive.
        num_grids: per level grid size S.
        sigma: the centre region is the box scaled by sigma around the mask's centre of mass.

    Returns:
        list over levels of `targets.LevelTargets`: ``ins_labels`` (n_pos, H_l, W_l) and
        ``grid_order`` (n_pos,) ascending, without duplicates.
    """
    gt_bboxes, gt_labels, gt_masks = _checked_inputs(gt_bboxes, gt_labels, gt_masks)
    if not len(mask_sizes) == len(strides) == len(scale_ranges) == len(num_grids):
        raise ValueError(f"mask_sizes ({len(mask_sizes)}), strides ({len(strides)}), scale_ranges "
                         f"({len(scale_ranges)}) and num_grids ({len(num_grids)}) must have one "
                         "entry per level")
    box_sides = np.sqrt((gt_bboxes[:, 2] - gt_bboxes[:, 0]) * (gt_bboxes[:, 3] - gt_bboxes[:, 1]))
    half_ws = np.float32(0.5) * (gt_bboxes[:, 2] - gt_bboxes[:, 0]) * np.float32(sigma)
    half_hs = np.float32(0.5) * (gt_bboxes[:, 3] - gt_bboxes[:, 1]) * np.float32(sigma)
    centres_x, centres_y = _centres_of_mass(gt_masks)
    mask_areas = gt_masks.sum(axis=(1, 2), dtype=np.int64)
    grid_size = tuple(int(side) for side in mask_sizes[0])  # level 0 x 4 = the padded input

    level_targets = []
    for (lower, upper), num_grid, stride, mask_size in zip(scale_ranges, num_grids, strides,
                                                           mask_sizes):
        mask_size = tuple(int(side) for side in mask_size)
        cate_labels = np.zeros((num_grid, num_grid), dtype=np.int64)
        mask_of_cell = {}
        for idx in np.flatnonzero((box_sides >= lower) & (box_sides <= upper)):
            if mask_areas[idx] == 0:
                continue
            cells = _positive_cells(centres_x[idx], centres_y[idx], half_ws[idx], half_hs[idx],
                                    grid_size, num_grid)
            cate_labels.flat[cells] = int(gt_labels[idx]) + 1  # later instances overwrite
            mask = _rescaled_mask_target(gt_masks[idx], mask_size, stride / 2)
            mask_of_cell.update((cell, mask) for cell in cells)
        grid_order = np.array(sorted(mask_of_cell), dtype=np.int64)
        ins_labels = (np.stack([mask_of_cell[cell] for cell in grid_order]) if len(grid_order)
                      else np.zeros((0,) + mask_size, dtype=np.uint8))  # (n_pos, H_l, W_l)
        ins_ind_labels = np.zeros(num_grid * num_grid, dtype=bool)
        ins_ind_labels[grid_order] = True
        level_targets.append(LevelTargets(ins_labels, cate_labels, ins_ind_labels, grid_order))
    return level_targets
