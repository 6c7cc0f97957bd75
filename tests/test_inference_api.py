"""The Python API on odd images (portrait, landscape, tiny, gray, RGBA, a gray PNG, corrupt files),
with a small random-weight light R18 model at a small test scale."""
import os

import cv2
import mindspore as ms
import numpy as np
import pytest

from conftest import REPO
from mmdet_ms.apis import inference_detector, init_detector
from mmdet_ms.core.instances import InstanceResult
from mmdet_ms.datasets import ImageReadError

LIGHT_R18 = os.path.join(REPO, "configs", "solov2", "solov2_light_448_r18_fpn_8gpu_3x.py")
NUM_CLASSES = 4  # 3 classes: small outputs, every label checkable
SMALL_TEST_SCALE = {"data.test.pipeline.1.img_scale": (320, 192),
                    "model.bbox_head.num_classes": NUM_CLASSES}


def small_model(cate_bias):
    """A random-weight light R18 whose category logits are shifted by ``cate_bias``: 0 makes
    every score about 0.5 (plenty of candidates), -30 makes every score 0 (no candidate)."""
    ms.set_seed(0)
    model = init_detector(LIGHT_R18, None, device_target="CPU", cfg_options=SMALL_TEST_SCALE,
                          mode="pynative")  # many input sizes: nothing to compile for each
    bias = model.bbox_head.solo_cate.bias
    bias.set_data(ms.Tensor(np.full(bias.shape, cate_bias, np.float32)))
    return model


@pytest.fixture(scope="module")
def model():
    return small_model(cate_bias=0.0)


def random_image(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def assert_valid_result(result, height, width, num_classes=NUM_CLASSES - 1):
    assert isinstance(result, InstanceResult)
    assert result.masks.dtype == bool and result.masks.shape[1:] == (height, width)
    assert result.labels.dtype == np.int64 and result.scores.dtype == np.float32
    assert result.labels.shape == result.scores.shape == (len(result.masks),)
    assert ((result.labels >= 0) & (result.labels < num_classes)).all()
    assert (np.diff(result.scores) <= 0).all()  # highest score first
    assert ((result.scores > 0) & (result.scores <= 1)).all()


@pytest.mark.parametrize("height, width", [(120, 60), (60, 130), (9, 17), (17, 9), (1, 40)],
                         ids=["portrait", "landscape", "tiny-landscape", "tiny-portrait", "one-row"])
def test_odd_sizes_give_masks_at_the_original_size(model, height, width):
    result = inference_detector(model, random_image((height, width, 3)))
    assert_valid_result(result, height, width)
    assert len(result) > 0
    # A mask may be empty here, as in the original: the area filter runs at stride 4 on the padded
    # input, and the mask may lie in the padding cropped away afterwards.
    assert result.masks.any()


def test_gray_2d_array_is_read_as_gray_in_every_channel(model):
    gray = random_image((50, 40), seed=1)
    result = inference_detector(model, gray)
    assert_valid_result(result, 50, 40)
    as_bgr = inference_detector(model, np.repeat(gray[:, :, None], 3, axis=2))
    np.testing.assert_array_equal(result.masks, as_bgr.masks)
    np.testing.assert_array_equal(result.labels, as_bgr.labels)
    np.testing.assert_array_equal(result.scores, as_bgr.scores)


def test_rgba_array_drops_alpha(model):
    bgra = random_image((40, 50, 4), seed=2)
    result = inference_detector(model, bgra)
    assert_valid_result(result, 40, 50)
    without_alpha = inference_detector(model, np.ascontiguousarray(bgra[:, :, :3]))
    np.testing.assert_array_equal(result.masks, without_alpha.masks)
    np.testing.assert_array_equal(result.scores, without_alpha.scores)


def test_gray_png_path_equals_the_gray_array(model, tmp_path):
    gray = random_image((33, 70), seed=3)
    path = tmp_path / "gray.png"
    assert cv2.imwrite(str(path), gray)
    from_file = inference_detector(model, str(path))
    assert_valid_result(from_file, 33, 70)
    from_array = inference_detector(model, gray)
    np.testing.assert_array_equal(from_file.masks, from_array.masks)
    np.testing.assert_array_equal(from_file.scores, from_array.scores)


def test_a_list_of_images_gives_a_list_of_results(model, tmp_path):
    path = tmp_path / "color.jpg"
    assert cv2.imwrite(str(path), random_image((64, 48, 3), seed=4))
    results = inference_detector(model, [random_image((30, 90, 3)), str(path)])
    assert isinstance(results, list) and len(results) == 2
    assert_valid_result(results[0], 30, 90)
    assert_valid_result(results[1], 64, 48)


def test_no_candidate_gives_an_empty_result_of_the_image_size():
    result = inference_detector(small_model(cate_bias=-30.0), random_image((45, 70, 3)))
    assert len(result) == 0
    assert result.masks.shape == (0, 45, 70) and result.masks.dtype == bool
    assert result.labels.shape == (0,) and result.labels.dtype == np.int64
    assert result.scores.shape == (0,) and result.scores.dtype == np.float32


def test_a_corrupt_image_file_is_named(model, tmp_path):
    path = tmp_path / "broken.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    with pytest.raises(ImageReadError, match="broken.jpg"):
        inference_detector(model, str(path))


def test_a_missing_image_file_is_named(model, tmp_path):
    with pytest.raises(ImageReadError, match="absent.png"):
        inference_detector(model, str(tmp_path / "absent.png"))


@pytest.mark.parametrize("shape", [(0, 10, 3), (10, 10, 2), (4, 5, 6, 3)])
def test_arrays_that_are_not_images_are_refused(model, shape):
    with pytest.raises(ValueError, match="image array"):
        inference_detector(model, np.zeros(shape, np.uint8))


def test_the_model_knows_its_class_count(model):
    assert len(model.CLASSES) == NUM_CLASSES - 1
    assert model.bbox_head.solo_cate.out_channels == NUM_CLASSES - 1
