"""Data-parallel training through msrun_launcher.sh on the CPU (2 workers, loopback only), and
crash-safe resume with train_multi_by_snap_ckpt.py."""
import json
import os
import re
import socket
import subprocess

import numpy as np
import pytest

from conftest import REPO
from mmdet_ms.datasets import make_synthetic_coco
from mmdet_ms.utils.checkpoint import read_checkpoint

pytestmark = pytest.mark.slow
CONFIG = "configs/solov2/solov2_light_r18_synthetic_quickstart.py"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_coco")
    make_synthetic_coco(str(root), num_train=8, num_val=2, size=96, seed=0)
    return root


def launch(script, data_root, work_dir, log_dir, total_epochs, evaluation=None):
    """Run ``script`` on 2 msrun workers; returns the workers' logs."""
    options = " ".join([
        f"data.train.ann_file={data_root}/annotations/instances_train.json",
        f"data.train.img_prefix={data_root}/train/",
        f"data.val.ann_file={data_root}/annotations/instances_val.json",
        f"data.val.img_prefix={data_root}/val/", "data.val.pipeline.1.img_scale=(96,96)",
        f"evaluation={evaluation!r}".replace(" ", ""),
        "data.imgs_per_gpu=2", "data.workers_per_gpu=0", "log_config.interval=1",
        f"total_epochs={total_epochs}", "data.train.pipeline.2.img_scale=(96,96)"])
    command = f"{script} --config {CONFIG} --work-dir {work_dir} --cfg-options {options}"
    proc = subprocess.run(
        ["bash", "msrun_launcher.sh", command, "2", "2", "127.0.0.1", str(free_port()), "0",
         str(log_dir), "True", "120"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return [open(os.path.join(log_dir, f"worker_{rank}.log")).read() for rank in (0, 1)]


def fingerprint(log):
    found = re.findall(r"weights fingerprint (\w+)", log)
    assert found, log[-2000:]
    return found[-1]


@pytest.fixture(scope="module")
def straight_run(tiny_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("straight")
    logs = launch("train_multi.py", tiny_data, root / "work", root / "log", total_epochs=2,
                  evaluation=dict(interval=1, metric=["segm"]))
    return root, logs


def network_weights(path):
    content, _ = read_checkpoint(str(path))
    return {k: v.asnumpy() for k, v in content.items() if not k.startswith("optimizer.")}


def test_two_workers_train_in_sync(straight_run):
    root, (log0, log1) = straight_run
    assert fingerprint(log0) == fingerprint(log1)
    assert "rank 0/2" in log0 and "rank 1/2" in log1
    assert "saved" in log0 and "saved" not in log1  # only rank 0 writes checkpoints and logs
    logs = [f for f in os.listdir(root / "work") if f.endswith(".log")]
    assert len(logs) == 1
    assert sorted(os.listdir(root / "work")) == sorted(
        ["config.py", "epoch_1.ckpt", "epoch_2.ckpt", "latest.ckpt", "best_segm_mAP.ckpt",
         logs[0], logs[0] + ".json"])
    assert re.search(r"Epoch \[2\]\[2/2\]\tlr: ", log0)


def test_evaluation_runs_on_both_ranks_and_only_rank_0_scores_and_logs(straight_run):
    root, (log0, log1) = straight_run
    assert "on 2 rank(s)" in log0
    assert log0.count("Epoch(val) [") == 2 and "Epoch(val)" not in log1
    assert "Evaluating segm on 2 images" in log0 and "Evaluating segm" not in log1
    (json_log,) = [f for f in os.listdir(root / "work") if f.endswith(".log.json")]
    with open(root / "work" / json_log, encoding="utf-8") as f:
        val = [json.loads(line) for line in f if '"mode": "val"' in line]
    assert [entry["epoch"] for entry in val] == [1, 2]


def test_resume_after_a_crash_matches_the_uninterrupted_run(straight_run, tiny_data, tmp_path):
    straight_root, _ = straight_run
    work = tmp_path / "work"
    launch("train_multi.py", tiny_data, work, tmp_path / "log1", total_epochs=1)
    assert not (work / "epoch_2.ckpt").exists()
    # A crash while writing the next epoch's checkpoint left a truncated file behind.
    complete = (work / "epoch_1.ckpt").read_bytes()
    (work / "epoch_2.ckpt").write_bytes(complete[: len(complete) // 2])
    log0, _ = launch("train_multi_by_snap_ckpt.py", tiny_data, work, tmp_path / "log2",
                     total_epochs=2)
    assert "skipping" in log0 and "epoch_2.ckpt" in log0
    assert "resumed from" in log0 and "epoch 1, iteration 2" in log0
    resumed = network_weights(work / "epoch_2.ckpt")
    straight = network_weights(straight_root / "work" / "epoch_2.ckpt")
    assert resumed.keys() == straight.keys()
    for name, value in straight.items():
        np.testing.assert_allclose(resumed[name], value, atol=1e-6, rtol=0, err_msg=name)


def test_snapshot_resume_with_no_checkpoint_starts_from_scratch(tiny_data, tmp_path):
    log0, _ = launch("train_multi_by_snap_ckpt.py", tiny_data, tmp_path / "work",
                     tmp_path / "log", total_epochs=1)
    assert "no complete checkpoint" in log0 and "starts from scratch" in log0
