"""run.py and valuation.py end to end, and the folder loop behind run.py.

The model runs use the light R18 config with random weights, shrunk to 320x192 inputs, and
thresholds at 0 so that the random network still yields instances to draw, save and score.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import LIGHT_R18_CONFIG, THREE_CLASSES, TINY_MODEL_OPTIONS
from mmdet_ms.core.instances import InstanceResult
from mmdet_ms.evaluation import decode_mask_rle, load_coco_gt, load_results, save_results
from mmdet_ms.apis import loops
from test_evaluation import ground_truth_as_results, result_records, write_tiny_coco

REPO = Path(__file__).resolve().parents[1]
RECORD_KEYS = {"file_name", "category_id", "category_name", "score", "bbox", "segmentation"}


def _run_script(script, *args, cwd):
    """Run a root script in a fresh interpreter; returns the CompletedProcess (text output)."""
    return subprocess.run([sys.executable, str(REPO / script), *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def _summary_lines(stdout):
    return [line for line in stdout.splitlines()
            if line.startswith((" Average Precision", " Average Recall"))]


def _write_image_folder(folder):
    """A colour jpg, a grayscale PNG (upper-case suffix), a corrupt jpg, a text file, and a bmp
    in a sub-folder."""
    rng = np.random.default_rng(0)
    (folder / "sub").mkdir(parents=True)
    cv2.imwrite(str(folder / "b_colour.jpg"), rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    cv2.imwrite(str(folder / "a_gray.PNG"), rng.integers(0, 255, (40, 56), dtype=np.uint8))
    (folder / "c_corrupt.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    (folder / "notes.txt").write_text("not an image")
    cv2.imwrite(str(folder / "sub" / "d_nested.bmp"), rng.integers(0, 255, (32, 32, 3),
                                                                   dtype=np.uint8))


@pytest.fixture(scope="module")
def tiny_coco(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny_coco")
    ann_file, image_dir = write_tiny_coco(folder)
    return ann_file, image_dir


# valuation.py without a model

def test_valuation_rescores_a_results_file(tiny_coco, tmp_path):
    ann_file, _ = tiny_coco
    results, label2cat = ground_truth_as_results(load_coco_gt(ann_file))
    results_file = tmp_path / "results.json"
    save_results(result_records(results, label2cat), results_file)
    completed = _run_script("valuation.py", "--results", results_file, "--ann", ann_file,
                            cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    summary = _summary_lines(completed.stdout)
    assert len(summary) == 24  # 12 numbers for segm, 12 for bbox
    assert summary[0].endswith("= 1.000") and summary[12].endswith("= 1.000")
    assert "animal fish" in completed.stdout
    assert completed.stdout.splitlines()[-1] == "segm AP 1.000 | bbox AP 1.000"


@pytest.mark.parametrize("iou_type", ["proposal", "proposal_fast", "keypoints"])
def test_valuation_refuses_types_solov2_cannot_score(tiny_coco, tmp_path, iou_type):
    ann_file, _ = tiny_coco
    completed = _run_script("valuation.py", "--results", tmp_path / "unused.json", "--ann",
                            ann_file, "--eval", "segm", iou_type, cwd=tmp_path)
    assert completed.returncode == 2
    assert "SOLOv2 predicts no proposals or keypoints" in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1


def test_valuation_missing_checkpoint_is_one_line(tmp_path):
    completed = _run_script("valuation.py", LIGHT_R18_CONFIG, tmp_path / "missing.ckpt",
                            cwd=tmp_path)
    assert completed.returncode == 2
    assert completed.stderr.strip() == f"error: checkpoint not found: {tmp_path / 'missing.ckpt'}"


# the folder loop with a stand-in model

def test_list_images_filters_sorts_and_recurses(tmp_path):
    _write_image_folder(tmp_path / "images")
    images = tmp_path / "images"
    assert loops.list_images(images) == ["a_gray.PNG", "b_colour.jpg", "c_corrupt.jpg"]
    assert loops.list_images(images, recursive=True) == [
        "a_gray.PNG", "b_colour.jpg", "c_corrupt.jpg", os.path.join("sub", "d_nested.bmp")]
    assert loops.list_images(images, recursive=True, exclude_dir=images / "sub") == [
        "a_gray.PNG", "b_colour.jpg", "c_corrupt.jpg"]
    with pytest.raises(FileNotFoundError, match="nowhere"):
        loops.list_images(tmp_path / "nowhere")


def _centre_square_detector(model, image, batch_size=1):
    """Stand-in for inference_detector (one image, or a list of them): one instance of class 1
    on the image's centre."""
    if isinstance(image, list):
        return [_centre_square_detector(model, one) for one in image]
    height, width = image.shape[:2]
    masks = np.zeros((2, height, width), bool)
    masks[0, height // 4:height // 2, width // 4:width // 2] = True
    masks[1, :2, :2] = True
    return InstanceResult(masks=masks, labels=[1, 0], scores=[0.8, 0.1])


def test_run_folder_skips_unreadable_files(tmp_path, monkeypatch):
    images, out = tmp_path / "images", tmp_path / "out"
    _write_image_folder(images)
    monkeypatch.setattr(loops, "inference_detector", _centre_square_detector)
    logged = []
    summary = loops.run_folder(None, images, out, ("cat", "dog"), [1, 3],
                                        score_thr=0.3, recursive=True, log=logged.append)
    assert (summary.images, summary.detections, summary.skipped) == (3, 3, ["c_corrupt.jpg"])
    assert str(summary).startswith("3 images, 3 detections, 1 skipped, ")
    assert len(logged) == 1 and "c_corrupt.jpg" in logged[0]
    assert cv2.imread(str(out / "a_gray.PNG")).shape == (40, 56, 3)
    assert cv2.imread(str(out / "sub" / "d_nested.bmp")).shape == (32, 32, 3)
    assert not (out / "c_corrupt.jpg").exists()
    records = json.loads((out / "results.json").read_text())
    assert [r["file_name"] for r in records] == ["a_gray.PNG", "b_colour.jpg", "sub/d_nested.bmp"]
    assert all(set(r) == RECORD_KEYS for r in records)
    assert {(r["category_id"], r["category_name"]) for r in records} == {(3, "dog")}
    assert records[1]["bbox"] == [16.0, 12.0, 16.0, 12.0]  # the 64x48 image's centre square
    assert decode_mask_rle(records[1]["segmentation"]).shape == (48, 64)


def test_run_folder_refuses_to_overwrite_its_input(tmp_path):
    with pytest.raises(ValueError, match="overwrite"):
        loops.run_folder(None, tmp_path, tmp_path, ("cat",), [1])


def test_folder_category_ids():
    class Dataset:
        CLASSES = ("rov", "fish")
        label2cat = {0: 4, 1: 9}

    assert loops.folder_category_ids(("rov", "fish"), Dataset()) == [4, 9]
    assert loops.folder_category_ids(("a", "b"), Dataset()) == [1, 2]
    assert loops.folder_category_ids(("a", "b", "c")) == [1, 2, 3]


# the real network (random light R18)

def test_run_py_on_a_folder(r18_checkpoint, tmp_path):
    images, out = tmp_path / "images", tmp_path / "drawn"
    _write_image_folder(images)
    completed = _run_script("run.py", LIGHT_R18_CONFIG, r18_checkpoint, images, "--out", out,
                            "--score-thr", "0", "--recursive", "--device_target", "CPU",
                            "--cfg-options", *TINY_MODEL_OPTIONS, *THREE_CLASSES, cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    skipped = [line for line in completed.stderr.splitlines() if line.startswith("skipped:")]
    assert len(skipped) == 1 and "c_corrupt.jpg" in skipped[0]
    assert "3 images, 300 detections, 1 skipped" in completed.stdout  # max_per_img = 100
    for name, shape in (("a_gray.PNG", (40, 56, 3)), ("b_colour.jpg", (48, 64, 3)),
                        ("sub/d_nested.bmp", (32, 32, 3))):
        assert cv2.imread(str(out / name)).shape == shape
    records = load_results(out / "results.json")
    assert len(records) == 300 and all(set(r) == RECORD_KEYS for r in records)
    assert {r["category_id"] for r in records} <= {1, 2, 3}


def test_run_py_missing_image_folder(r18_checkpoint, tmp_path):
    completed = _run_script("run.py", LIGHT_R18_CONFIG, r18_checkpoint, tmp_path / "nowhere",
                            cwd=tmp_path)
    assert completed.returncode == 2
    assert completed.stderr.strip() == f"error: image folder not found: {tmp_path / 'nowhere'}"


def test_valuation_runs_the_model_end_to_end(tiny_coco, r18_checkpoint, tmp_path):
    ann_file, image_dir = tiny_coco
    completed = _run_script(
        "valuation.py", "--config", LIGHT_R18_CONFIG, "--checkpoint", r18_checkpoint,
        "--ann", ann_file, "--img-dir", image_dir, "--out", tmp_path / "results.pkl",
        "--show-dir", tmp_path / "show", "--device_target", "CPU",
        "--cfg-options", *TINY_MODEL_OPTIONS, *THREE_CLASSES, cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert len(_summary_lines(completed.stdout)) == 24
    records = load_results(tmp_path / "results.pkl")
    assert len(records) == 300  # 3 images x max_per_img, the empty-annotation image included
    assert {r["image_id"] for r in records} == {1, 2, 3}
    assert {r["category_id"] for r in records} <= {1, 3, 7}
    assert sorted(p.name for p in (tmp_path / "show").iterdir()) == [
        "img_a.jpg", "img_b.png", "img_c.jpg"]


def test_valuation_explains_the_class_count(tiny_coco, r18_checkpoint, tmp_path):
    ann_file, image_dir = tiny_coco
    completed = _run_script("valuation.py", LIGHT_R18_CONFIG, r18_checkpoint, "--ann", ann_file,
                            "--img-dir", image_dir, cwd=tmp_path)
    assert completed.returncode == 2
    message = completed.stderr.strip()
    assert len(message.splitlines()) == 1
    assert "counts the background" in message
    assert "model.bbox_head.num_classes=4" in message
