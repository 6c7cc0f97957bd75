"""Pipeline transforms: loading, resize, flip, pad, formatting, and parity with the original."""
import os

import cv2
import numpy as np
import pycocotools.mask as mask_utils
import pytest

import mmdet_ms  # noqa: F401
from conftest import PARITY_DIR
from mmdet_ms.datasets import CocoDataset
from mmdet_ms.datasets.transforms import (Collect, Compose, ImageReadError, LoadAnnotations, LoadImage,
                                          LoadImageFromFile, MultiScaleFlipAug, Normalize, Pad, RandomFlip,
                                          Resize, ann_to_mask)
from mmdet_ms.registry import ConfigError

IMG_NORM_CFG = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)


def _test_pipeline(img_scale):
    """The test pipeline of every configs/solov2 config of the original, with its scale."""
    return [
        dict(type="LoadImageFromFile"),
        dict(type="MultiScaleFlipAug", img_scale=img_scale, flip=False, transforms=[
            dict(type="Resize", keep_ratio=True),
            dict(type="RandomFlip"),
            dict(type="Normalize", **IMG_NORM_CFG),
            dict(type="Pad", size_divisor=32),
            dict(type="ImageToTensor", keys=["img"]),
            dict(type="Collect", keys=["img"]),
        ]),
    ]


def _single_scale_train_pipeline(flip_ratio):
    return [
        dict(type="LoadImageFromFile"),
        dict(type="LoadAnnotations", with_bbox=True, with_mask=True),
        dict(type="Resize", img_scale=(1333, 800), multiscale_mode="value", keep_ratio=True),
        dict(type="RandomFlip", flip_ratio=flip_ratio),
        dict(type="Normalize", **IMG_NORM_CFG),
        dict(type="Pad", size_divisor=32),
        dict(type="DefaultFormatBundle"),
        dict(type="Collect", keys=["img", "gt_bboxes", "gt_labels", "gt_masks"]),
    ]


def _file_results(path):
    return dict(img_info=dict(filename=os.path.basename(path)), img_prefix=os.path.dirname(path))


# ---------------------------------------------------------------- parity with the original


def test_test_pipeline_metas_match_original():
    results = Compose(_test_pipeline((1333, 800)))(_file_results(os.path.join(PARITY_DIR, "coffee.jpg")))
    reference = np.load(os.path.join(PARITY_DIR, "r101_seed0_coffee_infer.npz"))
    meta = results["img_meta"]
    assert meta["img_shape"] == (800, 1200, 3)
    assert meta["pad_shape"] == (800, 1216, 3)
    for key in ("ori_shape", "img_shape", "pad_shape"):
        assert isinstance(meta[key], tuple)
        np.testing.assert_array_equal(np.asarray(meta[key]), reference[key])
    assert isinstance(meta["scale_factor"], float)
    assert meta["scale_factor"] == float(reference["scale_factor"])
    assert meta["flip"] is False
    assert results["img"].shape == (3, 800, 1216) and results["img"].dtype == np.float32


def test_train_pipeline_matches_original_input_and_targets():
    dataset = CocoDataset(os.path.join(PARITY_DIR, "coffee_ann.json"), _single_scale_train_pipeline(0.0),
                          img_prefix=PARITY_DIR)
    data = dataset[0]
    reference = np.load(os.path.join(PARITY_DIR, "r101_seed0_coffee_loss.npz"))
    assert data["img"].shape == reference["input"].shape[1:]
    assert np.abs(data["img"] - reference["input"][0]).max() <= 1e-4
    assert np.abs(data["gt_bboxes"] - reference["gt_boxes"]).max() <= 1e-3
    np.testing.assert_array_equal(data["gt_labels"], reference["gt_labels"] - 1)
    reference_masks = np.unpackbits(reference["gt_masks_packed"], axis=-1)[..., :1216]
    assert data["gt_masks"].shape == reference_masks.shape == (5, 800, 1216)
    np.testing.assert_array_equal(data["gt_masks"], reference_masks)


@pytest.mark.parametrize("img_scale, img_shape, pad_shape", [
    ((1333, 800), (800, 1200, 3), (800, 1216, 3)),   # solov2_r50/r101/x101 configs
    ((768, 448), (448, 672, 3), (448, 672, 3)),      # solov2_light_448 configs
    ((852, 512), (512, 768, 3), (512, 768, 3)),      # solov2_light_512 config
])
def test_every_config_test_pipeline_runs(img_scale, img_shape, pad_shape):
    results = Compose(_test_pipeline(img_scale))(_file_results(os.path.join(PARITY_DIR, "coffee.jpg")))
    assert results["img_meta"]["img_shape"] == img_shape
    assert results["img_meta"]["pad_shape"] == pad_shape
    assert results["img"].shape == (3,) + pad_shape[:2]


# ---------------------------------------------------------------- loading


def test_gray_and_rgba_png_read_as_three_channels(tmp_path):
    gray = np.arange(12 * 10, dtype=np.uint8).reshape(12, 10)
    cv2.imwrite(str(tmp_path / "gray.png"), gray)
    bgra = np.dstack([np.full((12, 10), value, np.uint8) for value in (10, 20, 30, 40)])
    cv2.imwrite(str(tmp_path / "rgba.png"), bgra)
    load = LoadImageFromFile()
    gray_results = load(_file_results(str(tmp_path / "gray.png")))
    rgba_results = load(_file_results(str(tmp_path / "rgba.png")))
    assert gray_results["img"].shape == (12, 10, 3) and gray_results["img"].dtype == np.uint8
    np.testing.assert_array_equal(gray_results["img"], np.dstack([gray] * 3))
    np.testing.assert_array_equal(rgba_results["img"], bgra[:, :, :3])
    assert rgba_results["ori_shape"] == rgba_results["img_shape"] == (12, 10, 3)


def test_load_image_from_array_converts_like_imread():
    gray = np.arange(6, dtype=np.uint8).reshape(2, 3)
    bgra = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    assert LoadImage()(dict(img=gray))["img"].shape == (2, 3, 3)
    np.testing.assert_array_equal(LoadImage()(dict(img=bgra))["img"], bgra[:, :, :3])
    results = LoadImage()(dict(img=bgra))
    assert results["filename"] is None and results["ori_shape"] == (2, 3, 3)
    with pytest.raises(ValueError, match="shape"):
        LoadImage()(dict(img=np.zeros((2, 3, 5), np.uint8)))


def test_corrupt_and_missing_images_raise_naming_the_file(tmp_path):
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    with pytest.raises(ImageReadError, match="broken.jpg"):
        LoadImageFromFile()(_file_results(str(tmp_path / "broken.jpg")))
    with pytest.raises(ImageReadError, match="absent.jpg"):
        LoadImageFromFile()(_file_results(str(tmp_path / "absent.jpg")))
    assert issubclass(ImageReadError, ValueError)


def test_polygon_compressed_and_uncompressed_rle_give_the_same_mask():
    polygon = [[2.0, 1.0, 9.0, 1.0, 9.0, 6.0, 2.0, 6.0]]
    mask = ann_to_mask(polygon, 8, 12)
    assert mask.shape == (8, 12) and mask.dtype == np.uint8 and mask.sum() > 20
    compressed = mask_utils.encode(np.asfortranarray(mask))
    compressed_str = dict(size=compressed["size"], counts=compressed["counts"].decode("ascii"))
    flat = mask.flatten(order="F")  # uncompressed RLE: run lengths over the column-major pixels
    change = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])) != 0)
    uncompressed = dict(size=[8, 12], counts=np.diff(np.concatenate([[0], change])).tolist())
    for segmentation in (compressed, compressed_str, uncompressed):
        np.testing.assert_array_equal(ann_to_mask(segmentation, 8, 12), mask)


def test_load_annotations_decodes_polygon_and_rle_into_one_array():
    disk = np.zeros((10, 16), np.uint8)
    disk[3:7, 9:14] = 1
    rle = mask_utils.encode(np.asfortranarray(disk))
    ann_info = dict(bboxes=np.array([[1, 1, 5, 5], [9, 3, 13, 6]], np.float32), labels=np.array([0, 2]),
                    bboxes_ignore=np.zeros((0, 4), np.float32),
                    masks=[[[1.0, 1.0, 5.0, 1.0, 5.0, 5.0, 1.0, 5.0]], dict(size=[10, 16], counts=rle["counts"])])
    results = LoadAnnotations()(dict(img_info=dict(height=10, width=16), ann_info=ann_info,
                                     bbox_fields=[], mask_fields=[]))
    assert results["gt_masks"].shape == (2, 10, 16)
    np.testing.assert_array_equal(results["gt_masks"][1], disk)
    assert results["gt_masks"][0, 2:5, 2:5].all() and not results["gt_masks"][0, 7:].any()
    assert results["bbox_fields"] == ["gt_bboxes", "gt_bboxes_ignore"] and results["mask_fields"] == ["gt_masks"]


# ---------------------------------------------------------------- resize, flip, pad


def _image_results(height, width, boxes=None, masks=None):
    results = dict(img=np.zeros((height, width, 3), np.uint8), img_shape=(height, width, 3),
                   bbox_fields=[], mask_fields=[])
    if boxes is not None:
        results["gt_bboxes"] = np.asarray(boxes, np.float32)
        results["bbox_fields"].append("gt_bboxes")
    if masks is not None:
        results["gt_masks"] = np.asarray(masks, np.uint8)
        results["mask_fields"].append("gt_masks")
    return results


def test_keep_ratio_resize_rounds_like_mmcv_and_scales_boxes_by_the_factor():
    masks = np.zeros((1, 333, 500), np.uint8)
    masks[0, 100:200, 50:150] = 1
    results = Resize(img_scale=(1333, 800))(_image_results(333, 500, [[10, 20, 530, 350]], masks))
    factor = min(1333 / 500, 800 / 333)
    expected_shape = (int(333 * factor + 0.5), int(500 * factor + 0.5), 3)
    assert results["img_shape"] == results["img"].shape == expected_shape
    assert results["scale_factor"] == factor
    assert results["gt_masks"].shape == (1,) + expected_shape[:2]
    np.testing.assert_allclose(results["gt_bboxes"][0, :2], np.float32([10, 20]) * np.float32(factor))
    # a corner beyond the image is clipped to its last pixel
    np.testing.assert_array_equal(results["gt_bboxes"][0, 2:], [expected_shape[1] - 1, expected_shape[0] - 1])


def test_half_pixel_sizes_round_up_like_mmcv():
    # 5 x 10 scaled by 2.5 is 12.5 x 25: mmcv's int(x + 0.5) gives 13 where round() would give 12
    assert Resize(img_scale=(25, 25))(_image_results(5, 10))["img_shape"] == (13, 25, 3)


def test_masks_resize_with_nearest():
    masks = np.random.RandomState(0).randint(0, 2, size=(2, 8, 10)).astype(np.uint8)
    results = Resize(img_scale=(15, 12))(_image_results(8, 10, masks=masks))  # x1.5
    rows, cols = (np.arange(12) / 1.5).astype(int), (np.arange(15) / 1.5).astype(int)
    np.testing.assert_array_equal(results["gt_masks"], masks[:, rows][:, :, cols])


def test_multiscale_value_mode_picks_only_listed_scales():
    scales = [(1333, 800), (1333, 768), (1333, 640)]
    resize = Resize(img_scale=scales, multiscale_mode="value")
    np.random.seed(0)
    seen = {resize(_image_results(40, 60))["scale"] for _ in range(40)}
    assert seen == set(scales)


def test_resize_takes_the_scale_from_results_and_needs_one():
    results = _image_results(40, 60)
    results["scale"] = (120, 80)
    assert Resize()(results)["img_shape"] == (80, 120, 3)
    with pytest.raises(ConfigError, match="img_scale"):
        Resize()(_image_results(40, 60))
    with pytest.raises(ConfigError, match="img_scale"):
        Resize(img_scale=[(1333, 800), "big"])


def test_multiscale_flip_aug_is_single_scale_without_flip():
    with pytest.raises(ConfigError, match="test-time augmentation"):
        MultiScaleFlipAug([], img_scale=[(1333, 800), (1333, 640)])
    with pytest.raises(ConfigError, match="test-time augmentation"):
        MultiScaleFlipAug([], img_scale=(1333, 800), flip=True)
    aug = MultiScaleFlipAug([dict(type="Resize", keep_ratio=True), dict(type="RandomFlip", flip_ratio=1.0)],
                            img_scale=[(120, 80)])
    results = aug(_image_results(40, 60))
    assert results["scale"] == (120, 80) and results["flip"] is False and results["img_shape"] == (80, 120, 3)


def test_flip_and_pad_keep_the_mask_on_its_object():
    height, width = 45, 70
    polygon = [[5.0, 8.0, 30.0, 12.0, 12.0, 40.0]]
    mask = ann_to_mask(polygon, height, width)
    img = np.full((height, width, 3), 40, np.uint8)
    img[mask.astype(bool)] = (0, 200, 255)  # paint exactly the annotated pixels
    ys, xs = np.nonzero(mask)
    box = [xs.min(), ys.min(), xs.max(), ys.max()]  # mmdet-1.0 convention: x2 is the last pixel
    results = dict(img=img, img_shape=img.shape, gt_bboxes=np.float32([box]), gt_masks=mask[None],
                   bbox_fields=["gt_bboxes"], mask_fields=["gt_masks"])
    results = Pad(size_divisor=32)(RandomFlip(flip_ratio=1.0)(results))
    assert results["flip"] is True
    assert results["pad_shape"] == (64, 96, 3) and results["gt_masks"].shape == (1, 64, 96)
    object_pixels = np.all(results["img"] == (0, 200, 255), axis=2)
    np.testing.assert_array_equal(results["gt_masks"][0].astype(bool), object_pixels)
    assert object_pixels[:, width // 2:].any() and not object_pixels[:, :width // 3].any()  # moved right
    flipped_ys, flipped_xs = np.nonzero(results["gt_masks"][0])
    np.testing.assert_array_equal(results["gt_bboxes"][0],
                                  [flipped_xs.min(), flipped_ys.min(), flipped_xs.max(), flipped_ys.max()])
    assert not results["img"][height:].any() and not results["img"][:, width:].any()


def test_random_flip_ratio_zero_never_flips_and_none_needs_no_rng():
    results = RandomFlip(flip_ratio=0.0)(_image_results(4, 6))
    assert results["flip"] is False
    state = np.random.get_state()[1].copy()
    assert RandomFlip()(_image_results(4, 6))["flip"] is False
    np.testing.assert_array_equal(np.random.get_state()[1], state)
    with pytest.raises(ConfigError, match="flip_ratio"):
        RandomFlip(flip_ratio=1.5)


def test_pad_without_masks_and_with_empty_masks():
    results = _image_results(33, 64, masks=np.zeros((0, 33, 64)))
    results = Pad(size_divisor=32)(results)
    assert results["img"].shape == (64, 64, 3) and results["gt_masks"].shape == (0, 64, 64)
    with pytest.raises(ConfigError, match="exactly one"):
        Pad()


# ---------------------------------------------------------------- formatting


def test_normalize_converts_to_rgb_and_standardises():
    img = np.zeros((2, 2, 3), np.uint8)
    img[..., 0] = 255  # blue in BGR
    results = Normalize(**IMG_NORM_CFG)(dict(img=img))
    assert results["img"].dtype == np.float32
    np.testing.assert_allclose(results["img"][0, 0], [(0 - 123.675) / 58.395, (0 - 116.28) / 57.12,
                                                      (255 - 103.53) / 57.375], rtol=1e-6)
    assert results["img_norm_cfg"]["to_rgb"] is True


def test_default_format_bundle_and_collect():
    pipeline = Compose([dict(type="DefaultFormatBundle"), dict(type="Collect", keys=["img", "gt_labels"])])
    results = dict(img=np.ones((4, 6, 3), np.float64), gt_labels=[1, 2], filename="a.jpg", ori_shape=(4, 6, 3),
                   img_shape=(4, 6, 3), pad_shape=(4, 6, 3), scale_factor=1.0, flip=False, img_norm_cfg={})
    data = pipeline(results)
    assert set(data) == {"img", "gt_labels", "img_meta"}
    assert data["img"].shape == (3, 4, 6) and data["img"].dtype == np.float32 and data["img"].flags.c_contiguous
    assert data["gt_labels"].dtype == np.int64
    assert data["img_meta"]["filename"] == "a.jpg"
    with pytest.raises(ConfigError, match="gt_masks"):
        Collect(keys=["gt_masks"])(dict(results))


def test_compose_stops_at_none_and_rejects_bad_steps():
    calls = []
    pipeline = Compose([lambda results: None, lambda results: calls.append(1)])
    assert pipeline({}) is None and calls == []
    with pytest.raises(ConfigError, match="Resise"):
        Compose([dict(type="Resise")])
    with pytest.raises(ConfigError, match="list"):
        Compose(dict(type="Resize"))
