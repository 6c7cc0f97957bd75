"""SOLOv2 target assignment: parity with the original's fixture and a torch transcription of it."""

import cv2
import numpy as np
import pytest
import torch

from conftest import parity_file
from mmdet_ms.core.targets import _grid_index, solov2_targets_single

R101_SCALE_RANGES = ((1, 96), (48, 192), (96, 384), (192, 768), (384, 2048))
R101_NUM_GRIDS = [40, 36, 24, 16, 12]


def original_targets_single(gt_bboxes, gt_labels, gt_masks, mask_feat_size, scale_ranges, num_grids, sigma):
    """The original's `solov2_target_single` on torch tensors (labels already 1-based), with
    `mmcv.imrescale(mask, 0.25)` written out as the cv2 call it makes."""
    gt_bboxes_raw = torch.from_numpy(gt_bboxes)
    gt_labels_raw = torch.from_numpy(gt_labels)
    gt_areas = torch.sqrt((gt_bboxes_raw[:, 2] - gt_bboxes_raw[:, 0]) * (gt_bboxes_raw[:, 3] - gt_bboxes_raw[:, 1]))
    results = []
    for (lower, upper), num_grid in zip(scale_ranges, num_grids):
        hit = ((gt_areas >= lower) & (gt_areas <= upper)).nonzero().flatten()
        cate_label = torch.zeros([num_grid, num_grid], dtype=torch.int64)
        ins_ind_label = torch.zeros([num_grid ** 2], dtype=torch.bool)
        ins_label, grid_order = [], []
        if len(hit):
            boxes, labels, masks = gt_bboxes_raw[hit], gt_labels_raw[hit], gt_masks[hit.numpy()]
            half_ws = 0.5 * (boxes[:, 2] - boxes[:, 0]) * sigma
            half_hs = 0.5 * (boxes[:, 3] - boxes[:, 1]) * sigma
            masks_pt = torch.from_numpy(masks)
            _, h, w = masks_pt.size()
            m00 = masks_pt.sum(dim=-1).sum(dim=-1).clamp(min=1e-6)
            center_ws = (masks_pt * torch.arange(0, w, dtype=torch.float32)).sum(dim=-1).sum(dim=-1) / m00
            center_hs = (masks_pt * torch.arange(0, h, dtype=torch.float32)[:, None]).sum(dim=-1).sum(dim=-1) / m00
            valid = masks_pt.sum(dim=-1).sum(dim=-1) > 0
            up = (mask_feat_size[0] * 4, mask_feat_size[1] * 4)
            for seg_mask, label, half_h, half_w, center_h, center_w, ok in zip(
                    masks, labels, half_hs, half_ws, center_hs, center_ws, valid):
                if not ok:
                    continue
                coord_w = int((center_w / up[1]) // (1. / num_grid))
                coord_h = int((center_h / up[0]) // (1. / num_grid))
                top_box = max(0, int(((center_h - half_h) / up[0]) // (1. / num_grid)))
                down_box = min(num_grid - 1, int(((center_h + half_h) / up[0]) // (1. / num_grid)))
                left_box = max(0, int(((center_w - half_w) / up[1]) // (1. / num_grid)))
                right_box = min(num_grid - 1, int(((center_w + half_w) / up[1]) // (1. / num_grid)))
                top, down = max(top_box, coord_h - 1), min(down_box, coord_h + 1)
                left, right = max(coord_w - 1, left_box), min(right_box, coord_w + 1)
                cate_label[top:(down + 1), left:(right + 1)] = label
                mh, mw = seg_mask.shape
                small = cv2.resize(seg_mask, (int(mw * 0.25 + 0.5), int(mh * 0.25 + 0.5)),
                                   interpolation=cv2.INTER_LINEAR)
                for i in range(top, down + 1):
                    for j in range(left, right + 1):
                        cur = torch.zeros(mask_feat_size, dtype=torch.uint8)
                        cur[:small.shape[0], :small.shape[1]] = torch.from_numpy(small)
                        ins_label.append(cur)
                        ins_ind_label[i * num_grid + j] = True
                        grid_order.append(i * num_grid + j)
        ins = torch.stack(ins_label).numpy() if ins_label else np.zeros((0,) + tuple(mask_feat_size), np.uint8)
        results.append((ins, cate_label.numpy(), ins_ind_label.numpy(), np.asarray(grid_order, np.int64)))
    return results


def assert_targets_equal(ours, reference):
    assert len(ours) == len(reference)
    for level, (got, (ins, cate, ind, order)) in enumerate(zip(ours, reference)):
        assert got.ins_labels.dtype == np.uint8 and got.cate_labels.dtype == np.int64
        assert got.ins_ind_labels.dtype == bool and got.grid_order.dtype == np.int64
        np.testing.assert_array_equal(got.grid_order, order, err_msg=f"grid_order level {level}")
        np.testing.assert_array_equal(got.cate_labels, cate, err_msg=f"cate_labels level {level}")
        np.testing.assert_array_equal(got.ins_ind_labels, ind, err_msg=f"ins_ind_labels level {level}")
        assert got.ins_labels.shape == ins.shape, f"level {level}"
        np.testing.assert_array_equal(got.ins_labels, ins, err_msg=f"ins_labels level {level}")


def random_instances(rng, num, pad_shape, max_side):
    """Random boxes with rectangular-ish masks inside them (mmdet-1.0 boxes: x2 = x + w - 1)."""
    boxes, masks = [], []
    for _ in range(num):
        w, h = rng.integers(2, max_side, size=2)
        x, y = rng.integers(0, pad_shape[1] - w), rng.integers(0, pad_shape[0] - h)
        mask = np.zeros(pad_shape, np.uint8)
        mask[y:y + h, x:x + w] = rng.random((h, w)) < 0.8
        boxes.append([x, y, x + w - 1, y + h - 1])
        masks.append(mask)
    labels = rng.integers(0, 5, size=num)
    return np.asarray(boxes, np.float32), labels.astype(np.int64), np.stack(masks)


def test_targets_match_original_fixture():
    data = np.load(parity_file("r101_seed0_coffee_loss.npz"))
    masks = np.unpackbits(data["gt_masks_packed"], axis=-1)[..., :1216]
    assert masks.shape == (5, 800, 1216)
    targets = solov2_targets_single(data["gt_boxes"], data["gt_labels"] - 1, masks, (200, 304),
                                    R101_SCALE_RANGES, R101_NUM_GRIDS, sigma=0.2)
    reference = []
    for level in range(5):
        ins = np.unpackbits(data[f"ins_label{level}_packed"], axis=-1)[..., :304]
        reference.append((ins, data[f"cate_label{level}"], data[f"ins_ind_label{level}"], data[f"grid_order{level}"]))
    assert sum(len(r[3]) for r in reference) == 41
    assert_targets_equal(targets, reference)


@pytest.mark.parametrize("seed", range(4))
def test_targets_match_torch_transcription_on_random_instances(seed):
    rng = np.random.default_rng(seed)
    pad_shape, feat_size = (128, 192), (32, 48)
    scale_ranges, num_grids = ((1, 24), (16, 48), (32, 96), (64, 200)), [12, 10, 7, 5]
    boxes, labels, masks = random_instances(rng, 12, pad_shape, 100)
    masks[3] = 0  # an empty mask must be skipped
    ours = solov2_targets_single(boxes, labels, masks, feat_size, scale_ranges, num_grids, sigma=0.2)
    reference = original_targets_single(boxes, labels + 1, masks, feat_size, scale_ranges, num_grids, 0.2)
    assert sum(len(r[3]) for r in reference) > 12
    assert_targets_equal(ours, reference)


def test_grid_index_is_torch_float32_floor_division():
    rng = np.random.default_rng(0)
    for num_grid in (40, 36, 24, 16, 12, 7):
        cells = np.arange(-2, num_grid + 2)
        borders = (cells / num_grid).astype(np.float32)
        values = np.concatenate([rng.uniform(-0.2, 1.2, 300).astype(np.float32), borders,
                                 np.nextafter(borders, np.float32(2)), np.nextafter(borders, np.float32(-2)),
                                 cells.astype(np.float32) * np.float32(1.0 / num_grid)])
        expected = [int(torch.tensor(v, dtype=torch.float32) // (1. / num_grid)) for v in values]
        assert [_grid_index(v, 1, num_grid) for v in values] == expected


def test_image_without_instances_is_all_background():
    targets = solov2_targets_single(np.zeros((0, 4), np.float32), np.zeros(0, np.int64),
                                    np.zeros((0, 64, 96), np.uint8), (16, 24), ((1, 32), (16, 64)), [6, 4])
    assert len(targets) == 2
    for level_targets, num_grid in zip(targets, [6, 4]):
        assert level_targets.ins_labels.shape == (0, 16, 24)
        assert level_targets.grid_order.shape == (0,)
        assert not level_targets.cate_labels.any() and level_targets.cate_labels.shape == (num_grid, num_grid)
        assert not level_targets.ins_ind_labels.any()


def square_instance(x1, y1, side, pad_shape=(64, 96)):
    mask = np.zeros(pad_shape, np.uint8)
    mask[y1:y1 + side, x1:x1 + side] = 1
    return [x1, y1, x1 + side - 1, y1 + side - 1], mask


def test_instance_in_overlapping_scale_ranges_lands_on_two_levels():
    box, mask = square_instance(22, 10, 31)  # sqrt area = 30, in (1, 32) and (16, 64)
    targets = solov2_targets_single(np.array([box], np.float32), np.array([2]), mask[None], (16, 24),
                                    ((1, 32), (16, 64), (48, 96)), [6, 4, 3])
    # centre (37, 25) of a 96x64 input: cell (2, 2) of 6x6, (1, 1) of 4x4; the region (±3 px) stays inside
    np.testing.assert_array_equal(targets[0].grid_order, [2 * 6 + 2])
    np.testing.assert_array_equal(targets[1].grid_order, [1 * 4 + 1])
    assert targets[2].grid_order.size == 0
    assert targets[0].cate_labels[2, 2] == 3 and targets[0].cate_labels.sum() == 3
    assert targets[1].cate_labels[1, 1] == 3 and targets[1].cate_labels.sum() == 3
    expected_mask = cv2.resize(mask, (24, 16), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(targets[0].ins_labels[0], expected_mask)
    assert expected_mask.sum() > 0


def test_two_instances_on_one_cell_give_duplicate_targets_and_later_label_wins():
    box_a, mask_a = square_instance(30, 20, 20)
    box_b, mask_b = square_instance(32, 22, 16)
    targets = solov2_targets_single(np.array([box_a, box_b], np.float32), np.array([0, 4]),
                                    np.stack([mask_a, mask_b]), (16, 24), ((1, 64),), [4])
    level = targets[0]
    # both centres (39.5, 29.5) fall in cell (1, 1) of a 4x4 grid over 96x64; regions stay in it
    np.testing.assert_array_equal(level.grid_order, [5, 5])
    assert level.cate_labels[1, 1] == 5 and level.cate_labels.sum() == 5
    assert level.ins_ind_labels.sum() == 1
    assert not np.array_equal(level.ins_labels[0], level.ins_labels[1])


def test_large_centre_region_is_cut_to_the_3x3_neighbourhood():
    box, mask = square_instance(0, 0, 64, pad_shape=(64, 96))
    big_box = np.array([[0, 0, 95, 63]], np.float32)  # half sizes 0.5 * 0.2 * (95, 63) = (9.5, 6.3)
    targets = solov2_targets_single(big_box, np.array([1]), mask[None], (16, 24), ((1, 100),), [12])
    # centre (31.5, 31.5) on 96x64 with 12x12 cells: cell row 5, col 3; region rows 31.5±6.3 → 4..7,
    # cols 31.5±9.5 → 2..5; cut to the neighbourhood: rows 4..6, cols 2..4
    expected = [i * 12 + j for i in range(4, 7) for j in range(2, 5)]
    np.testing.assert_array_equal(targets[0].grid_order, expected)
    assert (targets[0].cate_labels == 2).sum() == 9


def test_mismatched_inputs_raise():
    with pytest.raises(ValueError, match="same number of instances"):
        solov2_targets_single(np.zeros((2, 4), np.float32), np.zeros(1, np.int64),
                              np.zeros((2, 8, 8), np.uint8), (2, 2), ((1, 10),), [2])
    with pytest.raises(ValueError, match="0-based"):
        solov2_targets_single(np.zeros((1, 4), np.float32), np.array([-1]),
                              np.zeros((1, 8, 8), np.uint8), (2, 2), ((1, 10),), [2])
