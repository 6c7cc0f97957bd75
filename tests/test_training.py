"""Training on one card: optimisation steps, frozen stages, the SGD update against torch's
formulas, the lr schedule, and train.py end to end (checkpoints, logs, resume, load_from, a NaN
loss, an interrupted save, a class-count mismatch), on a tiny quick-start model and 64 px images."""
import glob
import math
import os
import re

import mindspore as ms
import numpy as np
import pytest

import train
from mmdet_ms.apis.train import load_pretrained, scaled_lr
from mmdet_ms.config import Config
from mmdet_ms.datasets import build_dataloader, build_dataset
from mmdet_ms.datasets.synthetic import make_synthetic_coco
from mmdet_ms.engine.logger import get_logger
from mmdet_ms.engine.lr_schedule import StepLrSchedule
from mmdet_ms.engine.optimizer import build_optimizer, set_learning_rate
from mmdet_ms.engine.train_state import OPTIMIZER_PREFIX, restore_train_state
from mmdet_ms.engine.train_step import TrainStep, read_values, sum_of_squares
from mmdet_ms.engine.trainer import Trainer
from mmdet_ms.models import build_detector
from mmdet_ms.utils.checkpoint import read_checkpoint, save_checkpoint
from mmdet_ms.utils.device import set_device

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUICKSTART = os.path.join(REPO, "configs", "solov2", "solov2_light_r18_synthetic_quickstart.py")
CATE_LAYER = ("bbox_head.solo_cate.weight", "bbox_head.solo_cate.bias")
WIDTH = 32  # the heads' GroupNorm(32) needs a multiple of 32


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("shapes")
    make_synthetic_coco(str(out), num_train=4, num_val=2, size=64, seed=0)
    return str(out)


def tiny_options(data_dir, **overrides):
    """cfg_options shrinking the quick-start config: 64 px, 32 channels, 2 images a batch."""
    options = {
        "data.train.ann_file": os.path.join(data_dir, "annotations", "instances_train.json"),
        "data.train.img_prefix": os.path.join(data_dir, "train") + os.sep,
        "data.train.pipeline.2.img_scale": (64, 64),
        "data.val.ann_file": os.path.join(data_dir, "annotations", "instances_val.json"),
        "data.val.img_prefix": os.path.join(data_dir, "val") + os.sep,
        "data.val.pipeline.1.img_scale": (64, 64),
        "data.imgs_per_gpu": 2,
        "data.workers_per_gpu": 0,
        "model.neck.out_channels": WIDTH,
        "model.bbox_head.in_channels": WIDTH,
        "model.bbox_head.seg_feat_channels": WIDTH,
        "model.bbox_head.ins_out_channels": WIDTH,
        "model.mask_feat_head.in_channels": WIDTH,
        "model.mask_feat_head.out_channels": WIDTH,
        "model.mask_feat_head.num_classes": WIDTH,
        "optimizer.lr": 0.01,
        "lr_config.warmup_iters": 2,
        "lr_config.step": [1],
        "total_epochs": 2,
        "jit_train_step": False,
        "log_config.interval": 1,
        "checkpoint_config.interval": 1,
    }
    options.update(overrides)
    return options


def tiny_config(data_dir, **overrides):
    return Config.fromfile(QUICKSTART, tiny_options(data_dir, **overrides))


def run_train(data_dir, work_dir, *extra_args, config=QUICKSTART, **overrides):
    """``train.py`` in this process on the tiny config (or one inheriting the quick start);
    returns its exit code."""
    options = [f"{key}={value!r}" for key, value in tiny_options(data_dir, **overrides).items()]
    return train.main(["--config", config, "--work-dir", str(work_dir), "--device_target",
                       "CPU", *extra_args, "--cfg-options", *options])


def build_parts(cfg, lr=0.01, seed=0):
    """(network in train mode, TrainStep, first batch of the training set) of a config."""
    set_device("CPU")
    ms.set_seed(seed)
    network = build_detector(cfg.model, cfg.get("train_cfg"), cfg.get("test_cfg"))
    network.set_train(True)
    optimizer = build_optimizer(network, cfg.optimizer, lr)
    step = TrainStep(network, optimizer, cfg.optimizer_config.grad_clip, jit_step=False)
    loader = build_dataloader(build_dataset(cfg.data.train), cfg.data.imgs_per_gpu, 0, shuffle=False)
    return network, step, next(iter(loader))


def take_steps(network, step, batch, count):
    return [step(batch, i)["loss"] for i in range(count)]


def parameter_values(network):
    return {p.name: p.asnumpy().copy() for p in network.get_parameters()}


def checkpoint_arrays(path):
    content, meta = read_checkpoint(str(path))
    return {name: value.asnumpy() for name, value in content.items()}, meta


def test_a_few_steps_on_one_batch_lower_the_loss(data_dir):
    network, step, batch = build_parts(tiny_config(data_dir), lr=0.003)
    losses = take_steps(network, step, batch, 12)
    assert all(math.isfinite(loss) for loss in losses)
    assert losses[-1] < 0.6 * losses[0], losses


def test_compiled_step_gives_the_losses_and_gradients_of_the_op_by_op_step(data_dir):
    network, step, batch = build_parts(tiny_config(data_dir))
    compiled = TrainStep(network, step.optimizer, jit_step=True)
    values, grads = step.gradients(batch)
    compiled_values, compiled_grads = compiled.gradients(batch)
    values, compiled_values = read_values(values), read_values(compiled_values)
    for name, value in values.items():
        assert compiled_values[name] == pytest.approx(value, rel=1e-5), name
    for param, grad, compiled_grad in zip(step.optimizer.parameters, grads, compiled_grads):
        grad, compiled_grad = grad.asnumpy(), compiled_grad.asnumpy()
        assert np.abs(compiled_grad - grad).max() <= 1e-4 * max(np.abs(grad).max(), 1e-8), param.name
    assert sum(float(np.abs(g.asnumpy()).max()) > 0 for g in grads) > len(grads) // 2


def test_a_new_learning_rate_reaches_the_compiled_update(data_dir):
    """The update is compiled at its first call; later lr values must still be the ones used."""
    network, step, batch = build_parts(tiny_config(data_dir), lr=0.01)
    take_steps(network, step, batch, 1)
    set_learning_rate(step.optimizer, 0.0)
    before = parameter_values(network)
    take_steps(network, step, batch, 1)  # momentum is non-zero, but lr 0 moves nothing
    trainable = [p.name for p in step.optimizer.parameters]
    assert all(np.array_equal(before[name], parameter_values(network)[name]) for name in trainable)
    set_learning_rate(step.optimizer, 0.01)
    take_steps(network, step, batch, 1)
    assert not all(np.array_equal(before[name], parameter_values(network)[name])
                   for name in trainable)


def is_frozen_stage(name):
    return name.startswith(("backbone.conv1.", "backbone.bn1.", "backbone.layer1."))


@pytest.mark.parametrize("norm_eval", [True, False])
def test_frozen_stages_and_norm_eval_keep_their_values(data_dir, norm_eval):
    cfg = tiny_config(data_dir, **{"model.backbone.frozen_stages": 1,
                                   "model.backbone.norm_eval": norm_eval})
    network, step, batch = build_parts(cfg)
    trainable = {p.name for p in step.optimizer.parameters}
    assert trainable and not any(is_frozen_stage(name) for name in trainable)
    before = parameter_values(network)
    take_steps(network, step, batch, 2)
    after = parameter_values(network)

    def changed(name):
        return not np.array_equal(before[name], after[name])

    frozen = [name for name in before if is_frozen_stage(name)]
    assert len(frozen) > 20 and not any(changed(name) for name in frozen)
    assert all(changed(name) for name in trainable)
    running_stats = [name for name in before if name.endswith(("moving_mean", "moving_variance"))]
    unfrozen_stats = [name for name in running_stats if not is_frozen_stage(name)]
    assert unfrozen_stats
    if norm_eval:
        assert not any(changed(name) for name in running_stats)
    else:  # the original keeps only the frozen stages' BN in eval mode
        assert all(changed(name) for name in unfrozen_stats)


def torch_sgd_reference(params, grads_per_step, lr, momentum, weight_decay, max_norm):
    """torch.nn.utils.clip_grad_norm_ then torch.optim.SGD, in float64 numpy."""
    params = {name: value.astype(np.float64) for name, value in params.items()}
    buffers = {}
    for grads in grads_per_step:
        total_norm = math.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in grads.values()))
        coef = max_norm / (total_norm + 1e-6)
        for name, grad in grads.items():
            grad = grad.astype(np.float64) * (coef if coef < 1 else 1.0)
            grad = grad + weight_decay * params[name]
            buffers[name] = grad if name not in buffers else momentum * buffers[name] + grad
            params[name] = params[name] - lr * buffers[name]
    return params


@pytest.mark.parametrize("grad_scale", [1.0, 1e-4], ids=["clipped", "below_max_norm"])
def test_jitted_update_equals_torch_sgd_with_clipping(data_dir, grad_scale):
    cfg = tiny_config(data_dir, **{"optimizer.weight_decay": 0.01,
                                   "optimizer_config.grad_clip.max_norm": 2.0})
    network, step, _ = build_parts(cfg, lr=0.05)
    names = [p.name for p in step.optimizer.parameters]
    start = {p.name: p.asnumpy().copy() for p in step.optimizer.parameters}
    rng = np.random.default_rng(0)
    grads_per_step = [{name: (grad_scale * rng.standard_normal(start[name].shape)).astype(np.float32)
                       for name in names} for _ in range(3)]
    for grads in grads_per_step:
        step.apply_gradients(tuple(ms.Tensor(grads[name]) for name in names))
    expected = torch_sgd_reference(start, grads_per_step, lr=0.05, momentum=0.9,
                                   weight_decay=0.01, max_norm=2.0)
    norm_params = [name for name in names if name.endswith(("gamma", "beta", "bias"))]
    assert norm_params  # weight decay applies to norm and bias parameters too, as in torch
    for param in step.optimizer.parameters:
        np.testing.assert_allclose(param.asnumpy(), expected[param.name], rtol=1e-5, atol=1e-6,
                                   err_msg=param.name)


@pytest.mark.parametrize("bad_value", [float("nan"), float("inf")], ids=["nan", "inf"])
def test_an_update_with_one_non_finite_gradient_is_skipped(data_dir, bad_value):
    cfg = tiny_config(data_dir, **{"optimizer_config.grad_clip.max_norm": 2.0})
    _, step, _ = build_parts(cfg, lr=0.05)
    start = [p.asnumpy().copy() for p in step.optimizer.parameters]
    grads = [np.full(p.shape, 0.01, np.float32) for p in start]
    bad = [g.copy() for g in grads]
    bad[len(bad) // 2].flat[-1] = bad_value  # one element of one gradient
    applied = step.apply_gradients(tuple(ms.Tensor(g) for g in bad), ms.Tensor(1.0))
    assert not bool(applied.asnumpy())
    for param, before in zip(step.optimizer.parameters, start):
        np.testing.assert_array_equal(param.asnumpy(), before, err_msg=param.name)
    assert bool(step.apply_gradients(tuple(ms.Tensor(g) for g in grads), ms.Tensor(1.0)).asnumpy())


def test_sum_of_squares_equals_a_float64_sum():
    rng = np.random.default_rng(4)
    arrays = [rng.normal(size=shape).astype(np.float32)
              for shape in [(7,), (3, 5), (64, 32, 3, 3), (1, 300), (256,)]]
    expected = sum(float((a.astype(np.float64) ** 2).sum()) for a in arrays)
    value = ms.jit(sum_of_squares)(ms.mutable(tuple(ms.Tensor(a) for a in arrays)))
    assert float(value.asnumpy()) == pytest.approx(expected, rel=1e-6)


def test_step_schedule_warmup_and_decay_like_mmcv():
    schedule = StepLrSchedule(0.01, step=[27, 33], warmup="linear", warmup_iters=500,
                              warmup_ratio=1 / 3)
    assert schedule(0, 0) == pytest.approx(0.01 / 3)
    assert schedule(0, 250) == pytest.approx(0.01 * (1 - 0.5 * (1 - 1 / 3)))
    assert schedule(0, 499) == pytest.approx(0.01 * (1 - (1 / 500) * (1 - 1 / 3)))
    assert schedule(0, 500) == pytest.approx(0.01)
    for epoch in range(27):
        assert schedule(epoch, 10 ** 5) == pytest.approx(0.01)
    for epoch in range(27, 33):
        assert schedule(epoch, 10 ** 5) == pytest.approx(0.001)
    for epoch in (33, 35):
        assert schedule(epoch, 10 ** 5) == pytest.approx(0.0001)
    assert schedule(27, 10) == pytest.approx(0.001 * (1 - (1 - 10 / 500) * (1 - 1 / 3)))
    constant = StepLrSchedule(0.02, step=[1], warmup="constant", warmup_iters=5, warmup_ratio=0.1)
    assert [constant(0, i) for i in (0, 4, 5)] == pytest.approx([0.002, 0.002, 0.02])
    every_two = StepLrSchedule(1.0, step=2, gamma=0.5)  # an int step decays every 2 epochs
    assert [every_two(epoch, 0) for epoch in range(5)] == pytest.approx([1, 1, 0.5, 0.5, 0.25])


def test_auto_scale_lr_scales_to_the_total_batch(data_dir):
    logger = get_logger()
    cfg = tiny_config(data_dir, **{"optimizer.lr": 0.01})
    assert scaled_lr(cfg, 4, logger) == pytest.approx(0.01)  # disabled in the quick start
    cfg.auto_scale_lr = dict(enable=True, base_batch_size=16)
    assert scaled_lr(cfg, 4, logger) == pytest.approx(0.0025)
    assert scaled_lr(cfg, 32, logger) == pytest.approx(0.02)


LOG_LINE = re.compile(r"Epoch \[(\d+)\]\[(\d+)/(\d+)\]\tlr: [0-9.e+-]+, eta: [0-9:]+, "
                      r"time: [0-9.]+, data_time: [0-9.]+, loss_ins: [0-9.]+, loss_cate: [0-9.]+, "
                      r"loss: [0-9.]+")


@pytest.fixture(scope="module")
def straight_run(data_dir, tmp_path_factory):
    """A 2-epoch run of train.py (2 iterations an epoch); returns its work dir."""
    work_dir = tmp_path_factory.mktemp("straight")
    assert run_train(data_dir, work_dir) == 0
    return work_dir


def test_train_py_writes_checkpoints_logs_and_config(straight_run):
    names = set(os.listdir(straight_run))
    assert {"epoch_1.ckpt", "epoch_2.ckpt", "latest.ckpt", "config.py"} <= names
    assert not [name for name in names if "tmp" in name]
    logs = glob.glob(os.path.join(straight_run, "*.log"))
    assert len(logs) == 1
    with open(logs[0], encoding="utf-8") as f:
        positions = [match.groups() for match in LOG_LINE.finditer(f.read())]
    assert positions == [("1", "1", "2"), ("1", "2", "2"), ("2", "1", "2"), ("2", "2", "2")]
    final, meta = checkpoint_arrays(os.path.join(straight_run, "epoch_2.ckpt"))
    latest, _ = checkpoint_arrays(os.path.join(straight_run, "latest.ckpt"))
    assert (meta["epoch"], meta["iter"]) == (2, 4)
    assert meta["CLASSES"] == ["circle", "rectangle", "triangle"]
    assert any(name.startswith(OPTIMIZER_PREFIX + "accum.") for name in final)
    assert all(np.array_equal(final[name], latest[name]) for name in final)
    saved_cfg = Config.fromfile(os.path.join(straight_run, "config.py"))
    assert saved_cfg.model.bbox_head.seg_feat_channels == WIDTH and saved_cfg.total_epochs == 2


def test_resume_continues_exactly(data_dir, straight_run, tmp_path):
    work_dir = tmp_path / "resumed"
    assert run_train(data_dir, work_dir, "--resume-from",
                     str(straight_run / "epoch_1.ckpt")) == 0
    assert not (work_dir / "epoch_1.ckpt").exists()
    straight, straight_meta = checkpoint_arrays(straight_run / "epoch_2.ckpt")
    resumed, resumed_meta = checkpoint_arrays(work_dir / "epoch_2.ckpt")
    assert (resumed_meta["epoch"], resumed_meta["iter"]) == (straight_meta["epoch"],
                                                               straight_meta["iter"])
    assert set(resumed) == set(straight)
    for name in straight:
        np.testing.assert_allclose(resumed[name], straight[name], rtol=0, atol=1e-6, err_msg=name)


def test_checkpoint_round_trip_restores_momentum(data_dir, straight_run):
    saved, _ = checkpoint_arrays(straight_run / "epoch_1.ckpt")
    network, step, _ = build_parts(tiny_config(data_dir), seed=1)
    meta = restore_train_state(str(straight_run / "epoch_1.ckpt"), network, step.optimizer)
    assert (meta["epoch"], meta["iter"]) == (1, 2)
    moments = {OPTIMIZER_PREFIX + p.name: p.asnumpy() for p in step.optimizer.accum}
    assert moments and all(name.startswith(OPTIMIZER_PREFIX + "accum.") for name in moments)
    assert any(np.abs(value).max() > 0 for value in moments.values())
    for name, value in moments.items():
        np.testing.assert_array_equal(value, saved[name])
    for param in network.get_parameters():
        np.testing.assert_array_equal(param.asnumpy(), saved[param.name])


def save_network(network, path):
    save_checkpoint([(p.name, p.value()) for p in network.get_parameters()], str(path))


def test_load_from_another_class_count_skips_only_the_category_layer(data_dir, tmp_path, caplog):
    set_device("CPU")
    ms.set_seed(3)
    other = build_detector(tiny_config(data_dir, **{"model.bbox_head.num_classes": 8}).model)
    other_path = tmp_path / "eight_classes.ckpt"
    save_network(other, other_path)
    ms.set_seed(4)
    network = build_detector(tiny_config(data_dir).model)
    initial = parameter_values(network)
    load_pretrained(network, str(other_path), get_logger())
    file_values = parameter_values(other)
    for name, value in parameter_values(network).items():
        expected = initial[name] if name in CATE_LAYER else file_values[name]
        np.testing.assert_array_equal(value, expected, err_msg=name)
    work_dir = tmp_path / "fine_tune"
    assert run_train(data_dir, work_dir, "--load-from", str(other_path), total_epochs=1) == 0
    with open(glob.glob(str(work_dir / "*.log"))[0], encoding="utf-8") as f:
        warnings = [line for line in f if "WARNING" in line]
    assert len(warnings) == 2
    for name in CATE_LAYER:
        assert any(name in line and "not loaded" in line for line in warnings)


def test_a_nan_loss_stops_naming_the_iteration_and_keeps_the_last_checkpoint(
        data_dir, tmp_path, monkeypatch, capsys):
    calls = []
    original_losses = TrainStep.losses

    def losses_turning_nan(self, img, targets):
        calls.append(1)
        total, loss_ins, loss_cate = original_losses(self, img, targets)
        if len(calls) == 3:  # the first iteration of the 2nd epoch
            loss_cate = loss_cate * float("nan")
        return loss_ins + loss_cate, loss_ins, loss_cate

    monkeypatch.setattr(TrainStep, "losses", losses_turning_nan)
    assert run_train(data_dir, tmp_path) == 1
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert "non-finite loss at iteration 3" in message and "loss_cate=nan" in message
    assert "latest.ckpt" in message
    assert not (tmp_path / "epoch_2.ckpt").exists()
    latest, meta = checkpoint_arrays(tmp_path / "latest.ckpt")
    assert meta["epoch"] == 1 and all(np.isfinite(v).all() for v in latest.values())


def test_a_failing_save_leaves_no_partial_file(data_dir, tmp_path, monkeypatch):
    network, step, _ = build_parts(tiny_config(data_dir))
    trainer = Trainer(network, step, None, 2, str(tmp_path), get_logger())
    trainer.epoch, trainer.iteration = 1, 2
    trainer.save_checkpoint()
    saved_bytes = {name: (tmp_path / name).read_bytes() for name in ("epoch_1.ckpt", "latest.ckpt")}
    real_save = ms.save_checkpoint

    def save_half_then_fail(save_obj, ckpt_file_name, **kwargs):
        real_save(save_obj, ckpt_file_name, **kwargs)
        with open(ckpt_file_name, "r+b") as f:
            f.truncate(os.path.getsize(ckpt_file_name) // 2)
        raise OSError("No space left on device")

    monkeypatch.setattr(ms, "save_checkpoint", save_half_then_fail)
    trainer.epoch, trainer.iteration = 2, 4
    with pytest.raises(OSError, match="No space left"):
        trainer.save_checkpoint()
    assert sorted(os.listdir(tmp_path)) == ["epoch_1.ckpt", "latest.ckpt"]
    for name, content in saved_bytes.items():
        assert (tmp_path / name).read_bytes() == content
    monkeypatch.undo()
    assert restore_train_state(str(tmp_path / "latest.ckpt"), network, step.optimizer)["epoch"] == 1


def test_num_classes_not_matching_the_data_set_exits_2_with_one_line(data_dir, tmp_path, capsys):
    assert run_train(data_dir, tmp_path, **{"model.bbox_head.num_classes": 3}) == 2
    err_lines = capsys.readouterr().err.strip().splitlines()
    assert len(err_lines) == 1
    assert "counts the background" in err_lines[0] and "num_classes=4" in err_lines[0]
    assert not glob.glob(str(tmp_path / "*.ckpt"))
