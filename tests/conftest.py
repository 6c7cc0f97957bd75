"""Shared fixtures: the parity fixtures of ../shared/parity and checkpoints made from them."""
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PARITY_DIR = os.environ.get("SOLOV2_PARITY_DIR",
                            os.path.join(os.path.dirname(REPO), "shared", "parity"))
R101_CONFIG = os.path.join(REPO, "configs", "solov2", "solov2_r101_fpn_8gpu_3x.py")
LIGHT_R18_CONFIG = os.path.join(REPO, "configs", "solov2", "solov2_light_448_r18_fpn_8gpu_3x.py")
# The light R18 shrunk to 320x192 inputs, thresholds at 0 so that random weights still yield
# instances to draw, save and score.
TINY_MODEL_OPTIONS = ["data.test.pipeline.1.img_scale=(320,192)", "test_cfg.score_thr=0.0",
                      "test_cfg.update_thr=0.0"]
THREE_CLASSES = ["model.bbox_head.num_classes=4"]  # the tiny COCO set's 3 classes + background


def parity_file(name):
    path = os.path.join(PARITY_DIR, name)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"parity fixture {path} is missing (set SOLOV2_PARITY_DIR)")
    return path


def make_original_checkpoint(keys_tsv, out_path, seed=0):
    """A .pth in the original layout with the fixtures' deterministic random weights."""
    subprocess.run([sys.executable, parity_file("make_checkpoint.py"), keys_tsv, str(out_path),
                    "--seed", str(seed)], check=True, capture_output=True)
    return str(out_path)


@pytest.fixture(scope="session")
def r101_pth(tmp_path_factory):
    return make_original_checkpoint(parity_file("keys_solov2_r101.tsv"),
                                    tmp_path_factory.mktemp("r101") / "r101_seed0.pth")


@pytest.fixture(scope="session")
def r101_ckpt(r101_pth, tmp_path_factory):
    import weight_convert
    out = tmp_path_factory.mktemp("r101_ms") / "r101_seed0.ckpt"
    assert weight_convert.main([r101_pth, str(out)]) == 0
    return str(out)


@pytest.fixture(scope="session")
def r18_checkpoint(tmp_path_factory):
    """A .ckpt of the random-weight light R18 network with 3 classes (num_classes=4)."""
    import mindspore as ms
    from mmdet_ms.apis import init_detector
    from mmdet_ms.config import parse_cfg_options

    model = init_detector(LIGHT_R18_CONFIG, device_target="CPU",
                          cfg_options=parse_cfg_options(TINY_MODEL_OPTIONS + THREE_CLASSES))
    path = tmp_path_factory.mktemp("checkpoint") / "r18_random.ckpt"
    ms.save_checkpoint(model, str(path))
    return path
