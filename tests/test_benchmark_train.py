"""``tools/benchmark.py --train``: the figures it prints and writes, on a tiny image, with the
torch baseline on a random original-layout checkpoint of the same network."""
import json
import math
import subprocess
import sys

import pytest

from conftest import REPO, parity_file
from tools import benchmark, benchmark_train

QUICKSTART = f"{REPO}/configs/solov2/solov2_light_r18_synthetic_quickstart.py"
# BN in eval mode and stage 1 frozen, as the original's configs train (what the torch baseline
# transcribes); op by op, so that nothing compiles.
OPTIONS = ["model.backbone.norm_eval=True", "model.backbone.frozen_stages=1",
           "jit_train_step=False"]


def original_checkpoint(tmp_path):
    """A .pth in the original layout of the quick-start network, deterministic random weights."""
    from mmdet_ms.apis.convert import original_state_layout
    from mmdet_ms.config import Config, parse_cfg_options
    from mmdet_ms.models import build_detector

    cfg = Config.fromfile(QUICKSTART, parse_cfg_options(OPTIONS))
    network = build_detector(cfg.model, cfg.get("train_cfg"), cfg.get("test_cfg"))
    keys = tmp_path / "keys.tsv"
    keys.write_text("".join(
        f"{name}\t{'x'.join(map(str, shape)) or '-'}\t"
        f"{'int64' if name.endswith('num_batches_tracked') else 'float32'}\n"
        for name, shape in original_state_layout(network)))
    pth = tmp_path / "quickstart.pth"
    subprocess.run([sys.executable, parity_file("make_checkpoint.py"), str(keys), str(pth)],
                   check=True, capture_output=True)
    return str(pth)


@pytest.mark.slow
def test_train_benchmark_reports_every_stage(tmp_path, capsys, monkeypatch):
    # In this process rather than a fresh one: the same figures, without MindSpore's start-up.
    monkeypatch.setattr(benchmark_train, "_measure_in_child", lambda function, *args:
                        function(*args))
    out = tmp_path / "figures.json"
    assert benchmark.main(["--train", "--config", QUICKSTART, "--cfg-options", *OPTIONS,
                           "--img-size", "64", "64", "--batch", "1", "--runs", "1",
                           "--warmup", "0", "--no-norms",
                           "--torch-baseline", original_checkpoint(tmp_path),
                           "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    figures = json.loads(out.read_text())
    assert figures["input_shape"] == [1, 3, 64, 64]
    ms_row, torch_row = figures["mindspore"], figures["torch"]
    for stage in benchmark_train.MS_STAGES:
        value = ms_row["medians"][stage]
        # loader workers may have built the targets, prefetched the batch: ~0 s on the host
        assert (value >= 0 if stage in ("targets", "data wait") else value > 0), stage
        assert stage in printed
    for stage in benchmark_train.TORCH_STAGES:
        assert torch_row["medians"][stage] > 0, stage
        assert figures["ratios"][stage] > 0, stage
    for row in (ms_row, torch_row):
        assert 0 < row["warm_peak_rss_mib"] <= row["peak_rss_mib"]
    assert ms_row["parts_peak_rss_mib"] > 0
    assert set(ms_row["breakdown"]) == {"losses", "targets", "optimizer", "rest", "step"}
    assert math.isfinite(ms_row["outside_share"])
    assert "outside the compiled network and losses" in printed


def test_breakdown_splits_the_step():
    medians = {"targets": 0.1, "forward": 1.0, "fwd+bwd": 3.0, "losses": 0.5, "optimizer": 0.2,
               "step": 4.0, "step+data": 4.5}
    parts = benchmark_train.breakdown(medians, {"forward": 0.8, "fwd+bwd": 2.5})
    assert parts == pytest.approx({"conv fwd": 0.8, "conv bwd": 1.7, "norms": 0.5,
                                   "losses": 0.5, "targets": 0.1, "optimizer": 0.2,
                                   "rest": 0.2, "step": 4.0})
    assert sum(value for name, value in parts.items() if name != "step") == pytest.approx(4.0)
    assert benchmark_train.outside_share(medians) == pytest.approx(1.0 / 4.5)


def test_replace_norms_by_identity_leaves_no_norm():
    import mindspore.nn as nn
    from mmdet_ms.config import Config
    from mmdet_ms.models import build_detector

    cfg = Config.fromfile(QUICKSTART)
    network = build_detector(cfg.model, cfg.get("train_cfg"), cfg.get("test_cfg"))
    # ResNet-18: stem + 8 blocks × 2 + 3 downsample BNs; heads: 4 tower GNs + 8 mask-feature GNs
    assert benchmark_train.replace_norms_by_identity(network) == 32
    assert not [name for name, cell in network.cells_and_names()
                if isinstance(cell, (nn.BatchNorm2d, nn.GroupNorm))]
    assert isinstance(network.backbone.layer2[0].downsample[1], nn.Identity)  # in a SequentialCell
