"""Mixed precision (``fp16 = dict(loss_scale=...)``): float16 convolutions, a static or dynamic
loss scale, overflowing steps skipped."""
import mindspore as ms
import mindspore.nn as nn
import numpy as np
import pytest

from mmdet_ms.apis.train import build_train_step
from mmdet_ms.datasets import build_dataloader, build_dataset
from mmdet_ms.engine.mixed_precision import (build_loss_scaler, cast_to_mixed_precision,
                                             loss_scale_value)
from mmdet_ms.engine.logger import get_logger
from mmdet_ms.engine.train_step import read_values
from mmdet_ms.engine.trainer import Trainer
from mmdet_ms.models import build_detector
from mmdet_ms.registry import ConfigError
from mmdet_ms.utils.device import set_device
from test_training import data_dir, parameter_values, tiny_config  # noqa: F401  (fixture)

# Measured on this CPU (tiny quick start, frozen BN as the original recipes): the float16 step's
# first loss differs from float32's by ~3e-5 relative, its weight update by ~1.8e-2 (relative L2
# over all trainable weights; a single float16 conv's weight gradient: ~6e-4).
FIRST_LOSS_RTOL = 1e-3
UPDATE_RTOL = 3e-2


def build_step(data_dir, fp16, seed=0, lr=0.003, **options):
    """(network, compiled TrainStep, first batch) of the tiny quick start, with ``fp16``."""
    set_device("CPU")
    ms.set_seed(seed)
    cfg = tiny_config(data_dir, **dict(dict(jit_train_step=True), **options))
    cfg.fp16 = fp16
    network = build_detector(cfg.model, cfg.get("train_cfg"), cfg.get("test_cfg"))
    network.set_train(True)
    step = build_train_step(cfg, network, lr)
    loader = build_dataloader(build_dataset(cfg.data.train), 2, 0, shuffle=False)
    return network, step, next(iter(loader))


def one_step(step, batch):
    values, grads = step.gradients(batch)
    applied = step.apply_gradients(grads, values["loss"])
    return read_values(values)["loss"], bool(applied.asnumpy())


def weight_update(network, step, batch):
    trainable = [p.name for p in step.optimizer.parameters]
    before = parameter_values(network)
    loss, applied = one_step(step, batch)
    after = parameter_values(network)
    return loss, applied, np.concatenate([(after[n] - before[n]).ravel() for n in trainable])


@pytest.mark.slow
def test_a_float16_step_moves_the_weights_as_the_float32_step(data_dir):  # noqa: F811
    frozen_bn = {"model.backbone.norm_eval": True}
    network32, step32, batch = build_step(data_dir, None, **frozen_bn)
    loss32, applied32, update32 = weight_update(network32, step32, batch)
    network16, step16, _ = build_step(data_dir, dict(loss_scale=512.0), **frozen_bn)
    loss16, applied16, update16 = weight_update(network16, step16, batch)
    assert applied32 and applied16
    assert loss16 == pytest.approx(loss32, rel=FIRST_LOSS_RTOL)
    assert np.linalg.norm(update16 - update32) <= UPDATE_RTOL * np.linalg.norm(update32)
    assert np.linalg.norm(update32) > 0


@pytest.mark.slow
def test_an_overflowing_step_is_skipped_and_the_dynamic_scale_halves(data_dir):  # noqa: F811
    network, step, batch = build_step(data_dir, dict(loss_scale="dynamic"))
    assert loss_scale_value(step.loss_scaler) == 2.0 ** 16
    step.loss_scaler.scale_value.set_data(ms.Tensor(1e30, ms.float32))  # float16 grads overflow
    before = parameter_values(network)
    loss, applied = one_step(step, batch)
    assert np.isfinite(loss) and not applied
    after = parameter_values(network)
    trainable = [param.name for param in step.optimizer.parameters]
    assert all(np.array_equal(before[name], after[name]) for name in trainable)
    assert loss_scale_value(step.loss_scaler) == pytest.approx(5e29)
    step.loss_scaler.scale_value.set_data(ms.Tensor(512.0, ms.float32))
    _, applied = one_step(step, batch)
    assert applied and loss_scale_value(step.loss_scaler) == 512.0
    assert not all(np.array_equal(after[name], parameter_values(network)[name])
                   for name in trainable)


def test_float16_convolutions_and_float32_norms(data_dir):  # noqa: F811
    set_device("CPU")
    network = build_detector(tiny_config(data_dir).model)
    cast_to_mixed_precision(network)
    kinds = {}
    for _, cell in network.cells_and_names():
        if isinstance(cell, (nn.Conv2d, nn.GroupNorm, nn.BatchNorm2d)):
            flags = cell.get_flags()
            kinds.setdefault(type(cell).__name__, set()).add(
                (flags.get("fp16", False), flags.get("fp32", False)))
    assert kinds["Conv2d"] == {(True, False)}
    assert kinds["GroupNorm"] == {(False, True)} and kinds["BatchNorm2d"] == {(False, True)}


@pytest.mark.parametrize("fp16, message", [
    (dict(loss_scale=-1.0), "must be > 0"),
    (dict(loss_scale="auto"), "use a number, 'dynamic' or a dict"),
    (dict(loss_scale=dict(init_scale=1.0, growth=2)), "use a number, 'dynamic' or a dict"),
    (dict(loss_scale=dict(scale_factor=1.5)), "scale_factor must be an integer >= 2"),
    (dict(scale=512.0), "use fp16=dict(loss_scale=512.)"),
    (512.0, "use fp16=dict(loss_scale=512.)"),
])
def test_a_bad_fp16_setting_is_named(fp16, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace(".", r"\.")):
        build_loss_scaler(fp16)


def test_a_dynamic_loss_scale_is_saved_and_resumed(data_dir, tmp_path):  # noqa: F811
    network, step, _ = build_step(data_dir, dict(loss_scale="dynamic"), jit_train_step=False)
    step.loss_scaler.scale_value.set_data(ms.Tensor(1024.0, ms.float32))
    step.loss_scaler.counter.set_data(ms.Tensor(7, ms.int32))
    trainer = Trainer(network, step, None, 2, str(tmp_path), get_logger())
    trainer.epoch, trainer.iteration = 1, 2
    trainer.save_checkpoint()
    _, resumed_step, _ = build_step(data_dir, dict(loss_scale="dynamic"), jit_train_step=False)
    assert loss_scale_value(resumed_step.loss_scaler) == 2.0 ** 16
    resumed = Trainer(resumed_step.network, resumed_step, None, 2, str(tmp_path), get_logger())
    resumed.resume(str(tmp_path / "latest.ckpt"))
    assert loss_scale_value(resumed_step.loss_scaler) == 1024.0
    assert int(resumed_step.loss_scaler.counter.asnumpy()) == 7
