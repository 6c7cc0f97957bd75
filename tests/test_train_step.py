"""The default training step: compiled per canvas, nothing read from the device between log
intervals, the NaN stop naming the iteration when the losses are read."""
import glob
import json
import traceback

import mindspore as ms
import pytest

import train
from mmdet_ms.engine.hooks import NanStopHook, optimizer as optimizer_hooks
from mmdet_ms.engine.hooks import logger as logger_hooks
from mmdet_ms.engine.train_step import NonFiniteLossError, TrainStep
from test_train_data import MULTI_SCALE, coco_files  # noqa: F401  (fixture)
from test_training import QUICKSTART, tiny_options

CANVAS = (96, 64)


def multi_scale_options(coco_files, work_dir_name, **overrides):  # noqa: F811
    ann_file, prefix = coco_files
    options = tiny_options("unused", **{
        "data.train.ann_file": ann_file, "data.train.img_prefix": prefix,
        "data.train.pipeline": MULTI_SCALE, "data.train.pad_to": CANVAS,
        "model.bbox_head.num_classes": 4, "evaluation": None, "total_epochs": 2,
        "checkpoint_config.interval": 10})
    for key in [key for key in options
                if key.startswith("data.val") or key == "data.train.pipeline.2.img_scale"]:
        del options[key]
    options.update(overrides)
    return options


def run_multi_scale(coco_files, work_dir, **overrides):  # noqa: F811
    options = multi_scale_options(coco_files, work_dir, **overrides)
    assert train.main(["--config", QUICKSTART, "--work-dir", str(work_dir), "--device_target",
                       "CPU", "--cfg-options",
                       *(f"{key}={value!r}" for key, value in options.items())]) == 0
    log_file = glob.glob(str(work_dir / "*.log"))[0]
    with open(log_file, encoding="utf-8") as f:
        text = f.read()
    with open(log_file + ".json", encoding="utf-8") as f:
        entries = [json.loads(line) for line in f][1:]
    return text, [entry for entry in entries if entry.get("mode") == "train"]


@pytest.mark.slow
def test_a_multi_scale_run_compiles_once_per_shape_and_matches_op_by_op(coco_files, tmp_path):  # noqa: F811
    # lr 0.001, not the tiny config's 0.01: there its BN, trained on 3x2 maps, amplifies float32
    # rounding ~100x a step (a 1e-7 change in the weights after the first update changed the
    # fourth loss by 1.3e-5), so the comparison would measure that, not the two paths.
    options = {"total_epochs": 1, "optimizer.lr": 0.001}
    compiled_log, compiled = run_multi_scale(coco_files, tmp_path / "compiled",
                                             jit_train_step=True, **options)
    _, op_by_op = run_multi_scale(coco_files, tmp_path / "op_by_op", **options)
    signatures = [line.split("compiled: ")[1].split(";")[0]
                  for line in compiled_log.splitlines() if "train step shape" in line]
    assert len(signatures) == len(set(signatures))  # each shape compiled (and logged) once
    img_shapes = {signature.split("),")[0] for signature in signatures}
    assert img_shapes == {"img (2, 3, 64, 96", "img (2, 3, 96, 64"}, img_shapes  # 2 canvases
    slots = {signature.split("(2, ")[-1].split(",")[0] for signature in signatures}
    assert slots <= {"16", "32", "64", "128"} and len(signatures) <= 2 * len(slots)
    assert len(compiled) == len(op_by_op) == 4
    for step, (fast, slow) in enumerate(zip(compiled, op_by_op)):
        for name in ("loss_ins", "loss_cate", "loss"):
            assert fast[name] == pytest.approx(slow[name], rel=1e-5), (step, name)


@pytest.mark.slow
def test_losses_are_read_from_the_device_once_per_log_interval(coco_files, tmp_path,  # noqa: F811
                                                               monkeypatch):
    reads = []
    for module in (optimizer_hooks, logger_hooks):
        real = module.read_records
        monkeypatch.setattr(module, "read_records",
                            lambda records, real=real: reads.append(len(records)) or real(records))
    inside_step = []
    real_asnumpy = ms.Tensor.asnumpy

    def counting_asnumpy(self):
        # constants read while a graph compiles (its first call; constant folding, such as
        # infer_value_for_Cast, is called from C++ there) are not per-iteration reads
        frames = traceback.extract_stack()
        if not any(frame.name == "compile" or frame.name.startswith("infer_value_for_")
                   for frame in frames):
            inside_step.append(1)
        return real_asnumpy(self)

    for name in ("gradients", "apply_gradients"):
        real_method = getattr(TrainStep, name)

        def counted(self, *args, real_method=real_method):
            monkeypatch.setattr(ms.Tensor, "asnumpy", counting_asnumpy)
            try:
                return real_method(self, *args)
            finally:
                monkeypatch.setattr(ms.Tensor, "asnumpy", real_asnumpy)
        monkeypatch.setattr(TrainStep, name, counted)
    run_multi_scale(coco_files, tmp_path, **{"log_config.interval": 3, "total_epochs": 1})
    # 4 iterations: windows of 3 and 1 (the end of the epoch), each read once by each hook
    assert sorted(reads) == [1, 1, 3, 3]
    assert not inside_step


class FakeTrainer:
    iters_per_epoch = 10

    def __init__(self):
        self.outputs = {}


def test_the_nan_stop_reads_at_its_interval_and_names_the_first_bad_iteration():
    hook, trainer = NanStopHook(interval=3), FakeTrainer()
    hook.before_train_epoch(trainer)
    losses = [1.0, float("nan"), float("inf")]
    for inner_iter, loss in enumerate(losses[:2]):
        trainer.inner_iter, trainer.iteration = inner_iter, 20 + inner_iter
        trainer.outputs["log_vars"] = dict(loss=ms.Tensor(loss, ms.float32))
        hook.after_train_iter(trainer)  # not read yet
    trainer.inner_iter, trainer.iteration = 2, 22
    trainer.outputs["log_vars"] = dict(loss=ms.Tensor(losses[2], ms.float32))
    with pytest.raises(NonFiniteLossError, match=r"at iteration 22: loss=nan"):
        hook.after_train_iter(trainer)
