"""The DCN configs against the original (../shared/parity): the fixtures' deterministic
checkpoints, converted by weight_convert.py with the config recognised from the checkpoint,
reproduce the original's category scores, kernels, mask feature and final instances within the
tolerances of the R101 fixture (tests/parity_checks.py).

- solov2_light_512_dcn_r50 (DCN v1 in backbone stages 2-4 and the towers' last convs), seed 3:
  op by op and compiled (the GraphRunner of ``--mode graph``);
- solov2_x101_dcn (ResNeXt-101 64x4d, DCN v2 in the backbone, towers and mask-feature head),
  seed 0: op by op.
"""
import os
from collections import namedtuple

import numpy as np
import pytest

from conftest import REPO, make_original_checkpoint, parity_file
from mmdet_ms.apis import init_detector
from mmdet_ms.apis.inference import preprocess
from mmdet_ms.utils.checkpoint import read_checkpoint
from parity_checks import (check_category_scores_and_kernels, check_final_instances,
                           check_mask_feature, check_metas, pynative_outputs, run_outputs)

pytestmark = pytest.mark.slow

Fixture = namedtuple("Fixture", "config keys seed reference count mask_feat_shape with_graph")
FIXTURES = {
    "light512_dcn_r50": Fixture("solov2_light_512_dcn_r50_fpn_8gpu_3x.py",
                                "keys_solov2_light_512_dcn_r50.tsv", 3,
                                "light512_dcn_r50_seed3_coffee_infer.npz", 100, (128, 128, 192),
                                with_graph=True),
    "x101_dcn": Fixture("solov2_x101_dcn_fpn_8gpu_3x.py", "keys_solov2_x101_dcn.tsv", 0,
                        "x101_dcn_seed0_coffee_infer.npz", 100, (256, 200, 304), with_graph=False),
}


@pytest.fixture(scope="module", params=list(FIXTURES))
def fixture_run(request, tmp_path_factory):
    """(fixture, converted config name, reference arrays, mode → the port's outputs)."""
    fixture = FIXTURES[request.param]
    folder = tmp_path_factory.mktemp(request.param)
    pth = make_original_checkpoint(parity_file(fixture.keys), folder / "original.pth",
                                   seed=fixture.seed)
    ckpt = str(folder / "converted.ckpt")
    import weight_convert
    assert weight_convert.main([pth, ckpt]) == 0  # config guessed from the checkpoint
    os.remove(pth)  # X101: 450 MB
    converted_config = read_checkpoint(ckpt)[1]["config"]
    model = init_detector(os.path.join(REPO, "configs", "solov2", fixture.config), ckpt,
                          device_target="CPU", mode="pynative")
    batch, img_meta = preprocess(model, parity_file("coffee.jpg"))
    outputs = {"pynative": pynative_outputs(model, batch, img_meta)}  # before the graph runner
    if fixture.with_graph:
        outputs["graph"] = run_outputs(model, "graph", batch, img_meta,
                                       outputs["pynative"]["cate_before_nms"])
    return fixture, converted_config, dict(np.load(parity_file(fixture.reference))), outputs


def test_config_recognised_from_the_checkpoint(fixture_run):
    fixture, converted_config = fixture_run[:2]
    assert converted_config == fixture.config


def test_outputs_match_the_original(fixture_run):
    fixture, _, reference, outputs = fixture_run
    for mode, port in outputs.items():
        check_metas(port, reference)
        check_category_scores_and_kernels(port, reference)
        check_mask_feature(port, reference, fixture.mask_feat_shape)
        check_final_instances(port, reference, fixture.count, image_size=(400, 600))
