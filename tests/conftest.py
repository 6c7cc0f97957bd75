"""Shared fixtures: the parity fixtures of ../shared/parity and checkpoints made from them."""
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PARITY_DIR = os.environ.get("SOLOV2_PARITY_DIR",
                            os.path.join(os.path.dirname(REPO), "shared", "parity"))
R101_CONFIG = os.path.join(REPO, "configs", "solov2", "solov2_r101_fpn_8gpu_3x.py")


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
