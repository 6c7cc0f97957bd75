from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmdet_ms.core.instances import InstanceResult
from mmdet_ms.core.postprocess import get_seg_single, resize_bilinear
from tools.original_forward import torch_original_get_seg_single

TEST_CFG = dict(nms_pre=500, score_thr=0.1, mask_thr=0.5, update_thr=0.05, kernel="gaussian",
                sigma=2.0, max_per_img=100)


def _cfg(**overrides):
    return {**TEST_CFG, **overrides}


# ---------------------------------------------------------------- hand-built case
# Mask feature 4x6 (padded input 16x24), image 16x20 after resize, original 8x10: every
# final mask is its feature-level region scaled x2 (x4 up, then /2), cropped to 8x10.
# Channel e of the mask feature is +20 on region e and -20 elsewhere, so the one-hot kernel e
# gives sigmoid(+-20): a soft mask of exactly 1.0 (float32) on the region, ~2e-9 off it.
FEAT_SIZE = (4, 6)
REGIONS = {
    "A": (slice(0, 2), slice(0, 3)),  # area 6
    "B": (slice(0, 2), slice(1, 4)),  # area 6, IoU(A, B) = 4 / 8 = 1/2
    "C": (slice(2, 4), slice(4, 6)),  # area 4
    "D": (slice(3, 4), slice(0, 2)),  # area 2
}
NUM_GRIDS = [2, 1]  # cells 0..3 on level 0, cell 4 on level 1
STRIDES = [2, 8]


def _region_mask(name):
    mask = np.zeros(FEAT_SIZE, dtype=bool)
    mask[REGIONS[name]] = True
    return mask


def _hand_inputs():
    mask_feat = np.stack([np.where(_region_mask(name), 20.0, -20.0) for name in REGIONS])
    one_hot = np.eye(len(REGIONS), dtype=np.float32)
    kernel_preds = np.stack([
        one_hot[0],         # cell 0: region A
        one_hot[1],         # cell 1: region B
        one_hot[3],         # cell 2: region D, area 2 <= stride 2: dropped
        one_hot[2] / 20,    # cell 3: region C with logits +-1: maskness sigmoid(1)
        one_hot[2],         # cell 4 (level 1): region C, area 4 <= stride 8: dropped
    ])
    cate_scores = np.array([[0.9, 0.05],
                            [0.8, 0.6],
                            [0.95, 0.0],
                            [0.0, 0.3],
                            [0.99, 0.0]], dtype=np.float32)
    return cate_scores, kernel_preds, mask_feat.astype(np.float32)


def _run_hand_case(test_cfg):
    cate_scores, kernel_preds, mask_feat = _hand_inputs()
    return get_seg_single(cate_scores, kernel_preds, mask_feat, NUM_GRIDS, STRIDES,
                          img_shape=(16, 20, 3), ori_shape=(8, 10, 3), test_cfg=test_cfg)


def _final_mask(name):
    return np.kron(_region_mask(name), np.ones((2, 2), dtype=bool))[:8, :10]


SIGMOID_1 = 1 / (1 + np.exp(-1.0))


def test_hand_case_labels_scores_and_masks():
    # Candidates left after the area filter, by score: A/class 0 0.9, B/class 0 0.8,
    # B/class 1 0.6, C/class 1 0.3 * sigmoid(1). Matrix NMS: B/class 0 overlaps A/class 0 with
    # IoU 1/2 -> 0.8 * exp(-2 * 1/4); B/class 1 and C/class 1 do not overlap.
    result = _run_hand_case(_cfg())
    np.testing.assert_array_equal(result.labels, [0, 1, 0, 1])
    np.testing.assert_allclose(result.scores, [0.9, 0.6, 0.8 * np.exp(-0.5), 0.3 * SIGMOID_1],
                               rtol=1e-6)
    assert result.masks.shape == (4, 8, 10)
    for mask, region in zip(result.masks, ["A", "B", "B", "C"]):
        np.testing.assert_array_equal(mask, _final_mask(region))


def test_hand_case_nms_pre_caps_before_matrix_nms():
    # Only A/class 0 and B/class 0 enter Matrix NMS.
    result = _run_hand_case(_cfg(nms_pre=2))
    np.testing.assert_array_equal(result.labels, [0, 0])
    np.testing.assert_allclose(result.scores, [0.9, 0.8 * np.exp(-0.5)], rtol=1e-6)


def test_hand_case_max_per_img_and_update_thr():
    capped = _run_hand_case(_cfg(max_per_img=2))
    np.testing.assert_allclose(capped.scores, [0.9, 0.6], rtol=1e-6)
    # 0.8 * exp(-0.5) = 0.485 and 0.3 * sigmoid(1) = 0.219 fall below update_thr 0.5.
    thresholded = _run_hand_case(_cfg(update_thr=0.5))
    np.testing.assert_array_equal(thresholded.labels, [0, 1])


def test_hand_case_accepts_attribute_config():
    result = _run_hand_case(SimpleNamespace(**TEST_CFG))
    assert len(result) == 4


def test_no_candidate_above_score_thr_gives_empty_result():
    result = _run_hand_case(_cfg(score_thr=0.999))
    assert isinstance(result, InstanceResult)
    assert len(result) == 0
    assert result.masks.shape == (0, 8, 10)
    assert result.boxes.shape == (0, 4)


def test_all_candidates_too_small_gives_empty_result():
    cate_scores, kernel_preds, mask_feat = _hand_inputs()
    only_small = np.zeros_like(cate_scores)
    only_small[2, 0] = 0.95  # region D on level 0: area 2 <= stride 2
    only_small[4, 0] = 0.99  # region C on level 1: area 4 <= stride 8
    result = get_seg_single(only_small, kernel_preds, mask_feat, NUM_GRIDS, STRIDES,
                            (16, 20), (8, 10), _cfg())
    assert len(result) == 0
    assert result.image_size == (8, 10)


def test_everything_below_update_thr_gives_empty_result():
    assert len(_run_hand_case(_cfg(update_thr=0.95))) == 0


def test_missing_config_key_and_wrong_shapes_are_errors():
    cate_scores, kernel_preds, mask_feat = _hand_inputs()
    config = _cfg()
    del config["sigma"]
    with pytest.raises(ValueError, match="sigma"):
        get_seg_single(cate_scores, kernel_preds, mask_feat, NUM_GRIDS, STRIDES, (16, 20), (8, 10),
                       config)
    with pytest.raises(ValueError, match="cate_scores"):
        get_seg_single(cate_scores[:4], kernel_preds, mask_feat, NUM_GRIDS, STRIDES, (16, 20), (8, 10),
                       _cfg())
    with pytest.raises(ValueError, match="mask_feat"):
        get_seg_single(cate_scores, kernel_preds, mask_feat[:3], NUM_GRIDS, STRIDES, (16, 20), (8, 10),
                       _cfg())


# ---------------------------------------------------------------- against the original, in torch
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("kernel", ["gaussian", "linear"])
def test_matches_original_on_random_inputs(seed, kernel):
    rng = np.random.default_rng(seed)
    num_grids, strides, num_classes, channels = [6, 4, 2], [8, 8, 16], 3, 8
    num_cells = sum(grid * grid for grid in num_grids)
    cate_scores = (rng.random((num_cells, num_classes)) ** 3).astype(np.float32)
    kernel_preds = rng.standard_normal((num_cells, channels)).astype(np.float32)
    mask_feat = rng.standard_normal((channels, 12, 20)).astype(np.float32)
    # A constant channel acts as a bias: a strongly negative one leaves a few pixels, so that the
    # area filter drops ~15% of the ~90 candidates; nms_pre, update_thr and max_per_img all cut.
    mask_feat[0] = 1.0
    kernel_preds[::3, 0] = -rng.uniform(2, 7, size=len(kernel_preds[::3]))
    cfg = SimpleNamespace(**_cfg(kernel=kernel, nms_pre=40, max_per_img=30, update_thr=0.2))

    expected = torch_original_get_seg_single(cate_scores, kernel_preds, mask_feat, num_grids,
                                             strides, (45, 78), (30, 52), cfg)
    result = get_seg_single(cate_scores, kernel_preds, mask_feat, num_grids, strides, (45, 78),
                            (30, 52), cfg)
    expected_masks, expected_labels, expected_scores = expected
    assert len(result) == len(expected_labels) > 20
    np.testing.assert_array_equal(result.labels, expected_labels)
    np.testing.assert_allclose(result.scores, expected_scores, atol=1e-5)
    np.testing.assert_array_equal(result.masks, expected_masks)


# ---------------------------------------------------------------- resize and results
@pytest.mark.parametrize("in_size, out_size", [
    ((12, 20), (48, 80)),     # x4, as the mask feature to the padded input
    ((45, 78), (31, 53)),     # down to odd sizes
    ((7, 9), (13, 17)),       # up to odd sizes
    ((397, 611), (201, 299)),  # large odd sizes, where cv2.resize is off by ~1e-4
    ((3, 1), (1, 1)),
    ((13, 17), (13, 17)),     # same size: the identity
])
def test_resize_bilinear_matches_torch(in_size, out_size):
    image = np.random.default_rng(0).random(in_size, dtype=np.float32)
    expected = F.interpolate(torch.from_numpy(image)[None, None], size=out_size, mode="bilinear",
                             align_corners=False)[0, 0].numpy()
    resized = resize_bilinear(image, out_size)
    assert resized.dtype == np.float32
    np.testing.assert_allclose(resized, expected, rtol=0, atol=2e-7)


def test_resize_bilinear_of_a_batch_equals_one_by_one():
    images = np.random.default_rng(1).random((2, 3, 45, 78), dtype=np.float32)
    resized = resize_bilinear(images, (31, 53))
    assert resized.shape == (2, 3, 31, 53)
    for index in np.ndindex(2, 3):
        np.testing.assert_array_equal(resized[index], resize_bilinear(images[index], (31, 53)))


def test_instance_boxes_from_masks():
    masks = np.zeros((3, 5, 7), dtype=bool)
    masks[0, 1:3, 2:6] = True  # rows 1..2, cols 2..5
    masks[1, 4, 0] = True      # one pixel
    result = InstanceResult(masks=masks, labels=[2, 0, 1], scores=[0.9, 0.5, 0.1])
    np.testing.assert_array_equal(result.boxes, [[2, 1, 6, 3], [0, 4, 1, 5], [0, 0, 0, 0]])
    assert result.boxes.dtype == np.float32


def test_instance_select_and_empty():
    masks = np.zeros((3, 2, 2), dtype=bool)
    masks[1, 0, 0] = True
    result = InstanceResult(masks=masks, labels=[2, 0, 1], scores=[0.9, 0.5, 0.1])
    chosen = result.select([1, 2])
    np.testing.assert_array_equal(chosen.labels, [0, 1])
    assert chosen.masks[0, 0, 0]
    np.testing.assert_array_equal(result.select(result.scores > 0.4).labels, [2, 0])
    assert len(result.select([])) == 0
    empty = InstanceResult.empty(4, 6)
    assert len(empty) == 0 and empty.image_size == (4, 6) and empty.labels.dtype == np.int64
    with pytest.raises(ValueError, match="labels"):
        InstanceResult(masks=masks, labels=[0], scores=[0.1, 0.2, 0.3])
