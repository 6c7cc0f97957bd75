"""The port against the original PyTorch SOLOv2 (../shared/parity): same weights, same image →
same category scores, kernels, mask feature and final instances."""
import numpy as np
import pytest

from conftest import R101_CONFIG, parity_file
from mmdet_ms.apis import init_detector
from mmdet_ms.apis.inference import preprocess, run_network

pytestmark = pytest.mark.slow
NUM_GRIDS = (40, 36, 24, 16, 12)


@pytest.fixture(scope="module")
def reference():
    return dict(np.load(parity_file("r101_seed0_coffee_infer.npz")))


@pytest.fixture(scope="module")
def port_outputs(r101_ckpt):
    model = init_detector(R101_CONFIG, r101_ckpt, device_target="CPU")
    batch, img_meta = preprocess(model, parity_file("coffee.jpg"))
    cate_scores, kernels, mask_feat = run_network(model, batch)
    result = model.postprocess(cate_scores, kernels, mask_feat, [img_meta])[0]
    return dict(meta=img_meta, cate=cate_scores[0], kernels=kernels[0], mask_feat=mask_feat[0],
                result=result)


def split_levels(flat):
    """(ΣS², C) cell-major → per level (S, S, C)."""
    levels, start = [], 0
    for grid in NUM_GRIDS:
        levels.append(flat[start:start + grid * grid].reshape(grid, grid, -1))
        start += grid * grid
    return levels


def test_metas(port_outputs, reference):
    meta = port_outputs["meta"]
    for key in ("ori_shape", "img_shape", "pad_shape"):
        assert tuple(meta[key]) == tuple(reference[key])
    assert meta["scale_factor"] == pytest.approx(float(reference["scale_factor"]))


def test_category_scores_and_kernels(port_outputs, reference):
    for level, (cate, kernel) in enumerate(zip(split_levels(port_outputs["cate"]),
                                               split_levels(port_outputs["kernels"]))):
        assert np.abs(cate - reference[f"cate{level}"][0]).max() <= 1e-3
        assert np.abs(kernel.transpose(2, 0, 1) - reference[f"kernel{level}"][0]).max() <= 1e-3


def test_mask_feature(port_outputs, reference):
    mask_feat = port_outputs["mask_feat"]
    assert mask_feat.shape == (256, 200, 304)
    stats = np.stack([mask_feat.mean(axis=(1, 2)), mask_feat.std(axis=(1, 2))])
    np.testing.assert_allclose(stats, reference["mask_feat_stats"], atol=1e-3)
    np.testing.assert_allclose(mask_feat[:, ::16, ::16], reference["mask_feat_sample"], atol=1e-3)


def mask_iou(a, b):
    union = np.logical_or(a, b).sum()
    return np.logical_and(a, b).sum() / union if union else 1.0


def test_final_instances(port_outputs, reference):
    result = port_outputs["result"]
    ref_masks = np.unpackbits(reference["masks"], axis=-1)[..., :int(reference["masks_width"])]
    ref_masks = ref_masks.astype(bool)
    assert len(result) == len(reference["labels"]) == 56
    assert result.masks.shape[1:] == (400, 600)
    unmatched = list(range(len(result)))
    for ref_mask, ref_label, ref_score in zip(ref_masks, reference["labels"], reference["scores"]):
        match = next((i for i in unmatched
                      if result.labels[i] == ref_label
                      and abs(result.scores[i] - ref_score) <= 1e-3
                      and mask_iou(result.masks[i], ref_mask) >= 0.99), None)
        assert match is not None, f"no match for reference instance label {ref_label} {ref_score}"
        unmatched.remove(match)
