"""COCO result records, their files, and COCO AP (mmdet_ms.evaluation)."""
import contextlib
import io
import json

import cv2
import numpy as np
import pycocotools.mask as mask_util
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from mmdet_ms.core.instances import InstanceResult
from mmdet_ms.evaluation import (METRIC_NAMES, decode_mask_rle, encode_mask_rle, evaluate_coco,
                                 instances_to_coco, load_coco_gt, load_results, save_results)

IMAGE_WIDTH, IMAGE_HEIGHT = 64, 48
CATEGORIES = [{"id": 1, "name": "rov"}, {"id": 3, "name": "animal fish"},
              {"id": 7, "name": "trash_bottle"}]


def _polygon_segmentation(points):
    return [[float(coord) for point in points for coord in point]]


def _ellipse_mask(center, axes):
    mask = np.zeros((IMAGE_HEIGHT, IMAGE_WIDTH), np.uint8)
    cv2.ellipse(mask, center, axes, 0, 0, 360, 1, -1)
    return mask


def _compressed_rle(mask):
    rle = mask_util.encode(np.asfortranarray(mask[:, :, None]))[0]
    return {"size": [IMAGE_HEIGHT, IMAGE_WIDTH], "counts": rle["counts"].decode("ascii")}


def _uncompressed_rle(mask):
    """COCO's list-of-counts RLE (column-major runs, starting with a run of zeros)."""
    flat = mask.flatten(order="F")
    change_points = np.flatnonzero(np.diff(flat)) + 1
    boundaries = np.concatenate([[0], change_points, [flat.size]])
    counts = np.diff(boundaries).tolist()
    if flat[0] == 1:
        counts = [0] + counts
    return {"size": [IMAGE_HEIGHT, IMAGE_WIDTH], "counts": counts}


def _image_annotations():
    """{file name: [(category id, segmentation)]}: polygons and both RLE kinds, ids 1, 3, 7."""
    return {
        "img_a.jpg": [
            (1, _polygon_segmentation([(2, 2), (40, 2), (40, 38), (2, 38)])),  # medium area
            (3, _compressed_rle(_ellipse_mask((46, 30), (12, 9)))),
        ],
        "img_b.png": [
            (7, _polygon_segmentation([(10, 40), (32, 6), (54, 40)])),
            (3, _uncompressed_rle(_ellipse_mask((12, 12), (5, 4)))),
            (1, _compressed_rle(_ellipse_mask((50, 10), (9, 6)))),
        ],
        "img_c.jpg": [],  # an image without any instance
    }


def write_tiny_coco(folder):
    """A small COCO data set in ``folder``: images 64x48 and ``annotations.json``.

    Each annotation's bbox and area are those of its rasterised mask, so ground truth fed back
    as predictions scores AP 1. Returns (annotation file path, image folder path).
    """
    image_dir = folder / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    rng = np.random.default_rng(0)
    for image_id, (file_name, instances) in enumerate(_image_annotations().items(), start=1):
        pixels = rng.integers(0, 255, (IMAGE_HEIGHT, IMAGE_WIDTH, 3), dtype=np.uint8)
        cv2.imwrite(str(image_dir / file_name), pixels)
        images.append({"id": image_id, "file_name": file_name,
                       "width": IMAGE_WIDTH, "height": IMAGE_HEIGHT})
        for category_id, segmentation in instances:
            if isinstance(segmentation, list):
                rle = mask_util.merge(mask_util.frPyObjects(segmentation, IMAGE_HEIGHT,
                                                            IMAGE_WIDTH))
            elif isinstance(segmentation["counts"], list):
                rle = mask_util.frPyObjects(segmentation, IMAGE_HEIGHT, IMAGE_WIDTH)
            else:
                rle = dict(segmentation, counts=segmentation["counts"].encode("ascii"))
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": category_id,
                "segmentation": segmentation, "iscrowd": 0,
                "area": float(mask_util.area(rle)), "bbox": mask_util.toBbox(rle).tolist()})
    ann_file = folder / "annotations.json"
    ann_file.write_text(json.dumps({"images": images, "annotations": annotations,
                                    "categories": CATEGORIES}))
    return ann_file, image_dir


def ground_truth_as_results(coco):
    """Each ground-truth instance as an InstanceResult per image (score 1), with label2cat."""
    cat_ids = sorted(coco.getCatIds())
    cat2label = {cat_id: label for label, cat_id in enumerate(cat_ids)}
    results = {}
    for image_id in coco.getImgIds():
        info = coco.loadImgs(image_id)[0]
        anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id))
        if not anns:
            results[image_id] = InstanceResult.empty(info["height"], info["width"])
            continue
        results[image_id] = InstanceResult(
            masks=np.stack([coco.annToMask(ann) for ann in anns]),
            labels=[cat2label[ann["category_id"]] for ann in anns],
            scores=np.ones(len(anns), np.float32))
    return results, cat_ids


def result_records(results, label2cat):
    return [record for image_id, result in results.items()
            for record in instances_to_coco(result, image_id, label2cat)]


@pytest.fixture
def tiny_coco(tmp_path):
    ann_file, _ = write_tiny_coco(tmp_path)
    return load_coco_gt(ann_file), ann_file


def test_rle_round_trip_is_json_safe():
    rng = np.random.default_rng(1)
    mask = rng.random((13, 17)) > 0.6
    rle = encode_mask_rle(mask)
    assert isinstance(rle["counts"], str) and rle["size"] == [13, 17]
    decoded = decode_mask_rle(json.loads(json.dumps(rle)))
    np.testing.assert_array_equal(decoded, mask)
    with pytest.raises(ValueError, match="shape"):
        encode_mask_rle(np.zeros((2, 3, 4), bool))


def test_instances_to_coco_schema_and_box_from_mask():
    masks = np.zeros((2, 10, 12), bool)
    masks[0, 2:5, 3:9] = True     # rows 2..4, columns 3..8
    masks[1, 7, 11] = True
    result = InstanceResult(masks=masks, labels=[2, 0], scores=[0.9, 0.4])
    records = instances_to_coco(result, image_id=5, label2cat=[1, 3, 7])
    assert [set(r) for r in records] == [{"image_id", "category_id", "score", "segmentation",
                                         "bbox"}] * 2
    assert records[0]["category_id"] == 7 and records[1]["category_id"] == 1
    assert records[0]["bbox"] == [3.0, 2.0, 6.0, 3.0]
    assert records[1]["bbox"] == [11.0, 7.0, 1.0, 1.0]
    assert records[0]["score"] == pytest.approx(0.9)
    json.dumps(records)  # every value is JSON-serialisable
    np.testing.assert_array_equal(decode_mask_rle(records[0]["segmentation"]), masks[0])
    assert instances_to_coco(InstanceResult.empty(10, 12), 5, [1, 3, 7]) == []


@pytest.mark.parametrize("suffix", [".json", ".pkl"])
def test_save_and_load_results(tmp_path, suffix):
    records = [{"image_id": 1, "category_id": 3, "score": 0.5, "bbox": [1.0, 2.0, 3.0, 4.0],
                "segmentation": encode_mask_rle(np.eye(4, dtype=bool))}]
    path = tmp_path / "sub" / f"results{suffix}"
    save_results(records, path)
    assert load_results(path) == records
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
    if suffix == ".json":
        assert json.loads(path.read_text()) == records


def test_results_file_errors(tmp_path):
    with pytest.raises(ValueError, match=r"\.json or \.pkl"):
        save_results([], tmp_path / "results.txt")
    with pytest.raises(FileNotFoundError, match="missing.json"):
        load_results(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("[{")
    with pytest.raises(ValueError, match="broken.json"):
        load_results(broken)


def test_ground_truth_as_predictions_scores_ap_one(tiny_coco):
    coco, _ = tiny_coco
    results, label2cat = ground_truth_as_results(coco)
    records = result_records(results, label2cat)
    assert len(records) == 5
    logged = []
    metrics = evaluate_coco(coco, records, log=logged.append)
    for iou_type in ("segm", "bbox"):
        assert metrics[iou_type]["AP"] == pytest.approx(1.0)
        assert metrics[iou_type]["AP50"] == pytest.approx(1.0)
        assert metrics[iou_type]["AR100"] == pytest.approx(1.0)
        assert set(metrics[iou_type]) == set(METRIC_NAMES)
        assert metrics[f"{iou_type}_per_class"] == pytest.approx(
            {"rov": 1.0, "animal fish": 1.0, "trash_bottle": 1.0})
    text = "\n".join(logged)
    assert text.count("Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all") == 2
    assert "animal fish" in text and "trash_bottle" in text


def _perturbed_records(coco):
    """Ground truth shifted, rescored and partly mislabelled: an AP strictly between 0 and 1."""
    results, label2cat = ground_truth_as_results(coco)
    rng = np.random.default_rng(3)
    records = []
    for image_id, result in results.items():
        if not len(result):
            continue
        masks = np.roll(result.masks, shift=(1, 2), axis=(1, 2))
        labels = result.labels.copy()
        labels[0] = (labels[0] + 1) % len(label2cat)
        shifted = InstanceResult(masks=masks, labels=labels,
                                 scores=rng.uniform(0.2, 1.0, len(result)).astype(np.float32))
        records += instances_to_coco(shifted, image_id, label2cat)
    return records


def _direct_cocoeval_stats(ann_file, records, iou_type):
    """pycocotools alone; segm records without 'bbox' so loadRes takes the area from the mask."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(ann_file))
        if iou_type == "segm":
            records = [{k: v for k, v in r.items() if k != "bbox"} for r in records]
        coco_eval = COCOeval(coco, coco.loadRes(records), iou_type)
        coco_eval.params.imgIds = sorted(coco.getImgIds())
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    return coco_eval.stats.tolist()


def test_metrics_equal_direct_pycocotools_run(tiny_coco, tmp_path):
    coco, ann_file = tiny_coco
    results_file = tmp_path / "results.json"
    save_results(_perturbed_records(coco), results_file)
    metrics = evaluate_coco(coco, load_results(results_file), log=lambda text: None)
    for iou_type in ("segm", "bbox"):
        expected = _direct_cocoeval_stats(ann_file, load_results(results_file), iou_type)
        assert [metrics[iou_type][name] for name in METRIC_NAMES] == pytest.approx(expected)
        assert 0.0 < metrics[iou_type]["AP"] < 1.0


def test_only_the_images_that_were_run_are_scored(tiny_coco):
    coco, _ = tiny_coco
    results, label2cat = ground_truth_as_results(coco)
    records = result_records({1: results[1]}, label2cat)
    quiet = dict(log=lambda text: None, classwise=False)
    assert evaluate_coco(coco, records, img_ids=[1], **quiet)["segm"]["AP"] == pytest.approx(1.0)
    # Scored over every image, the instances of image 2 are missed.
    assert evaluate_coco(coco, records, **quiet)["segm"]["AP"] < 1.0


def test_empty_results_give_zeros_with_a_warning(tiny_coco):
    coco, _ = tiny_coco
    logged = []
    metrics = evaluate_coco(coco, [], log=logged.append)
    for iou_type in ("segm", "bbox"):
        assert metrics[iou_type] == {name: 0.0 for name in METRIC_NAMES}
        assert metrics[f"{iou_type}_per_class"] == {"rov": 0.0, "animal fish": 0.0,
                                                    "trash_bottle": 0.0}
    text = "\n".join(logged)
    assert "WARNING: no results" in text
    assert text.count(" = 0.000") == 24


@pytest.mark.parametrize("iou_type", ["proposal", "proposal_fast", "keypoints"])
def test_refused_iou_types(tiny_coco, iou_type):
    coco, _ = tiny_coco
    with pytest.raises(ValueError, match="SOLOv2 predicts no proposals or keypoints"):
        evaluate_coco(coco, [], iou_types=("segm", iou_type))


def test_unknown_iou_type_and_foreign_ids(tiny_coco):
    coco, _ = tiny_coco
    with pytest.raises(ValueError, match="unknown evaluation type 'mask'"):
        evaluate_coco(coco, [], iou_types=["mask"])
    record = {"image_id": 99, "category_id": 1, "score": 1.0, "bbox": [0, 0, 1, 1],
              "segmentation": encode_mask_rle(np.ones((48, 64), bool))}
    with pytest.raises(ValueError, match="image_id 99"):
        evaluate_coco(coco, [record])
    with pytest.raises(ValueError, match="category_id 2"):
        evaluate_coco(coco, [dict(record, image_id=1, category_id=2)])
