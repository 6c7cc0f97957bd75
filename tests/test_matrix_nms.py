"""Matrix NMS on hand-computed cases (random masks against the original: test_postprocess.py)."""
import numpy as np
import pytest

from mmdet_ms.core.matrix_nms import matrix_nms


def _masks_from_pixels(pixel_sets, width=6):
    """(n, 1, width) bool masks, mask k set on the columns in pixel_sets[k]."""
    masks = np.zeros((len(pixel_sets), 1, width), dtype=bool)
    for index, pixels in enumerate(pixel_sets):
        masks[index, 0, list(pixels)] = True
    return masks


# Four masks on a 1x6 image, sorted by score:
#   0: class 0, score 0.9, columns {0,1,2,3} (area 4)
#   1: class 0, score 0.8, columns {2,3,4,5} (area 4): IoU(0,1) = 2/6 = 1/3
#   2: class 1, score 0.7, columns {0,1,2,3}: same pixels as mask 0 but another class -> no decay
#   3: class 0, score 0.6, columns {4,5}   (area 2): IoU(0,3) = 0, IoU(1,3) = 2/4 = 1/2
# Same-class upper-triangular IoU: iou[0,1] = 1/3, iou[1,3] = 1/2, all else 0.
# Compensation (column max): comp = [0, 1/3, 0, 1/2]; row i is divided by its own comp.
MASKS = _masks_from_pixels([{0, 1, 2, 3}, {2, 3, 4, 5}, {0, 1, 2, 3}, {4, 5}])
LABELS = np.array([0, 0, 1, 0])
SCORES = np.array([0.9, 0.8, 0.7, 0.6], dtype=np.float32)


def test_gaussian_kernel_hand_computed():
    # decay_j = min_i exp(-2 iou_ij^2) / exp(-2 comp_i^2):
    #   j=0: every iou is 0, the smallest ratio is 1 (row 0 or 2, comp 0) -> 0.9
    #   j=1: row 0 gives exp(-2/9) -> 0.8 * exp(-2/9)
    #   j=2: no same-class overlap -> 0.7
    #   j=3: row 1 gives exp(-2/4) / exp(-2/9) = exp(-5/18) (compensated: mask 1 was itself
    #        suppressed by mask 0) -> 0.6 * exp(-5/18)
    expected = np.array([0.9, 0.8 * np.exp(-2 / 9), 0.7, 0.6 * np.exp(-5 / 18)])
    scores = matrix_nms(MASKS, LABELS, SCORES, kernel="gaussian", sigma=2.0)
    assert scores.dtype == np.float32
    np.testing.assert_allclose(scores, expected, rtol=1e-6)


def test_gaussian_sigma_multiplies():
    # sigma = 0.5: mask 1 decays by exp(-0.5 * (1/3)^2) = exp(-1/18); the paper's division would
    # give exp(-(1/3)^2 / 0.5) = exp(-2/9).
    scores = matrix_nms(MASKS, LABELS, SCORES, kernel="gaussian", sigma=0.5)
    np.testing.assert_allclose(scores[1], 0.8 * np.exp(-1 / 18), rtol=1e-6)


def test_linear_kernel_hand_computed():
    # decay_j = min_i (1 - iou_ij) / (1 - comp_i):
    #   j=0: 1 (rows with comp 0) -> 0.9
    #   j=1: row 0 gives (1 - 1/3) / 1 = 2/3 -> 0.8 * 2/3
    #   j=2: 1 -> 0.7
    #   j=3: row 1 gives (1 - 1/2) / (1 - 1/3) = 3/4 -> 0.6 * 3/4 = 0.45
    expected = np.array([0.9, 0.8 * 2 / 3, 0.7, 0.45])
    scores = matrix_nms(MASKS, LABELS, SCORES, kernel="linear")
    np.testing.assert_allclose(scores, expected, rtol=1e-6)


def test_same_masks_other_class_suppress_when_labels_match():
    # Mask 2 relabelled to class 0: IoU(0,2) = 1, so it decays by exp(-2) (row 0, comp 0).
    scores = matrix_nms(MASKS, np.array([0, 0, 0, 0]), SCORES)
    np.testing.assert_allclose(scores[2], 0.7 * np.exp(-2.0), rtol=1e-6)


def test_given_sum_masks_used_as_is():
    from_masks = matrix_nms(MASKS, LABELS, SCORES)
    given = matrix_nms(MASKS, LABELS, SCORES, sum_masks=MASKS.sum(axis=(1, 2)).astype(np.float32))
    np.testing.assert_array_equal(from_masks, given)


def test_highest_score_never_decays():
    rng = np.random.default_rng(3)
    masks = rng.random((7, 5, 5)) > 0.4
    scores = np.sort(rng.random(7).astype(np.float32))[::-1]
    updated = matrix_nms(masks, rng.integers(0, 2, size=7), scores)
    assert updated[0] == scores[0]
    assert np.all(updated <= scores)


def test_no_mask_gives_empty_scores():
    scores = matrix_nms(np.zeros((0, 4, 4), dtype=bool), np.zeros((0,), dtype=np.int64),
                        np.zeros((0,), dtype=np.float32))
    assert scores.shape == (0,)
    assert scores.dtype == np.float32


def test_unknown_kernel_is_an_error():
    with pytest.raises(ValueError, match="kernel"):
        matrix_nms(MASKS, LABELS, SCORES, kernel="gauss")

