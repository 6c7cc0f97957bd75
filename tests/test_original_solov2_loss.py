"""The torch baseline of ``tools/benchmark.py --train`` (tools/original_forward.py's training
outputs and tools/original_solov2_loss.py) gives the original's targets, losses and gradient
norms of ../shared/parity/r101_seed0_coffee_loss.npz."""
import numpy as np
import pytest
import torch

from conftest import R101_CONFIG
from mmdet_ms.config import Config
from mmdet_ms.utils.checkpoint import read_torch_checkpoint
from tools.original_forward import torch_original_train_outputs
from tools.original_solov2_loss import torch_solov2_loss, torch_solov2_targets, trainable_state
from test_loss_parity_r101 import GRAD_NORM_RTOL, LOSS_RTOL, reference  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def baseline(r101_pth, reference):
    """(targets of the image, (loss_ins, loss_cate), the trainable state after backward)."""
    head = Config.fromfile(R101_CONFIG).model.bbox_head
    state = trainable_state(read_torch_checkpoint(r101_pth)[0], frozen_stages=1)
    width = reference["input"].shape[3]
    masks = np.unpackbits(reference["gt_masks_packed"], axis=-1)[..., :width].astype(np.uint8)
    logits, kernels, mask_feat = torch_original_train_outputs(
        state, torch.from_numpy(reference["input"]), head.num_grids)
    targets = torch_solov2_targets(head, [reference["gt_boxes"]], [reference["gt_labels"] - 1],
                                   [masks], mask_feat.shape[-2:])
    losses = torch_solov2_loss(logits, kernels, mask_feat, targets)
    (losses[0] + losses[1]).backward()
    return targets[0], losses, state


def test_targets_are_the_originals(baseline, reference):
    (ins_labels, cate_labels, ins_ind_labels, grid_orders), _, _ = baseline
    for level, (ins, cate, ind, order) in enumerate(zip(ins_labels, cate_labels, ins_ind_labels,
                                                         grid_orders)):
        np.testing.assert_array_equal(cate.numpy(), reference[f"cate_label{level}"])
        np.testing.assert_array_equal(ind.numpy(), reference[f"ins_ind_label{level}"])
        np.testing.assert_array_equal(order, reference[f"grid_order{level}"])
        width = ins.shape[-1]
        np.testing.assert_array_equal(
            ins.numpy(), np.unpackbits(reference[f"ins_label{level}_packed"], axis=-1)[..., :width])


def test_losses_and_gradient_norms_are_the_originals(baseline, reference):
    _, (loss_ins, loss_cate), state = baseline
    np.testing.assert_allclose(loss_ins.item(), float(reference["loss_ins"]), rtol=LOSS_RTOL)
    np.testing.assert_allclose(loss_cate.item(), float(reference["loss_cate"]), rtol=LOSS_RTOL)
    names = [key.split(":", 1)[1] for key in reference.files if key.startswith("grad_norm:")]
    assert len(names) == 4
    for name in names:
        np.testing.assert_allclose(float(state[name].grad.double().norm()),
                                   float(reference[f"grad_norm:{name}"]), rtol=GRAD_NORM_RTOL,
                                   err_msg=name)
    assert state["backbone.layer1.0.conv1.weight"].grad is None  # frozen stage 1
