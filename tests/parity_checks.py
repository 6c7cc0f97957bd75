"""What the parity tests (../shared/parity) check, for any SOLOv2 fixture: the fixture README's
tolerances and its matching rule for the final instances, on the port's outputs for one image."""
import mindspore as ms
import mindspore.ops as ops
import numpy as np
import pytest

from mmdet_ms.apis.runners import build_runner

NUM_GRIDS = (40, 36, 24, 16, 12)
SCORE_ATOL = 1e-3  # the fixture README's tolerance for category scores and kernels
# The port's scores differ from the original's by up to ~5e-6 relative (9e-7 at 0.17), so where a
# cell's score and the largest of its points-NMS neighbours are relatively closer than this,
# keeping or suppressing it are both right (on the R101 fixture: 54 of 310k cells).
NEAR_TIE_RTOL = 1e-4
MAX_NEAR_TIE_FLIPS = 3


def scores_before_points_nms(model, batch):
    """Per level, the sigmoid category scores (S, S, C) before points NMS."""
    cate_logits = model.forward_features(ms.Tensor(batch))[0]  # per level (1, C, S, S)
    return [ops.sigmoid(logits).asnumpy()[0].transpose(1, 2, 0) for logits in cate_logits]


def pynative_outputs(model, batch, img_meta):
    """``run_outputs`` for PyNative from one forward: the network's ``construct`` is
    ``forward_features`` then ``bbox_head.flatten_for_test``, done here in two steps so that the
    scores before points NMS come from the same pass (for the slow DCN models)."""
    cate_preds, kernel_preds, mask_feat = model.forward_features(ms.Tensor(batch))
    cate_scores, kernels = model.bbox_head.flatten_for_test(cate_preds, kernel_preds)
    cate_scores, kernels, mask_feat = (t.asnumpy() for t in (cate_scores, kernels, mask_feat))
    before_nms = [ops.sigmoid(logits).asnumpy()[0].transpose(1, 2, 0) for logits in cate_preds]
    result = model.postprocess(cate_scores, kernels, mask_feat, [img_meta])[0]
    return dict(meta=img_meta, cate=cate_scores[0], kernels=kernels[0], mask_feat=mask_feat[0],
                result=result, cate_before_nms=before_nms)


def run_outputs(model, mode, batch, img_meta, cate_before_nms):
    """The port's outputs for one image (batch (1, 3, H, W)) run by ``mode``'s runner."""
    cate_scores, kernels, mask_feat = build_runner(model, mode)(batch)
    result = model.postprocess(cate_scores, kernels, mask_feat, [img_meta])[0]
    return dict(meta=img_meta, cate=cate_scores[0], kernels=kernels[0], mask_feat=mask_feat[0],
                result=result, cate_before_nms=cate_before_nms)


def near_ties(scores):
    """(S, S, C) bool: cells whose points-NMS decision is a float near-tie, i.e. whose score is
    within NEAR_TIE_RTOL of the largest of their up, left and up-left neighbours."""
    padded = np.pad(scores, ((1, 0), (1, 0), (0, 0)), constant_values=-np.inf)
    neighbours = np.maximum(np.maximum(padded[:-1, 1:], padded[1:, :-1]), padded[:-1, :-1])
    return np.abs(scores - neighbours) <= NEAR_TIE_RTOL * scores


def split_levels(flat):
    """(ΣS², C) cell-major → per level (S, S, C)."""
    levels, start = [], 0
    for grid in NUM_GRIDS:
        levels.append(flat[start:start + grid * grid].reshape(grid, grid, -1))
        start += grid * grid
    return levels


def mask_iou(a, b):
    union = np.logical_or(a, b).sum()
    return np.logical_and(a, b).sum() / union if union else 1.0


def check_metas(outputs, reference):
    meta = outputs["meta"]
    for key in ("ori_shape", "img_shape", "pad_shape"):
        assert tuple(meta[key]) == tuple(reference[key])
    assert meta["scale_factor"] == pytest.approx(float(reference["scale_factor"]))


def check_category_scores(outputs, reference):
    """Within SCORE_ATOL everywhere but at points-NMS near-ties, where each side either kept the
    cell (the same score) or suppressed it (0)."""
    check_scores_up_to_near_ties(split_levels(outputs["cate"]),
                                 [reference[f"cate{level}"][0] for level in range(len(NUM_GRIDS))],
                                 outputs["cate_before_nms"], SCORE_ATOL)


def check_scores_up_to_near_ties(cates, ref_cates, before_nms, atol):
    """Per level (S, S, C) scores after points NMS against reference ones, both from the scores
    ``before_nms``: within ``atol`` but at near-ties (`near_ties`), where each side either kept
    the cell or suppressed it, and at most MAX_NEAR_TIE_FLIPS cells differ."""
    flips = 0
    for level, (cate, ref_cate, scores_before) in enumerate(zip(cates, ref_cates, before_nms)):
        tie = near_ties(scores_before)
        assert np.abs(cate - ref_cate)[~tie].max() <= atol, f"level {level}"
        for scores in (cate[tie], ref_cate[tie]):
            kept_or_suppressed = np.minimum(np.abs(scores), np.abs(scores - scores_before[tie]))
            assert kept_or_suppressed.max(initial=0) <= atol, f"level {level}"
        flips += int((np.abs(cate - ref_cate)[tie] > atol).sum())
    assert flips <= MAX_NEAR_TIE_FLIPS


def check_category_scores_and_kernels(outputs, reference):
    """`check_category_scores`, and the kernels within SCORE_ATOL."""
    check_category_scores(outputs, reference)
    for level, kernel in enumerate(split_levels(outputs["kernels"])):
        assert np.abs(kernel.transpose(2, 0, 1) - reference[f"kernel{level}"][0]).max() <= SCORE_ATOL


def check_mask_feature(outputs, reference, shape):
    """shape: the mask feature's (E, H/4, W/4)."""
    mask_feat = outputs["mask_feat"]
    assert mask_feat.shape == shape
    stats = np.stack([mask_feat.mean(axis=(1, 2)), mask_feat.std(axis=(1, 2))])
    np.testing.assert_allclose(stats, reference["mask_feat_stats"], atol=1e-3)
    np.testing.assert_allclose(mask_feat[:, ::16, ::16], reference["mask_feat_sample"], atol=1e-3)


def check_final_instances(outputs, reference, count, image_size):
    """The same ``count`` instances; each reference instance matched by one of the port's with the
    same label, |score difference| ≤ 1e-3 and mask IoU ≥ 0.99. image_size: (H, W)."""
    result = outputs["result"]
    ref_masks = np.unpackbits(reference["masks"], axis=-1)[..., :int(reference["masks_width"])]
    ref_masks = ref_masks.astype(bool)
    assert len(result) == len(reference["labels"]) == count
    assert result.masks.shape[1:] == tuple(image_size)
    unmatched = list(range(len(result)))
    for ref_mask, ref_label, ref_score in zip(ref_masks, reference["labels"], reference["scores"]):
        match = next((i for i in unmatched
                      if result.labels[i] == ref_label
                      and abs(result.scores[i] - ref_score) <= 1e-3
                      and mask_iou(result.masks[i], ref_mask) >= 0.99), None)
        assert match is not None, f"no match for reference instance label {ref_label} {ref_score}"
        unmatched.remove(match)
