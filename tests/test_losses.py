"""Focal and dice losses and the SOLOv2 loss against numpy and torch transcriptions of the original."""
import mmdet_ms  # noqa: F401  (sets the environment before MindSpore loads)
import mindspore as ms
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmdet_ms.core.targets import solov2_targets_single
from mmdet_ms.models.heads.solov2_loss import as_tensors, pack_targets, positive_slots, solov2_loss
from mmdet_ms.models.losses import dice_loss, sigmoid_focal_loss
from mmdet_ms.utils.device import set_device

NUM_CLASSES_OUT, EMBED, FEAT_SIZE, NUM_GRIDS = 4, 8, (16, 24), [6, 5, 4]
SCALE_RANGES = ((1, 24), (16, 48), (32, 96))


@pytest.fixture(scope="module", autouse=True)
def pynative_cpu():
    set_device("CPU", mode="pynative")


def numpy_focal_elements(logits, labels, gamma=2.0, alpha=0.25):
    """The CUDA kernel's element loss (mmdet/ops/sigmoid_focal_loss), in float64."""
    logits = logits.astype(np.float64)
    positive = (labels[:, None] == np.arange(1, logits.shape[1] + 1)[None, :]).astype(np.float64)
    negative = (labels[:, None] >= 0) * (1 - positive)
    p = 1 / (1 + np.exp(-logits))
    term1 = (1 - p) ** gamma * np.log(np.maximum(p, np.finfo(np.float32).tiny))
    log_one_minus_p = -logits * (logits >= 0) - np.log1p(np.exp(logits - 2 * logits * (logits >= 0)))
    term2 = p ** gamma * log_one_minus_p
    return -positive * term1 * alpha - negative * term2 * (1 - alpha)


def torch_py_sigmoid_focal_loss(logits, labels, gamma=2.0, alpha=0.25, avg_factor=None):
    """The original's `py_sigmoid_focal_loss` with its one-hot target built from 1-based labels."""
    target = F.one_hot(labels, logits.shape[1] + 1)[:, 1:].type_as(logits)
    probs = logits.sigmoid()
    pt = (1 - probs) * target + probs * (1 - target)
    focal_weight = (alpha * target + (1 - alpha) * (1 - target)) * pt.pow(gamma)
    loss = F.binary_cross_entropy_with_logits(logits, target, reduction="none") * focal_weight
    return loss.sum() / avg_factor


def torch_dice_loss(pred, target):
    pred = pred.contiguous().view(pred.size()[0], -1)
    target = target.contiguous().view(target.size()[0], -1).float()
    a = torch.sum(pred * target, 1)
    b = torch.sum(pred * pred, 1) + 0.001
    c = torch.sum(target * target, 1) + 0.001
    return 1 - (2 * a) / (b + c)


def torch_solov2_loss(cate_preds, kernel_preds, mask_feat, targets_per_image, num_classes_out):
    """`SOLOv2Head.loss` of the original after target assignment, in its order of operations."""
    num_levels = len(cate_preds)
    ins_labels = [torch.cat([torch.from_numpy(t[lvl].ins_labels) for t in targets_per_image], 0)
                  for lvl in range(num_levels)]
    kernel_per_level = [[kernel_preds[lvl][img].view(kernel_preds[lvl].shape[1], -1)[:, list(t[lvl].grid_order)]
                         for img, t in enumerate(targets_per_image)] for lvl in range(num_levels)]
    ins_pred_list = []
    for b_kernel_pred in kernel_per_level:
        b_mask_pred = []
        for idx, kernel_pred in enumerate(b_kernel_pred):
            if kernel_pred.size()[-1] == 0:
                continue
            cur_ins_pred = mask_feat[idx, ...]
            height, width = cur_ins_pred.shape[-2:]
            num, channels = kernel_pred.shape
            kernel_pred = kernel_pred.permute(1, 0).view(channels, -1, 1, 1)
            b_mask_pred.append(F.conv2d(cur_ins_pred.unsqueeze(0), kernel_pred, stride=1).view(-1, height, width))
        ins_pred_list.append(torch.cat(b_mask_pred, 0) if b_mask_pred else None)
    flatten_ins_ind = torch.cat([torch.cat([torch.from_numpy(t[lvl].ins_ind_labels) for t in targets_per_image])
                                 for lvl in range(num_levels)])
    num_ins = flatten_ins_ind.sum()
    loss_ins = [torch_dice_loss(torch.sigmoid(pred), target)
                for pred, target in zip(ins_pred_list, ins_labels) if pred is not None]
    loss_ins = torch.cat(loss_ins).mean() * 3.0
    flatten_cate_labels = torch.cat([torch.cat([torch.from_numpy(t[lvl].cate_labels).flatten()
                                                for t in targets_per_image]) for lvl in range(num_levels)])
    flatten_cate_preds = torch.cat([pred.permute(0, 2, 3, 1).reshape(-1, num_classes_out) for pred in cate_preds])
    loss_cate = 1.0 * torch_py_sigmoid_focal_loss(flatten_cate_preds, flatten_cate_labels, avg_factor=num_ins + 1)
    return loss_ins, loss_cate


def test_focal_loss_matches_cuda_kernel_formula_and_python_path():
    rng = np.random.default_rng(0)
    logits = (rng.standard_normal((50, 6)) * 4).astype(np.float32)
    labels = rng.integers(0, 7, size=50)
    expected_numpy = numpy_focal_elements(logits, labels).sum() / 7.0
    expected_torch = torch_py_sigmoid_focal_loss(torch.from_numpy(logits), torch.from_numpy(labels), avg_factor=7.0)
    got = sigmoid_focal_loss(ms.Tensor(logits), ms.Tensor(labels, ms.int32), avg_factor=7.0).asnumpy()
    np.testing.assert_allclose(got, expected_numpy, rtol=1e-5)
    np.testing.assert_allclose(got, expected_torch.item(), rtol=1e-5)
    alpha_changed = sigmoid_focal_loss(ms.Tensor(logits), ms.Tensor(labels, ms.int32), alpha=0.5, avg_factor=7.0)
    assert abs(alpha_changed.asnumpy() - got) > 1e-3


def test_focal_loss_weights_positives_by_alpha_and_background_by_one_minus_alpha():
    logits = ms.Tensor(np.zeros((2, 3), np.float32))
    labels = ms.Tensor(np.array([0, 2], np.int32))
    got = sigmoid_focal_loss(logits, labels, avg_factor=1.0).asnumpy()
    # p = 0.5 everywhere: BCE = log 2, modulating factor 0.25; one positive (alpha), five negatives
    expected = np.log(2) * 0.25 * (0.25 + 5 * 0.75)
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_dice_loss_matches_numpy():
    rng = np.random.default_rng(1)
    pred = rng.random((3, 5, 7)).astype(np.float32)
    target = (rng.random((3, 5, 7)) < 0.4).astype(np.uint8)
    target[2] = 0
    p, t = pred.reshape(3, -1).astype(np.float64), target.reshape(3, -1).astype(np.float64)
    expected = 1 - 2 * (p * t).sum(1) / ((p * p).sum(1) + 0.001 + (t * t).sum(1) + 0.001)
    got = dice_loss(ms.Tensor(pred), ms.Tensor(target)).asnumpy()
    assert got.shape == (3,)
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def random_batch(rng, instances_per_image):
    """Head outputs and targets for a small batch, images 64x96 (mask feature 16x24)."""
    batch = len(instances_per_image)
    cate_preds = [rng.standard_normal((batch, NUM_CLASSES_OUT, s, s)).astype(np.float32) for s in NUM_GRIDS]
    kernel_preds = [(rng.standard_normal((batch, EMBED, s, s)) * 0.5).astype(np.float32) for s in NUM_GRIDS]
    mask_feat = rng.standard_normal((batch, EMBED) + FEAT_SIZE).astype(np.float32)
    targets = [image_targets(rng, num) for num in instances_per_image]
    return cate_preds, kernel_preds, mask_feat, targets


def image_targets(rng, num_instances):
    boxes, masks = [], []
    for _ in range(num_instances):
        w, h = rng.integers(6, 60), rng.integers(6, 40)
        x, y = rng.integers(0, 96 - w), rng.integers(0, 64 - h)
        mask = np.zeros((64, 96), np.uint8)
        mask[y:y + h, x:x + w] = rng.random((h, w)) < 0.9
        boxes.append([x, y, x + w - 1, y + h - 1])
        masks.append(mask)
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    masks = np.stack(masks) if masks else np.zeros((0, 64, 96), np.uint8)
    labels = rng.integers(0, NUM_CLASSES_OUT, size=num_instances)
    return solov2_targets_single(boxes, labels, masks, FEAT_SIZE, SCALE_RANGES, NUM_GRIDS)


def mindspore_loss_and_grads(cate_preds, kernel_preds, mask_feat, targets, round_to_power_of_two=True):
    num_levels = len(cate_preds)
    packed = as_tensors(pack_targets(targets, round_to_power_of_two))

    def total_loss(*inputs):
        loss_ins, loss_cate = solov2_loss(list(inputs[:num_levels]), list(inputs[num_levels:2 * num_levels]),
                                          inputs[-1], packed, NUM_CLASSES_OUT)
        return loss_ins + loss_cate, loss_ins, loss_cate

    inputs = [ms.Tensor(a) for a in cate_preds + kernel_preds + [mask_feat]]
    grad_fn = ms.value_and_grad(total_loss, grad_position=tuple(range(len(inputs))), has_aux=True)
    (_, loss_ins, loss_cate), grads = grad_fn(*inputs)
    return loss_ins.asnumpy(), loss_cate.asnumpy(), [g.asnumpy() for g in grads]


def torch_loss_and_grads(cate_preds, kernel_preds, mask_feat, targets):
    inputs = [torch.tensor(a, requires_grad=True) for a in cate_preds + kernel_preds + [mask_feat]]
    num_levels = len(cate_preds)
    loss_ins, loss_cate = torch_solov2_loss(inputs[:num_levels], inputs[num_levels:2 * num_levels], inputs[-1],
                                            targets, NUM_CLASSES_OUT)
    (loss_ins + loss_cate).backward()
    return loss_ins.item(), loss_cate.item(), [t.grad.numpy() for t in inputs]


@pytest.mark.parametrize("round_to_power_of_two", [True, False], ids=["padded", "exact"])
def test_solov2_loss_and_gradients_match_torch_transcription(round_to_power_of_two):
    rng = np.random.default_rng(4)
    cate_preds, kernel_preds, mask_feat, targets = random_batch(rng, [5, 4])
    grid_orders = [t.grid_order for image in targets for t in image]
    assert all(len(targets[0][lvl].grid_order) + len(targets[1][lvl].grid_order) for lvl in range(3))
    assert any(len(g) == 0 for g in grid_orders)  # an (image, level) without positives
    assert any(len(g) != len(set(g.tolist())) for g in grid_orders), "want a duplicated cell"

    loss_ins, loss_cate, grads = mindspore_loss_and_grads(cate_preds, kernel_preds, mask_feat, targets,
                                                          round_to_power_of_two)
    ref_ins, ref_cate, ref_grads = torch_loss_and_grads(cate_preds, kernel_preds, mask_feat, targets)
    np.testing.assert_allclose(loss_ins, ref_ins, rtol=1e-5)
    np.testing.assert_allclose(loss_cate, ref_cate, rtol=1e-5)
    for grad, ref in zip(grads, ref_grads):
        assert grad.shape == ref.shape
        assert np.abs(grad - ref).max() <= 1e-4 * np.abs(ref).max()
    assert all(np.abs(ref).max() > 0 for ref in ref_grads)


def test_solov2_loss_without_any_positive_is_finite_and_differentiable():
    rng = np.random.default_rng(4)
    cate_preds, kernel_preds, mask_feat, targets = random_batch(rng, [0, 0])
    loss_ins, loss_cate, grads = mindspore_loss_and_grads(cate_preds, kernel_preds, mask_feat, targets)
    assert loss_ins == 0.0
    flat_logits = np.concatenate([p.transpose(0, 2, 3, 1).reshape(-1, NUM_CLASSES_OUT) for p in cate_preds])
    expected_cate = numpy_focal_elements(flat_logits, np.zeros(len(flat_logits), np.int64)).sum() / 1.0
    np.testing.assert_allclose(loss_cate, expected_cate, rtol=1e-5)
    assert all(np.isfinite(g).all() for g in grads)
    assert all(not g.any() for g in grads[len(cate_preds):])  # kernels and mask feature: zero gradient
    assert all(g.any() for g in grads[:len(cate_preds)])


def test_solov2_loss_rejects_wrong_class_count():
    rng = np.random.default_rng(5)
    cate_preds, kernel_preds, mask_feat, targets = random_batch(rng, [2])
    with pytest.raises(ValueError, match="num_classes_out"):
        solov2_loss([ms.Tensor(a) for a in cate_preds], [ms.Tensor(a) for a in kernel_preds], ms.Tensor(mask_feat),
                    as_tensors(pack_targets(targets)), NUM_CLASSES_OUT + 1)


def test_pack_targets_lays_out_cells_positives_and_padding():
    rng = np.random.default_rng(6)
    _, _, _, targets = random_batch(rng, [3, 1])
    packed = pack_targets(targets)
    counts = [sum(len(t.grid_order) for t in image) for image in targets]
    assert packed.pos_cells.shape[1] == 16 >= max(counts)  # the smallest power-of-two slot count
    assert pack_targets(targets, round_to_power_of_two=False).pos_cells.shape[1] == max(counts)
    offsets = np.cumsum([0] + [s * s for s in NUM_GRIDS[:-1]])
    for img, image in enumerate(targets):
        expected_cells = np.concatenate([t.grid_order + offset for t, offset in zip(image, offsets)])
        np.testing.assert_array_equal(packed.pos_cells[img, :counts[img]], expected_cells)
        np.testing.assert_array_equal(packed.mask_targets[img, :counts[img]],
                                      np.concatenate([t.ins_labels for t in image]))
        assert packed.pos_valid[img].sum() == counts[img] and packed.pos_valid[img, :counts[img]].all()
        assert not packed.mask_targets[img, counts[img]:].any() and not packed.pos_cells[img, counts[img]:].any()
    expected_labels = np.concatenate([image[level].cate_labels.reshape(-1)
                                      for level in range(len(NUM_GRIDS)) for image in targets])
    np.testing.assert_array_equal(packed.cate_labels, expected_labels)
    assert packed.num_pos == sum(t.ins_ind_labels.sum() for image in targets for t in image)


@pytest.mark.parametrize("count,slots", [(0, 16), (1, 16), (16, 16), (17, 32), (100, 128)])
def test_positive_slots_are_powers_of_two_from_16(count, slots):
    assert positive_slots(count) == slots
    assert positive_slots(count, round_to_power_of_two=False) == max(count, 1)
