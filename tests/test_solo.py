"""SOLO v1 and Decoupled SOLO on tiny networks: targets and losses against a plain torch
transcription of the original (tools/original_solo_loss.py) on a generated image with
hand-checkable instances and on an image without objects, compiled losses, post-processing of
hand-made outputs, the family lookup of weight_convert.py, and configs/solo."""
import glob
import os

import mindspore as ms
import numpy as np
import pytest
import torch

from conftest import parity_file
from mmdet_ms.apis import inference_detector, init_mindir_detector
from mmdet_ms.apis.convert import original_state_layout
from mmdet_ms.apis.inference import build_test_pipeline
from mmdet_ms.apis.mindir import export_mindir
from mmdet_ms.config import Config
from mmdet_ms.core.solo_postprocess import get_seg_single_decoupled, get_seg_single_solo
from mmdet_ms.model_zoo import guess_config
from mmdet_ms.models import build_detector
from mmdet_ms.utils.device import set_device
from tools.original_solo_loss import (numpy_to_torch_gt, torch_decoupled_solo_loss,
                                      torch_decoupled_targets, torch_focal_loss, torch_solo_loss,
                                      torch_solo_target_single)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOLO_DIR = os.path.join(REPO, "configs", "solo")
HEADS = ("SOLOHead", "DecoupledSOLOHead", "DecoupledSOLOLightHead")
NUM_GRIDS = (12, 10, 8, 6, 4)
LOSS_RTOL = 1e-4
TEST_CFG = dict(nms_pre=500, score_thr=0.1, mask_thr=0.5, update_thr=0.05, kernel="gaussian",
                sigma=2.0, max_per_img=100)


def tiny_config(head_type):
    """configs/solo's R50 1x (or the light one) on a half-width ResNet-18 with 32-channel heads."""
    name = ("decoupled_solo_light_r50_fpn_8gpu_3x.py" if head_type == "DecoupledSOLOLightHead"
            else "solo_r50_fpn_8gpu_1x.py")
    cfg = Config.fromfile(os.path.join(SOLO_DIR, name))
    cfg.model.backbone.update(depth=18, base_channels=32, frozen_stages=-1)
    cfg.model.pretrained = None
    cfg.model.neck.update(in_channels=[32, 64, 128, 256], out_channels=32)
    cfg.model.bbox_head.update(type=head_type, num_classes=4, in_channels=32,
                               seg_feat_channels=32, stacked_convs=2, num_grids=list(NUM_GRIDS))
    return cfg


def build_tiny(head_type, seed=0):
    set_device("CPU")
    ms.set_seed(seed)
    cfg = tiny_config(head_type)
    return build_detector(cfg.model, cfg.get("train_cfg"), cfg.get("test_cfg"))


def generated_batch():
    """Two 128x160 images: image 0 with a 32x32 square (class 0), a 40x24 rectangle (class 2)
    and a 100x90 box (class 1, levels 1 and 2); image 1 without objects."""
    height, width = 128, 160
    masks = np.zeros((3, height, width), np.uint8)
    masks[0, 32:64, 16:48] = 1
    masks[1, 80:104, 100:140] = 1
    masks[2, 20:110, 40:140] = 1
    boxes = np.array([[16, 32, 47, 63], [100, 80, 139, 103], [40, 20, 139, 109]], np.float32)
    rng = np.random.RandomState(0)
    return dict(img=rng.randn(2, 3, height, width).astype(np.float32),
                img_metas=[dict(img_shape=(height, width, 3))] * 2,
                gt_bboxes=[boxes, np.zeros((0, 4), np.float32)],
                gt_labels=[np.array([0, 2, 1]), np.zeros((0,), np.int64)],
                gt_masks=[masks, np.zeros((0, height, width), np.uint8)])


def torch_targets(head, batch, mask_sizes):
    targets = []
    for boxes, labels, masks in zip(batch["gt_bboxes"], batch["gt_labels"], batch["gt_masks"]):
        boxes, labels = numpy_to_torch_gt(boxes, labels)
        targets.append(torch_solo_target_single(boxes, labels, masks, mask_sizes, head.strides,
                                                head.scale_ranges, head.num_grids, head.sigma))
    return targets


def test_targets_hand_checked_and_equal_to_the_original():
    model = build_tiny("SOLOHead")
    head, batch = model.bbox_head, generated_batch()
    mask_sizes = head.mask_sizes(128, 160)
    assert mask_sizes == ((32, 40), (32, 40), (16, 20), (8, 10), (8, 10))
    ours = model.targets_per_image(batch)
    # Level 0 (S=12 over 160x128, sides 1..96): the square (centre of mass (31.5, 47.5), centre
    # region ±3.1 px) → cell (4, 2); the rectangle (centre (119.5, 91.5), ±3.9 x ±2.3 px) →
    # (8, 8), (8, 9); the big box (side 93.9; centre (89.5, 64.5), ±9.9 x ±8.9 px) → rows 5..6
    # x columns 5..7. Level 1 (S=10, sides 48..192): the big box only, rows 4..5 x columns 4..6.
    level0, level1 = ours[0][0], ours[0][1]
    np.testing.assert_array_equal(level0.grid_order, [50, 65, 66, 67, 77, 78, 79, 104, 105])
    np.testing.assert_array_equal(level0.cate_labels.flat[level0.grid_order],
                                  [1, 2, 2, 2, 2, 2, 2, 3, 3])
    np.testing.assert_array_equal(level1.grid_order, [44, 45, 46, 54, 55, 56])
    assert not ours[0][2].cate_labels.any()
    # Level 1 masks are at stride 4 (32x40): the box rescaled by 1/4, rows 5..27, cols 10..34.
    big = level1.ins_labels[0]
    assert big.shape == (32, 40) and big[6:26, 11:34].all() and not big[:4].any()
    for level in ours[1]:  # no object: no positive anywhere
        assert not level.cate_labels.any() and len(level.grid_order) == 0
    for image_ours, image_ref in zip(ours, torch_targets(head, batch, mask_sizes)):
        for level, (ins_ref, cate_ref, ind_ref) in zip(image_ours, zip(*image_ref)):
            np.testing.assert_array_equal(level.cate_labels, cate_ref.numpy())
            np.testing.assert_array_equal(level.ins_ind_labels, ind_ref.numpy())
            np.testing.assert_array_equal(level.grid_order, np.flatnonzero(ind_ref.numpy()))
            np.testing.assert_array_equal(level.ins_labels, ins_ref.numpy()[ind_ref.numpy()])


def port_and_torch_losses(head_type, batch, static_shapes):
    """(port's forward_train losses, compiled loss cell's, torch transcription's)."""
    model = build_tiny(head_type)
    model.set_train(True)
    head = model.bbox_head
    outputs = model.train_outputs(ms.Tensor(batch["img"]))
    targets = [ms.Tensor(a) for a in model.train_targets(batch, static_shapes=static_shapes)]
    eager = [float(v.asnumpy()) for v in model.loss(*outputs, *targets)]
    compiled = [float(v.asnumpy()) for v in ms.jit(model.loss.construct)(*outputs, *targets)]
    levels = [torch.from_numpy(t.asnumpy()) for t in outputs]
    ref_targets = torch_targets(head, batch, head.mask_sizes(*batch["img"].shape[2:]))
    num = len(NUM_GRIDS)
    if head_type == "SOLOHead":
        ref = torch_solo_loss(levels[:num], levels[num:], ref_targets)
    else:
        ref = torch_decoupled_solo_loss(levels[:num], levels[num:2 * num], levels[2 * num:],
                                        [torch_decoupled_targets(t) for t in ref_targets])
    return eager, compiled, [float(v) for v in ref]


@pytest.mark.parametrize("head_type, static_shapes", [
    ("SOLOHead", True), ("DecoupledSOLOHead", False), ("DecoupledSOLOLightHead", True)])
def test_losses_equal_the_original_with_an_image_without_objects(head_type, static_shapes):
    """Positives padded to a power of two (static shapes) or to the batch's largest count."""
    eager, compiled, ref = port_and_torch_losses(head_type, generated_batch(), static_shapes)
    np.testing.assert_allclose(eager, ref, rtol=LOSS_RTOL)
    np.testing.assert_allclose(compiled, ref, rtol=LOSS_RTOL)
    assert ref[0] > 1.0  # an untrained mask branch: dice well above 0 (times 3)


def test_losses_of_a_batch_without_any_object():
    """The original fails here (an empty concatenation); the port gives a mask loss of 0 and the
    focal loss over all-background cells divided by 1."""
    batch = generated_batch()
    empty = {key: value[1:] for key, value in batch.items()}
    model = build_tiny("SOLOHead")
    model.set_train(True)
    losses = model.forward_train(empty["img"], empty["img_metas"], empty["gt_bboxes"],
                                 empty["gt_labels"], empty["gt_masks"])
    assert float(losses["loss_ins"].asnumpy()) == 0.0
    outputs = model.train_outputs(ms.Tensor(empty["img"]))
    cate = [torch.from_numpy(t.asnumpy()) for t in outputs[len(NUM_GRIDS):]]
    flat = torch.cat([c.permute(0, 2, 3, 1).reshape(-1, 3) for c in cate])
    ref = torch_focal_loss(flat, torch.zeros(len(flat), dtype=torch.int64), 2.0, 0.25, 1)
    np.testing.assert_allclose(float(losses["loss_cate"].asnumpy()), float(ref), rtol=LOSS_RTOL)


def test_solo_postprocess_of_hand_made_outputs():
    """One confident cell of level 2 (S=8, stride 16, masks at stride 8): its mask is resized
    to level 0's stride-4 grid, scored cate x maskness, resized to the original image."""
    grids, strides = (4, 3, 2, 2, 2), (8, 8, 16, 32, 32)
    sizes = ((16, 20), (16, 20), (8, 10), (4, 5), (4, 5))
    cate = np.zeros((sum(g * g for g in grids), 3), np.float32)
    cell = 16 + 9 + 3  # level 2, cell (1, 1)
    cate[cell, 1] = 0.8
    ins = [np.zeros((g * g, *s), np.float32) for g, s in zip(grids, sizes)]
    ins[2][3, 2:6, 4:8] = 0.9  # rows 2..5, cols 4..7 at stride 8
    result = get_seg_single_solo(cate, ins, grids, strides, (64, 80), (32, 40), TEST_CFG)
    assert len(result) == 1 and result.labels[0] == 1
    # Upsampled x2, the 4x4 block's border rows and columns are 0.75 x 0.9 (> mask_thr): the
    # maskness is 0.9 x (7.5 / 8)².
    assert result.scores[0] == pytest.approx(0.8 * 0.9 * (7.5 / 8) ** 2, rel=1e-5)
    # stride 8 → the 64x80 input → half size: rows 8..23, cols 16..31 (±1 at the borders)
    assert result.masks[0, 10:22, 18:30].all() and not result.masks[0, :6].any()
    assert not result.masks[0, :, :14].any()
    nothing = get_seg_single_solo(np.zeros_like(cate), ins, grids, strides, (64, 80), (32, 40),
                                  TEST_CFG)
    assert len(nothing) == 0 and nothing.masks.shape == (0, 32, 40)


def test_decoupled_postprocess_takes_column_from_x_and_row_from_y():
    grids, strides = (4, 3, 2, 2, 2), (8, 8, 16, 32, 32)
    sizes = ((16, 20), (16, 20), (8, 10), (4, 5), (4, 5))
    cate = np.zeros((sum(g * g for g in grids), 3), np.float32)
    cate[16 + 1 * 3 + 2, 0] = 0.7  # level 1, row 1, column 2
    x_levels = [np.zeros((g, *s), np.float32) for g, s in zip(grids, sizes)]
    y_levels = [np.zeros((g, *s), np.float32) for g, s in zip(grids, sizes)]
    x_levels[1][2, :, 10:16] = 0.95  # column 2's X map: cols 10..15
    y_levels[1][1, 4:9, :] = 0.95  # row 1's Y map: rows 4..8
    result = get_seg_single_decoupled(cate, x_levels, y_levels, grids, strides, (64, 80),
                                      (64, 80), TEST_CFG)
    assert len(result) == 1 and result.labels[0] == 0
    assert result.scores[0] == pytest.approx(0.7 * 0.95 * 0.95, rel=1e-5)
    # Rows 4..8 and cols 10..15 at stride 4, upsampled x4: rows 16..35, cols 40..63, whose two
    # outer rows/columns get bilinear weights 0.625 and 0.875; corners below 0.5 drop out.
    def edge_weights(length):
        return np.array([0.625, 0.875] + [1.0] * (length - 4) + [0.875, 0.625])
    expected = np.zeros((64, 80), bool)
    expected[16:36, 40:64] = np.outer(edge_weights(20), edge_weights(24)) * 0.95 ** 2 > 0.5
    np.testing.assert_array_equal(result.masks[0], expected)


@pytest.mark.parametrize("keys, config", [
    ("keys_solo_r50.tsv", "solo/solo_r50_fpn_8gpu_3x.py"),
    ("keys_decoupled_solo_r50.tsv", "solo/decoupled_solo_r50_fpn_8gpu_3x.py"),
])
def test_guess_config_recognises_the_family(keys, config):
    state = {}
    with open(parity_file(keys)) as file:
        for line in file:
            name, shape, _ = line.rstrip("\n").split("\t")
            dims = () if shape == "-" else tuple(int(d) for d in shape.split("x"))
            state[name] = np.broadcast_to(np.zeros((), np.float32), dims)
    path, num_classes = guess_config(state)
    assert path == os.path.join(REPO, "configs", config) and num_classes == 81


def test_guess_config_light_decoupled():
    cfg = Config.fromfile(os.path.join(SOLO_DIR, "decoupled_solo_light_r50_fpn_8gpu_3x.py"))
    network = build_detector(cfg.model, cfg.get("train_cfg"), cfg.get("test_cfg"))
    state = {name: np.broadcast_to(np.zeros((), np.float32), shape)
             for name, shape in original_state_layout(network)}
    path, num_classes = guess_config(state)
    assert path == os.path.join(SOLO_DIR, "decoupled_solo_light_r50_fpn_8gpu_3x.py")
    assert num_classes == 81


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(SOLO_DIR, "*_8gpu_*.py"))),
                         ids=os.path.basename)
def test_configs_read_as_the_original(path):
    cfg = Config.fromfile(path)
    head = cfg.model.bbox_head
    assert cfg.model.type == "SOLO"
    assert head.num_grids == [40, 36, 24, 16, 12] and head.strides == [8, 8, 16, 32, 32]
    assert cfg.lr_config.warmup_ratio == pytest.approx(1 / 3)
    light = "light" in os.path.basename(path)
    assert head.stacked_convs == (4 if light else 7)
    assert cfg.data.test.pipeline[1]["img_scale"] == ((852, 512) if light else (1333, 800))
    assert cfg.total_epochs == (12 if "_1x" in path else 36)


@pytest.mark.slow
@pytest.mark.parametrize("head_type", ["SOLOHead", "DecoupledSOLOLightHead"])
def test_mindir_export_gives_the_python_network_results(head_type, tmp_path):
    """Category biases at 0 and mask biases at 0 (SOLO v1) or 2 (Decoupled: sigmoid(2)² > 0.5),
    so that random weights yield instances to compare."""
    model = build_tiny(head_type)
    model.set_train(False)
    for name, param in model.parameters_and_names():
        if name.startswith(("bbox_head.solo_", "bbox_head.dsolo_")) and name.endswith(".bias"):
            value = 2.0 if name.startswith("bbox_head.dsolo_ins_list") else 0.0
            param.set_data(ms.Tensor(np.full(param.shape, value, np.float32)))
    cfg = tiny_config(head_type)
    cfg.merge_from_dict({"data.test.pipeline.1.img_scale": (96, 64)})
    model.cfg, model.CLASSES = cfg, ("a", "b", "c")
    model.test_pipeline = build_test_pipeline(cfg)
    image = np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    expected = inference_detector(model, image)
    path = export_mindir(model, str(tmp_path / "solo.mindir"), (64, 96))
    exported = inference_detector(init_mindir_detector(cfg, path, device_target="CPU"), image)
    assert len(expected) > 0 and len(exported) == len(expected)
    np.testing.assert_array_equal(exported.labels, expected.labels)
    np.testing.assert_allclose(exported.scores, expected.scores, atol=1e-5)
