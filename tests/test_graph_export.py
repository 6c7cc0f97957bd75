"""Graph-mode inference, MindIR export and batch inference, on a small random-weight light R18
(test scale 320x192) whose category bias is 0 so that it yields instances to compare."""
import importlib.util
import os

import cv2
import mindspore as ms
import mindspore.nn as nn
import numpy as np
import pytest

from conftest import R101_CONFIG, REPO
from mmdet_ms.apis import inference_detector, init_detector, init_mindir_detector
from mmdet_ms.apis.inference import preprocess, run_network
from mmdet_ms.apis.mindir import default_export_size, export_mindir, pad_batch, read_mindir_info
from mmdet_ms.apis.runners import build_runner
from mmdet_ms.config import Config

LIGHT_R18 = os.path.join(REPO, "configs", "solov2", "solov2_light_448_r18_fpn_8gpu_3x.py")
SMALL = {"data.test.pipeline.1.img_scale": (320, 192), "model.bbox_head.num_classes": 4}
SMALL_OPTIONS = ["data.test.pipeline.1.img_scale=(320,192)", "model.bbox_head.num_classes=4"]
EXPORT_SIZE = (192, 320)  # the padded input of a landscape image at test scale (320, 192)


def random_image(height, width, seed):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


# 150x230 and 140x250 resize to 192x294 and 179x320: both pad to 192x320, the export size;
# 150x150 pads to 192x192.
WIDE_A, WIDE_B, SQUARE = random_image(150, 230, 0), random_image(140, 250, 1), random_image(150, 150, 2)


def load_script(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def model():
    ms.set_seed(0)
    model = init_detector(LIGHT_R18, None, device_target="CPU", cfg_options=SMALL,
                          mode="pynative")  # the reference the graph runner is compared with
    bias = model.bbox_head.solo_cate.bias
    bias.set_data(ms.Tensor(np.zeros(bias.shape, np.float32)))
    return model


@pytest.fixture(scope="module")
def checkpoint(model, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("checkpoint") / "r18.ckpt")
    ms.save_checkpoint(model, path)
    return path


@pytest.fixture(scope="module")
def mindir_file(checkpoint, tmp_path_factory):
    """The model exported by tools/export.py at the padded size of a WIDE_A-sized image."""
    folder = tmp_path_factory.mktemp("mindir")
    out, like_image = str(folder / "r18.mindir"), str(folder / "wide.png")
    cv2.imwrite(like_image, WIDE_A)
    export_script = load_script("export_script", os.path.join(REPO, "tools", "export.py"))
    assert export_script.main(["--config", LIGHT_R18, "--checkpoint", checkpoint, "--out", out,
                               "--size-of", like_image, "--device_target", "CPU",
                               "--cfg-options", *SMALL_OPTIONS]) == 0
    return out


def assert_same_result(actual, expected, score_atol=1e-6):
    assert len(actual) == len(expected) > 0
    np.testing.assert_array_equal(actual.labels, expected.labels)
    np.testing.assert_allclose(actual.scores, expected.scores, rtol=0, atol=score_atol)
    np.testing.assert_array_equal(actual.masks, expected.masks)


def run_with(model, runner, image):
    batch, img_meta = preprocess(model, image)
    return model.postprocess(*runner(batch), [img_meta])[0]


# graph mode

def test_graph_runner_equals_pynative_at_each_input_size(model):
    graph = build_runner(model, "graph")
    for image in (WIDE_A, SQUARE, WIDE_B):
        batch, img_meta = preprocess(model, image)
        graph_outputs, pynative_outputs = graph(batch), run_network(model, batch)
        for graph_output, pynative_output in zip(graph_outputs, pynative_outputs):
            np.testing.assert_allclose(graph_output, pynative_output, rtol=0, atol=1e-6)
        assert_same_result(model.postprocess(*graph_outputs, [img_meta])[0],
                           model.postprocess(*pynative_outputs, [img_meta])[0])
    assert graph.compiled_shapes == {(1, 3, 192, 320), (1, 3, 192, 192)}
    with pytest.raises(ValueError, match="mode must be one of pynative, graph"):
        build_runner(model, "eager")


def test_padding_beyond_the_32_multiple_changes_the_outputs(model):
    """Why inputs are not bucketed: the head resizes the whole padded map to each grid and its
    coordinate channels span the padded map, so extra zeros change the scores."""
    batch, _ = preprocess(model, SQUARE)  # (1, 3, 192, 192)
    exact = run_network(model, batch)
    padded = run_network(model, pad_batch(batch, EXPORT_SIZE))
    assert np.abs(padded[0] - exact[0]).max() > 1e-3  # cate scores
    assert padded[2].shape[2:] == (48, 80) and exact[2].shape[2:] == (48, 48)


# MindIR

def test_mindir_equals_the_python_model_at_the_export_size(model, mindir_file):
    deployed = init_mindir_detector(LIGHT_R18, mindir_file, "CPU", SMALL)
    assert deployed.CLASSES == model.CLASSES
    assert_same_result(inference_detector(deployed, WIDE_A), inference_detector(model, WIDE_A))


def test_mindir_pads_a_smaller_input_as_the_python_model_on_that_padding(model, mindir_file):
    deployed = init_mindir_detector(LIGHT_R18, mindir_file, "CPU", SMALL)
    batch, img_meta = preprocess(model, SQUARE)
    on_padded_input = model.postprocess(*run_network(model, pad_batch(batch, EXPORT_SIZE)),
                                        [img_meta])[0]
    result = inference_detector(deployed, SQUARE)
    assert result.masks.shape[1:] == SQUARE.shape[:2]
    assert_same_result(result, on_padded_input)


def test_mindir_info_and_refusals(mindir_file, tmp_path):
    info = read_mindir_info(mindir_file)
    assert info["input_shape"] == [1, 3, 192, 320]
    assert info["num_grids"] == [40, 36, 24, 16, 12] and len(info["classes"]) == 3
    deployed = init_mindir_detector(LIGHT_R18, mindir_file, "CPU", SMALL)
    with pytest.raises(ValueError, match="does not fit the MindIR's 192x320"):
        inference_detector(deployed, random_image(200, 100, 3))  # portrait: pads to 320x160
    with pytest.raises(FileNotFoundError, match="no such MindIR file"):
        init_mindir_detector(LIGHT_R18, str(tmp_path / "missing.mindir"), "CPU", SMALL)
    foreign = str(tmp_path / "conv.mindir")
    ms.export(nn.Conv2d(1, 1, 3), ms.Tensor(np.zeros((1, 1, 8, 8), np.float32)),
              file_name=foreign, file_format="MINDIR")
    with pytest.raises(ValueError, match="no SOLOv2 export info"):
        read_mindir_info(foreign)
    with pytest.raises(ValueError, match="must end with .mindir"):
        export_mindir(None, str(tmp_path / "model.onnx"), EXPORT_SIZE)


def test_default_export_size_is_the_padded_test_scale():
    assert default_export_size(Config.fromfile(R101_CONFIG)) == (800, 1344)
    assert default_export_size(Config.fromfile(LIGHT_R18)) == (448, 768)


def test_test_script_runs_a_mindir_and_export_refuses_a_bad_size(checkpoint, mindir_file,
                                                                  tmp_path, capsys):
    image_path = str(tmp_path / "square.jpg")
    cv2.imwrite(image_path, SQUARE)
    test_script = load_script("test_script", os.path.join(REPO, "test.py"))
    assert test_script.main(["--config", LIGHT_R18, "--mindir", mindir_file, "--dataroot",
                             image_path, "--out", str(tmp_path / "drawn.jpg"),
                             "--device_target", "CPU", "--cfg-options", *SMALL_OPTIONS]) == 0
    printed = capsys.readouterr().out
    assert "note: input padded from 192x192 to the MindIR's 192x320" in printed
    assert os.path.isfile(tmp_path / "drawn.jpg")
    export_script = load_script("export_script", os.path.join(REPO, "tools", "export.py"))
    assert export_script.main(["--config", LIGHT_R18, "--checkpoint", checkpoint, "--out",
                               str(tmp_path / "bad.mindir"), "--size", "190", "320",
                               "--cfg-options", *SMALL_OPTIONS]) == 2
    assert "multiples of 32" in capsys.readouterr().err


# batches

def assert_matching_instances(actual, expected):
    """The parity tolerances: same count; each expected instance has one with its label, a mask
    IoU >= 0.99 and a score within 1e-3 (a pixel at the mask threshold may flip)."""
    assert len(actual) == len(expected) > 0
    unmatched = set(range(len(actual)))
    for label, score, mask in zip(expected.labels, expected.scores, expected.masks):
        match = next((i for i in sorted(unmatched)
                      if actual.labels[i] == label and abs(actual.scores[i] - score) <= 1e-3
                      and (actual.masks[i] & mask).sum() >= 0.99 * (actual.masks[i] | mask).sum()),
                     None)
        assert match is not None, f"no match for label {label} score {score}"
        unmatched.remove(match)


def test_batch_of_two_equals_two_singles(model):
    """Batched convolutions may sum in another order: the network outputs agree to float32
    rounding, and the instances within the parity tolerances."""
    inputs = [preprocess(model, image)[0] for image in (WIDE_A, WIDE_B)]
    batched_outputs = run_network(model, np.concatenate(inputs))
    for index, one_input in enumerate(inputs):
        for batched, single in zip(batched_outputs, run_network(model, one_input)):
            np.testing.assert_allclose(batched[index], single[0], rtol=0, atol=1e-5)
    singles = [inference_detector(model, image) for image in (WIDE_A, WIDE_B)]
    batched = inference_detector(model, [WIDE_A, WIDE_B], batch_size=2)
    for result, single in zip(batched, singles):
        assert_matching_instances(result, single)


def test_batch_groups_images_by_padded_size_and_keeps_their_order(model, monkeypatch):
    batch_shapes = []
    runner = model.network_runner

    def recording_runner(batch):
        batch_shapes.append(batch.shape)
        return runner(batch)

    monkeypatch.setattr(model, "network_runner", recording_runner)
    images = [WIDE_A, SQUARE, WIDE_B]
    results = inference_detector(model, images, batch_size=3)
    assert batch_shapes == [(2, 3, 192, 320), (1, 3, 192, 192)]
    assert [r.masks.shape[1:] for r in results] == [(150, 230), (150, 150), (140, 250)]
    assert_same_result(results[1], inference_detector(model, SQUARE))
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        inference_detector(model, images, batch_size=0)
