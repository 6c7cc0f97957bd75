"""Training parity with the original (../shared/parity/r101_seed0_coffee_loss.npz): the same
weights, image and annotations give the same targets, losses and gradient norms."""
import mindspore as ms
import numpy as np
import pytest

from conftest import R101_CONFIG, parity_file
from mmdet_ms.config import Config
from mmdet_ms.engine.optimizer import build_optimizer
from mmdet_ms.engine.train_step import TrainStep, read_values
from mmdet_ms.models import build_detector
from mmdet_ms.utils.checkpoint import load_checkpoint, torch_name
from mmdet_ms.utils.device import set_device

pytestmark = pytest.mark.slow
LOSS_RTOL = 1e-3       # the fixture README's tolerances
GRAD_NORM_RTOL = 1e-2


@pytest.fixture(scope="module")
def reference():
    return np.load(parity_file("r101_seed0_coffee_loss.npz"))


def fixture_batch(reference):
    """The fixture's collated batch as the train pipeline gives it (labels 0-based)."""
    height, width = reference["input"].shape[2:]  # (1, 3, 800, 1216)
    masks = np.unpackbits(reference["gt_masks_packed"], axis=-1)[..., :width]  # (5, 800, 1216)
    return dict(img=reference["input"], gt_bboxes=[reference["gt_boxes"]],
                gt_labels=[reference["gt_labels"] - 1], gt_masks=[masks.astype(np.uint8)])


@pytest.fixture(scope="module")
def port(r101_ckpt, reference):
    """(targets, train-step loss values, forward_train's losses, {original parameter name:
    gradient L2 norm}) of the port."""
    set_device("CPU")
    cfg = Config.fromfile(R101_CONFIG)
    network = build_detector(cfg.model, cfg.get("train_cfg"), cfg.get("test_cfg"))
    load_checkpoint(network, r101_ckpt)
    network.set_train(True)  # norm_eval=True keeps the ResNet's BN in eval mode, as the fixture
    step = TrainStep(network, build_optimizer(network, cfg.optimizer, 0.01))
    batch = fixture_batch(reference)
    targets = network.targets_per_image(batch)[0]
    values, grads = step.gradients(batch)
    values = read_values(values)
    forward_train = {name: float(value.asnumpy()) for name, value in network.forward_train(
        batch["img"], None, batch["gt_bboxes"], batch["gt_labels"], batch["gt_masks"]).items()}
    norms = {torch_name(param.name): float(np.linalg.norm(grad.asnumpy().astype(np.float64)))
             for param, grad in zip(step.optimizer.parameters, grads)}
    return targets, values, forward_train, norms


def test_targets_are_identical(port, reference):
    targets, _, _, _ = port
    for level, target in enumerate(targets):
        np.testing.assert_array_equal(target.cate_labels, reference[f"cate_label{level}"])
        np.testing.assert_array_equal(target.ins_ind_labels, reference[f"ins_ind_label{level}"])
        np.testing.assert_array_equal(target.grid_order, reference[f"grid_order{level}"])
        ins_labels = np.unpackbits(reference[f"ins_label{level}_packed"], axis=-1)[..., :304]
        np.testing.assert_array_equal(target.ins_labels, ins_labels)


@pytest.mark.parametrize("name", ["loss_ins", "loss_cate"])
def test_losses(port, reference, name):
    _, values, forward_train, _ = port
    np.testing.assert_allclose(values[name], float(reference[name]), rtol=LOSS_RTOL)
    np.testing.assert_allclose(forward_train[name], float(reference[name]), rtol=LOSS_RTOL)


def test_gradient_norms(port, reference):
    _, _, _, norms = port
    names = [key.split(":", 1)[1] for key in reference.files if key.startswith("grad_norm:")]
    assert len(names) == 4
    for name in names:
        assert name in norms, f"{name}: no such trainable parameter in the port"
        np.testing.assert_allclose(norms[name], float(reference[f"grad_norm:{name}"]),
                                   rtol=GRAD_NORM_RTOL, err_msg=name)
