"""The port against the original PyTorch SOLOv2 (../shared/parity): same weights, same image →
same category scores, kernels, mask feature and final instances, with the network run op by op
(PyNative) and compiled (graph mode); and the two modes against each other."""
import numpy as np
import pytest

from conftest import R101_CONFIG, parity_file
from mmdet_ms.apis import init_detector
from mmdet_ms.apis.inference import preprocess
from mmdet_ms.apis.runners import RUN_MODES
from mmdet_ms.models.layers import use_compiled_inference_form
from parity_checks import (check_category_scores_and_kernels, check_final_instances,
                           check_mask_feature, check_metas, run_outputs,
                           scores_before_points_nms)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def reference():
    return dict(np.load(parity_file("r101_seed0_coffee_infer.npz")))


@pytest.fixture(scope="module")
def outputs_by_mode(r101_ckpt):
    """mode → the port's metas, flat outputs and final result on the fixture image; one model,
    run op by op, compiled, and op by op again in the form the compiled graph uses
    ("pynative_graph_form": GroupNorms in their compiled inference form)."""
    model = init_detector(R101_CONFIG, r101_ckpt, device_target="CPU", mode="pynative")
    batch, img_meta = preprocess(model, parity_file("coffee.jpg"))
    cate_before_nms = scores_before_points_nms(model, batch)  # the same in both modes
    # PyNative before the graph runner
    outputs = {mode: run_outputs(model, mode, batch, img_meta, cate_before_nms)
               for mode in RUN_MODES}
    use_compiled_inference_form(model)  # as the graph runner compiled it
    outputs["pynative_graph_form"] = run_outputs(model, "pynative", batch, img_meta,
                                                 cate_before_nms)
    return outputs


@pytest.fixture(params=RUN_MODES)
def port_outputs(request, outputs_by_mode):
    return outputs_by_mode[request.param]


def test_metas(port_outputs, reference):
    check_metas(port_outputs, reference)


def test_category_scores_and_kernels(port_outputs, reference):
    check_category_scores_and_kernels(port_outputs, reference)


def test_mask_feature(port_outputs, reference):
    check_mask_feature(port_outputs, reference, shape=(256, 200, 304))


def test_final_instances(port_outputs, reference):
    check_final_instances(port_outputs, reference, count=56, image_size=(400, 600))


def test_graph_mode_equals_the_same_network_run_op_by_op(outputs_by_mode):
    """Compiling changes nothing. (Against the default PyNative run, whose GroupNorms use the
    kernel, graph mode agrees as both agree with the original: the tests above.)"""
    pynative, graph = outputs_by_mode["pynative_graph_form"], outputs_by_mode["graph"]
    for key in ("cate", "kernels", "mask_feat"):
        np.testing.assert_allclose(graph[key], pynative[key], rtol=0, atol=1e-5)
    assert len(graph["result"]) == len(pynative["result"])
    np.testing.assert_array_equal(graph["result"].labels, pynative["result"].labels)
    np.testing.assert_allclose(graph["result"].scores, pynative["result"].scores, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(graph["result"].masks, pynative["result"].masks)
