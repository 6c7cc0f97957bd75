"""Training as mmdetection users run it: losses from the LOSSES registry, hooks from the config
(custom ones too), evaluation during training with the best checkpoint, the JSON log and its
curves."""
import glob
import json
import os
import sys
import textwrap

import pytest

import valuation
from mmdet_ms.models import build_detector
from mmdet_ms.registry import ConfigError
from test_training import QUICKSTART, data_dir, run_train, tiny_config  # noqa: F401  (fixture)
from tools import analyze_logs


@pytest.mark.parametrize("override,message", [
    ({"model.bbox_head.loss_cate.type": "FocalLos"}, "unknown loss type 'FocalLos'"),
    ({"model.bbox_head.loss_cate.use_sigmoid": False}, "use_sigmoid=False"),
    ({"model.bbox_head.loss_ins": dict(type="DiceLoss", loss_weight=3.0, eps=1.0)},
     "DiceLoss' got an unknown key 'eps'"),
])
def test_an_unknown_loss_type_or_option_fails_when_the_model_is_built(data_dir, override,
                                                                       message):
    cfg = tiny_config(data_dir, **override)
    with pytest.raises(ConfigError, match=message):
        build_detector(cfg.model)


def test_loss_weights_of_the_config_reach_the_losses(data_dir):
    cfg = tiny_config(data_dir, **{"model.bbox_head.loss_ins.loss_weight": 1.5,
                                   "model.bbox_head.loss_cate.gamma": 1.0})
    loss = build_detector(cfg.model).loss
    assert loss.loss_ins.loss_weight == 1.5 and loss.loss_cate.gamma == 1.0


@pytest.fixture(scope="module")
def evaluated_run(data_dir, tmp_path_factory):
    """2 epochs of the tiny quick start with evaluation after each."""
    work_dir = tmp_path_factory.mktemp("evaluated")
    assert run_train(data_dir, work_dir, **{"evaluation.interval": 1}) == 0
    (json_log,) = glob.glob(str(work_dir / "*.log.json"))
    with open(json_log, encoding="utf-8") as f:
        entries = [json.loads(line) for line in f]
    return work_dir, json_log, entries


def test_the_json_log_has_train_entries_and_one_val_entry_per_epoch(evaluated_run):
    _, _, entries = evaluated_run
    header, *logged = entries
    assert header["config"] == os.path.basename(QUICKSTART) and header["seed"] == 0
    train = [e for e in logged if e["mode"] == "train"]
    val = [e for e in logged if e["mode"] == "val"]
    assert [(e["epoch"], e["iter"]) for e in train] == [(1, 1), (1, 2), (2, 1), (2, 2)]
    for entry in train:
        assert {"lr", "time", "data_time", "loss_ins", "loss_cate", "loss"} <= set(entry)
        assert entry["loss"] == pytest.approx(entry["loss_ins"] + entry["loss_cate"], rel=1e-4)
    assert [e["epoch"] for e in val] == [1, 2]
    for entry in val:
        assert entry["iter"] == 2
        for iou_type in ("segm", "bbox"):
            for suffix in ("", "_50", "_75", "_s", "_m", "_l"):
                assert isinstance(entry[f"{iou_type}_mAP{suffix}"], float)


def test_the_text_log_has_the_coco_lines_and_the_val_line(evaluated_run):
    work_dir, _, _ = evaluated_run
    (text_log,) = glob.glob(str(work_dir / "*.log"))
    with open(text_log, encoding="utf-8") as f:
        text = f.read()
    assert text.count("Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all") == 4  # 2 × 2
    assert "Epoch(val) [2][2]\tsegm_mAP: " in text


def test_the_best_checkpoint_scores_what_the_log_says(evaluated_run, data_dir, capsys):
    work_dir, _, entries = evaluated_run
    best = max(e["segm_mAP"] for e in entries if e.get("mode") == "val")
    path = work_dir / "best_segm_mAP.ckpt"
    assert path.exists() and not glob.glob(str(work_dir / "*.tmp"))
    options = [f"{key}={value!r}" for key, value in {
        "data.test.ann_file": os.path.join(data_dir, "annotations", "instances_val.json"),
        "data.test.img_prefix": os.path.join(data_dir, "val") + os.sep,
        "data.test.pipeline.1.img_scale": (64, 64)}.items()]
    capsys.readouterr()
    assert valuation.main(["--config", str(work_dir / "config.py"), "--checkpoint", str(path),
                           "--device_target", "CPU", "--mode", "pynative", "--eval", "segm",
                           "--cfg-options", *options]) == 0
    last_line = capsys.readouterr().out.strip().splitlines()[-1]
    assert last_line == f"segm AP {best:.3f}"


def test_plot_curve_draws_losses_and_ap_from_a_real_log(evaluated_run, tmp_path):
    _, json_log, _ = evaluated_run
    for keys in (["loss_ins", "loss_cate"], ["segm_mAP", "bbox_mAP"]):
        out = tmp_path / f"{keys[0]}.png"
        assert analyze_logs.main(["plot_curve", json_log, "--keys", *keys, "--out", str(out)]) == 0
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10000


def test_plot_curve_names_a_key_the_log_lacks(evaluated_run, tmp_path, capsys):
    _, json_log, _ = evaluated_run
    assert analyze_logs.main(["plot_curve", json_log, "--keys", "loss_mask", "--out",
                              str(tmp_path / "x.png")]) == 2
    message = capsys.readouterr().err.strip()
    assert "no 'loss_mask' in the log" in message and "loss_cate" in message
    assert not (tmp_path / "x.png").exists()


def test_a_custom_hook_named_in_the_config_is_called(data_dir, tmp_path, monkeypatch):
    module_dir = tmp_path / "modules"
    module_dir.mkdir()
    (module_dir / "counting_hooks.py").write_text(textwrap.dedent('''
        from mmdet_ms.engine.hooks import Hook
        from mmdet_ms.registry import HOOKS

        CALLS = []


        @HOOKS.register_module()
        class CountingHook(Hook):
            def __init__(self, tag):
                self.tag = tag

            def after_train_iter(self, trainer):
                CALLS.append((self.tag, trainer.epoch, trainer.inner_iter,
                              sorted(trainer.outputs["log_vars"])))

            def after_run(self, trainer):
                CALLS.append((self.tag, "after_run", trainer.epoch))
    '''))
    monkeypatch.syspath_prepend(str(module_dir))
    config = tmp_path / "with_hook.py"
    config.write_text(f"_base_ = {QUICKSTART!r}\n"
                      "custom_imports = dict(imports=['counting_hooks'])\n"
                      "custom_hooks = [dict(type='CountingHook', tag='x', priority='LOW')]\n")
    work_dir = tmp_path / "work"
    assert run_train(data_dir, work_dir, config=str(config), total_epochs=1,
                     evaluation=None) == 0
    calls = sys.modules["counting_hooks"].CALLS
    names = ["loss", "loss_cate", "loss_ins"]
    assert calls == [("x", 0, 0, names), ("x", 0, 1, names), ("x", "after_run", 1)]
    assert not glob.glob(str(work_dir / "best_*.ckpt"))


@pytest.mark.parametrize("override,message", [
    ({"log_config.hooks": [dict(type="TensorboardLoggerHook")]},
     "unknown hook type 'TensorboardLoggerHook'"),
    ({"custom_hooks": [dict(type="NoSuchHook")]}, "unknown hook type 'NoSuchHook'"),
    ({"workflow": [("train", 1), ("val", 1)]}, "only [('train', 1)] is supported"),
    ({"evaluation.metric": ["proposal"]}, "evaluation.metric"),
    ({"evaluation": dict(interval=1, save_best="segm_AP")}, "evaluation.save_best='segm_AP'"),
    ({"checkpoint_config": dict(interval=1, max_keep_ckpts=3)},
     "checkpoint_config: unknown keys ['max_keep_ckpts']"),
    ({"optimizer.type": "Adamw"}, "unknown optimizer type 'Adamw' (did you mean 'AdamW'?)"),
])
def test_a_wrong_hook_or_training_option_is_one_line_and_exit_2(data_dir, tmp_path, capsys,
                                                                override, message):
    assert run_train(data_dir, tmp_path, total_epochs=1, **override) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert not glob.glob(str(tmp_path / "*.ckpt"))
