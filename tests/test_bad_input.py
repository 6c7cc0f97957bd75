"""Bad input to the scripts and the API, as a hostile user would give it (issue 14): each case
exits with 2 and one line naming the file or option, and changes no file (hashes before and
after), or, where the data can be used (a truncated image in a folder, unusable annotations),
warns and goes on. Scripts run in this process through their ``main(argv)``; the model is the
random-weight light R18 of ``conftest.r18_checkpoint`` on tiny generated images."""
import contextlib
import hashlib
import importlib.util
import io
import json
import os
import stat
import subprocess

import cv2
import numpy as np
import pytest
import torch

from conftest import LIGHT_R18_CONFIG, REPO, THREE_CLASSES, TINY_MODEL_OPTIONS
from mmdet_ms.apis import inference_detector, init_detector
from mmdet_ms.config import parse_cfg_options
from mmdet_ms.datasets import ImageReadError
from mmdet_ms.datasets.synthetic import make_synthetic_coco
from mmdet_ms.evaluation import encode_mask_rle, load_coco_gt, save_results
from mmdet_ms.utils import paths
from mmdet_ms.utils.checkpoint import remove_stale_temporaries, save_checkpoint
from test_evaluation import ground_truth_as_results, result_records, write_tiny_coco
from test_training import QUICKSTART, tiny_options


def load_script(name):
    """A root script as a module (``test.py`` by path: ``import test`` is the standard library's)."""
    spec = importlib.util.spec_from_file_location(f"script_{name}", os.path.join(REPO, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TEST_PY, RUN_PY, VALUATION_PY = load_script("test"), load_script("run"), load_script("valuation")
WEIGHT_CONVERT_PY, TRAIN_PY = load_script("weight_convert"), load_script("train")
MODEL_ARGS = ["--device_target", "CPU", "--cfg-options", *TINY_MODEL_OPTIONS, *THREE_CLASSES]


def snapshot(*folders):
    """{path: sha1} of every file under ``folders``: equal before and after means nothing was
    written, changed or removed there."""
    digests = {}
    for folder in folders:
        for root, _, names in os.walk(folder):
            for name in names:
                path = os.path.join(root, name)
                with open(path, "rb") as f:
                    digests[path] = hashlib.sha1(f.read()).hexdigest()
    return digests


def refused(main, argv, capsys, *folders):
    """Run ``main(argv)``; assert exit code 2, one stderr line, no file changed under
    ``folders``; returns the line."""
    before = snapshot(*folders)
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert snapshot(*folders) == before
    return lines[0]


def write_image(path, height=40, width=56, seed=0):
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    assert cv2.imwrite(str(path), pixels)
    return str(path)


def write_truncated_jpeg(path):
    """A JPEG cut at two thirds: libjpeg decodes it with grey lower rows and only a warning."""
    write_image(path, 64, 80)
    data = open(path, "rb").read()
    open(path, "wb").write(data[:len(data) * 2 // 3])
    assert cv2.imread(str(path)) is not None  # what made it silently wrong
    return str(path)


@pytest.fixture(scope="module")
def model(r18_checkpoint):
    return init_detector(LIGHT_R18_CONFIG, str(r18_checkpoint), "CPU",
                         parse_cfg_options(TINY_MODEL_OPTIONS + THREE_CLASSES))


@pytest.fixture
def photo(tmp_path):
    return write_image(tmp_path / "photo.jpg")


def deny_writing_in(monkeypatch, folder):
    """Make ``folder`` unwritable for the path checks (chmod does not stop root, who runs CI)."""
    real_access = os.access
    folder = os.path.realpath(folder)
    monkeypatch.setattr(paths.os, "access", lambda path, mode: (
        not (mode & os.W_OK and os.path.realpath(path) == folder)) and real_access(path, mode))


# 1, 7: weight_convert.py output paths, checked before the conversion

@pytest.fixture
def pth(tmp_path):
    path = tmp_path / "x.pth"
    torch.save({"state_dict": {"backbone.conv1.weight": torch.zeros(2, 3, 1, 1)}}, path)
    return path


@pytest.mark.parametrize("dst, message", [
    ("x.pth", "is the source checkpoint: writing it would destroy the input"),
    ("sub/../x.pth", "is the source checkpoint"),
    ("folder", "is a folder; give a file name"),
    ("a_file/x.ckpt", "a_file is a file, not a folder"),
    ("locked/x.ckpt", "cannot write in"),
])
def test_weight_convert_refuses_output_paths(pth, tmp_path, capsys, monkeypatch, dst, message):
    (tmp_path / "folder").mkdir()
    (tmp_path / "sub").mkdir()
    (tmp_path / "locked").mkdir()
    (tmp_path / "a_file").write_text("mine")
    deny_writing_in(monkeypatch, tmp_path / "locked")
    line = refused(WEIGHT_CONVERT_PY.main, [str(pth), str(tmp_path / dst)], capsys, tmp_path)
    assert line.startswith("weight_convert.py: error: output checkpoint ") and message in line


# 13: pickled objects besides tensors need --unsafe-pickle

def test_weight_convert_refuses_pickled_objects_without_unsafe_pickle(tmp_path, capsys):
    import argparse
    src = tmp_path / "mmcv.pth"
    torch.save({"meta": {"config": argparse.Namespace(lr=0.01)},
                "state_dict": {"backbone.conv1.weight": torch.zeros(2, 3, 1, 1)}}, src)
    line = refused(WEIGHT_CONVERT_PY.main, [str(src), str(tmp_path / "out.ckpt")], capsys,
                   tmp_path)
    assert str(src) in line and "--unsafe-pickle" in line and "runs code" in line


def test_unsafe_pickle_reads_the_objects_with_a_warning(tmp_path, capsys):
    import argparse
    from mmdet_ms.utils.checkpoint import read_torch_checkpoint
    src = tmp_path / "mmcv.pth"
    torch.save({"meta": {"config": argparse.Namespace(lr=0.01)},
                "state_dict": {"w": torch.ones(2)}}, src)
    state, meta = read_torch_checkpoint(str(src), unsafe_pickle=True)
    assert list(state) == ["w"] and meta["config"].lr == 0.01
    assert "runs whatever code the file holds" in capsys.readouterr().err


# 14: a .pth where a MindSpore checkpoint is wanted

def test_test_py_says_to_convert_a_pth(pth, photo, tmp_path, capsys):
    line = refused(TEST_PY.main, [LIGHT_R18_CONFIG, str(pth), "--dataroot", photo, "--out",
                                  str(tmp_path / "drawn.jpg"), *MODEL_ARGS], capsys, tmp_path)
    assert str(pth) in line and "convert it with weight_convert.py" in line


# 2, 8: test.py output paths, checked before the model loads

@pytest.mark.parametrize("out, message", [
    ("photo.jpg", "is the input image (--dataroot): writing it would destroy the input"),
    ("folder", "is a folder; give a file name"),
    ("a_file/drawn.jpg", "a_file is a file, not a folder"),
    ("locked/drawn.jpg", "cannot write in"),
    ("drawn.txt", "not an image file name OpenCV can write"),
])
def test_test_py_refuses_out_paths(r18_checkpoint, photo, tmp_path, capsys, monkeypatch, out,
                                   message):
    (tmp_path / "folder").mkdir()
    (tmp_path / "locked").mkdir()
    (tmp_path / "a_file").write_text("mine")
    deny_writing_in(monkeypatch, tmp_path / "locked")
    line = refused(TEST_PY.main, [LIGHT_R18_CONFIG, str(r18_checkpoint), "--dataroot", photo,
                                  "--out", str(tmp_path / out), *MODEL_ARGS], capsys, tmp_path)
    assert line.startswith("test.py: error: --out ") and message in line


@pytest.mark.parametrize("json_name, message", [
    ("photo.jpg", "must end in .json or .pkl"),
    ("annotations.json", "is the config file"),
    ("folder.json", "is a folder"),
])
def test_test_py_refuses_json_paths(r18_checkpoint, photo, tmp_path, capsys, json_name, message):
    (tmp_path / "folder.json").mkdir()
    config = tmp_path / "annotations.json"
    config.write_text("{}")
    args = [LIGHT_R18_CONFIG, str(r18_checkpoint), "--dataroot", photo, "--out",
            str(tmp_path / "drawn.jpg"), "--json", str(tmp_path / json_name), *MODEL_ARGS]
    if json_name == "annotations.json":
        args[0] = str(config)
    line = refused(TEST_PY.main, args, capsys, tmp_path)
    assert message in line


# 5, 6: config values of the wrong type, refused before the network runs

@pytest.mark.parametrize("option, message", [
    ("test_cfg.max_per_img=2.5", "test_cfg.max_per_img must be an integer >= 1, got 2.5"),
    ("test_cfg.nms_pre=0", "test_cfg.nms_pre must be an integer >= 1, got 0"),
    ("test_cfg.score_thr=abc", "test_cfg.score_thr must be a number, got 'abc'"),
    ("test_cfg.mask_thr=[0.5]", "test_cfg.mask_thr must be a number"),
    ("test_cfg.kernel=gauss", "test_cfg.kernel must be 'gaussian' or 'linear', got 'gauss'"),
    ("model.bbox_head.num_classes=eighty", "model.bbox_head.num_classes must be an integer"),
    ("model.bbox_head.num_classes=4.0", "model.bbox_head.num_classes must be an integer"),
    ("model.bbox_head.seg_feat_channels=abc",
     "head 'SOLOv2Head': seg_feat_channels must be an integer (as its default 256), got 'abc'"),
    ("model.backbone.frozen_stages=1.5", "backbone 'ResNet': frozen_stages must be an integer"),
    ("data.test.pipeline.1.transforms.0.keep_ratio=maybe",
     "pipeline 'Resize': keep_ratio must be True or False (as its default True), got 'maybe'"),
])
def test_test_py_refuses_config_values_of_the_wrong_type(r18_checkpoint, photo, tmp_path,
                                                         capsys, option, message):
    line = refused(TEST_PY.main, [LIGHT_R18_CONFIG, str(r18_checkpoint), "--dataroot", photo,
                                  "--out", str(tmp_path / "drawn.jpg"), *MODEL_ARGS, option],
                   capsys, tmp_path)
    assert line.startswith("test.py: error: ") and message in line


# 3: a truncated JPEG

def test_test_py_refuses_a_truncated_jpeg(r18_checkpoint, tmp_path, capsys):
    image = write_truncated_jpeg(tmp_path / "cut.jpg")
    line = refused(TEST_PY.main, [LIGHT_R18_CONFIG, str(r18_checkpoint), "--dataroot", image,
                                  "--out", str(tmp_path / "drawn.jpg"), *MODEL_ARGS],
                   capsys, tmp_path)
    assert image in line and "truncated JPEG" in line


def test_test_py_says_a_folder_is_not_an_image(r18_checkpoint, tmp_path, capsys):
    line = refused(TEST_PY.main, [LIGHT_R18_CONFIG, str(r18_checkpoint), "--dataroot",
                                  str(tmp_path), "--out", str(tmp_path / "drawn.jpg"),
                                  *MODEL_ARGS], capsys, tmp_path)
    assert line == (f"test.py: error: image file '{tmp_path}' is a folder (run.py segments a "
                    "folder)")


def test_the_api_refuses_a_truncated_jpeg(model, tmp_path):
    with pytest.raises(ImageReadError, match="truncated JPEG"):
        inference_detector(model, write_truncated_jpeg(tmp_path / "cut.jpg"))


def test_run_py_skips_a_truncated_jpeg_and_goes_on(r18_checkpoint, tmp_path, capsys):
    images, out = tmp_path / "images", tmp_path / "out"
    images.mkdir()
    write_image(images / "a_whole.jpg")
    write_truncated_jpeg(images / "b_cut.jpg")
    before = snapshot(images)
    assert RUN_PY.main([LIGHT_R18_CONFIG, str(r18_checkpoint), str(images), "--out", str(out),
                        "--score-thr", "0", *MODEL_ARGS]) == 0
    captured = capsys.readouterr()
    skipped = [line for line in captured.err.splitlines() if line.startswith("skipped:")]
    assert len(skipped) == 1 and "b_cut.jpg" in skipped[0] and "truncated JPEG" in skipped[0]
    assert "1 images, 100 detections, 1 skipped" in captured.out
    assert {r["file_name"] for r in json.loads((out / "results.json").read_text())} == {
        "a_whole.jpg"}
    assert sorted(os.listdir(out)) == ["a_whole.jpg", "results.json"]
    assert snapshot(images) == before


# 4: arrays that are not uint8 BGR

@pytest.mark.parametrize("image", [
    np.full((40, 56, 3), 30000, np.uint16),
    np.full((40, 56, 3), 0.5, np.float32),
    np.full((40, 56, 3), 0.5, np.float64),
], ids=["uint16", "float32-0-1", "float64"])
def test_the_api_refuses_arrays_that_are_not_uint8(model, image):
    with pytest.raises(ValueError, match=f"must be uint8 BGR .* got dtype {image.dtype}"):
        inference_detector(model, image)


# 8: run.py output folder

@pytest.mark.parametrize("out, message", [
    ("a_file", "is a file, not a folder"),
    ("a_file/out", "a_file is a file, not a folder"),
    ("locked", "cannot write in this folder"),
    ("images", "is the image folder"),
    ("with_results_dir", "results.json is a folder"),
])
def test_run_py_refuses_out_paths(r18_checkpoint, tmp_path, capsys, monkeypatch, out, message):
    images = tmp_path / "images"
    images.mkdir()
    write_image(images / "a.jpg")
    (tmp_path / "a_file").write_text("mine")
    (tmp_path / "locked").mkdir()
    (tmp_path / "with_results_dir" / "results.json").mkdir(parents=True)
    deny_writing_in(monkeypatch, tmp_path / "locked")
    line = refused(RUN_PY.main, [LIGHT_R18_CONFIG, str(r18_checkpoint), str(images), "--out",
                                 str(tmp_path / out), *MODEL_ARGS], capsys, tmp_path)
    assert line.startswith("error: --out ") and message in line


# 5, 9: valuation.py --results with records pycocotools would choke on or score silently

@pytest.fixture(scope="module")
def tiny_coco(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny_coco")
    ann_file, image_dir = write_tiny_coco(folder)
    records = result_records(*ground_truth_as_results(load_coco_gt(ann_file)))
    return ann_file, image_dir, records


def _broken(records, index, **changes):
    """A copy of ``records`` whose record ``index`` has ``changes`` (None: the key removed)."""
    records = [dict(record) for record in records]
    for key, value in changes.items():
        if value is None:
            records[index].pop(key)
        else:
            records[index][key] = value
    return records


@pytest.mark.parametrize("change, message", [
    (dict(score=None), "record 1 lacks 'score'"),
    (dict(score="0.9"), "record 1 has score '0.9', not a number"),
    (dict(score=float("nan")), "record 1 has score nan, not a number"),
    (dict(image_id="1"), "record 1 has image_id '1', not an integer"),
    (dict(bbox=[1, 2, 3]), "record 1 has bbox [1, 2, 3], not [x, y, w, h] numbers"),
    (dict(segmentation={"size": [48, 64], "counts": "garbage!!"}), "record 1 has a corrupt RLE"),
    (dict(segmentation={"size": [48, 64], "counts": "abc"}), "record 1 has a corrupt RLE"),
    (dict(segmentation=[[1, 2, 3, 4, 5, 6]]), "record 1 has a 'segmentation' that is not an RLE"),
    (dict(segmentation=encode_mask_rle(np.ones((10, 10)))), "is 10x10 (h x w) but the annotation"),
])
def test_valuation_refuses_broken_result_records(tiny_coco, tmp_path, capsys, change, message):
    ann_file, _, records = tiny_coco
    results = tmp_path / "results.json"
    results.write_text(json.dumps(_broken(records, 1, **change)))
    line = refused(VALUATION_PY.main, ["--results", str(results), "--ann", str(ann_file)],
                   capsys, tmp_path, os.path.dirname(ann_file))
    assert message in line
    assert str(results) in line or str(ann_file) in line


@pytest.mark.parametrize("content", [
    "[1, 2, 3]", json.dumps([["a", "b"]]), json.dumps(["score"])], ids=["ints", "lists", "strs"])
def test_valuation_refuses_results_that_are_not_records(tiny_coco, tmp_path, capsys, content):
    ann_file, _, _ = tiny_coco
    results = tmp_path / "results.json"
    results.write_text(content)
    line = refused(VALUATION_PY.main, ["--results", str(results), "--ann", str(ann_file)],
                   capsys, tmp_path)
    assert f"{results}: record 0 is a " in line and "not a dict" in line


@pytest.mark.parametrize("content, message", [
    ("not json", "is not valid JSON"),
    ("[]", "is not in COCO format"),
    (json.dumps({"images": [], "annotations": [], "categories": [{"name": "x"}]}),
     "every entry of 'categories' needs an 'id'"),
    (json.dumps({"images": [], "annotations": [], "categories": [{"id": 1, "name": "x"}]}),
     "image_id 1, which is not in the annotation file"),
])
def test_valuation_names_a_non_coco_annotation_file(tiny_coco, tmp_path, capsys, content,
                                                     message):
    _, _, records = tiny_coco
    results, ann_file = tmp_path / "results.json", tmp_path / "not_coco.json"
    save_results(records, results)
    ann_file.write_text(content)
    line = refused(VALUATION_PY.main, ["--results", str(results), "--ann", str(ann_file),
                                       "--eval", "segm"], capsys, tmp_path)
    assert str(ann_file) in line and message in line


def test_valuation_scores_ground_truth_with_unusable_segmentations(tiny_coco, tmp_path, capsys):
    """pycocotools' COCOeval fails on them (TypeError): segm leaves them out, with a warning."""
    source_ann, _, records = tiny_coco
    coco = json.loads(open(source_ann).read())
    coco["annotations"][0]["segmentation"] = [[1, 2, 3, 4]]  # would be read as a box
    coco["annotations"][1]["segmentation"] = []
    ann_file, results = tmp_path / "gt.json", tmp_path / "results.json"
    ann_file.write_text(json.dumps(coco))
    save_results(records, results)
    before = snapshot(tmp_path)
    assert VALUATION_PY.main(["--results", str(results), "--ann", str(ann_file)]) == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.out.splitlines() if line.startswith("WARNING")]
    assert warnings == [f"WARNING: {ann_file}: 2 annotation(s) without a usable segmentation are "
                        "not scored by segm, 1 unusable polygon(s) dropped (empty, fewer than 3 "
                        "points, odd coordinate count, or an RLE of another size than its image)"]
    assert captured.out.splitlines()[-1] == "segm AP 0.667 | bbox AP 1.000"
    assert snapshot(tmp_path) == before


# valuation.py output paths (the same kind as 2 and 8)

@pytest.mark.parametrize("args, message", [
    (["--out", "{ann}"], "the annotation file"),
    (["--out", "{tmp}/folder.json"], "is a folder"),
    (["--show-dir", "{img}"], "is the image folder"),
    (["--show-dir", "{tmp}/a_file"], "is a file, not a folder"),
])
def test_valuation_refuses_output_paths(tiny_coco, r18_checkpoint, tmp_path, capsys, args,
                                        message):
    ann_file, image_dir, _ = tiny_coco
    (tmp_path / "folder.json").mkdir()
    (tmp_path / "a_file").write_text("mine")
    args = [arg.format(ann=ann_file, img=image_dir, tmp=tmp_path) for arg in args]
    line = refused(VALUATION_PY.main, [LIGHT_R18_CONFIG, str(r18_checkpoint), "--ann",
                                       str(ann_file), "--img-dir", str(image_dir), *args,
                                       *MODEL_ARGS], capsys, tmp_path, image_dir)
    assert message in line


# 10, 11, 12: train.py with unusable annotations, stale temporaries and the umask

UNUSABLE_SEGMENTATIONS = [[], [[10, 10, 20, 20]], [[10, 10, 20, 20, 30]], {"counts": "x"}]


def add_unusable_annotations(data_dir):
    """Copies of the first training annotation with each of UNUSABLE_SEGMENTATIONS (ids 1000+),
    and one (id 2000) with a good polygon and a one-point one. Returns the file's path."""
    ann_path = data_dir / "annotations" / "instances_train.json"
    coco = json.loads(ann_path.read_text())
    good = coco["annotations"][0]
    coco["annotations"] += [dict(good, id=1000 + index, segmentation=segmentation)
                            for index, segmentation in enumerate(UNUSABLE_SEGMENTATIONS)]
    coco["annotations"].append(dict(good, id=2000, segmentation=[[5, 5, 20, 5, 20, 20], [1, 2]]))
    ann_path.write_text(json.dumps(coco))
    return ann_path


def expected_warning(ann_path):
    return (f"WARNING: annotation file '{ann_path}': skipped 4 annotation(s) without a usable "
            "segmentation and dropped 3 unusable polygon(s) (empty, fewer than 3 points, odd "
            "coordinate count, or an RLE of another size than its image)")


@pytest.fixture(scope="module")
def bad_annotation_run(tmp_path_factory):
    """One epoch of train.py on 2 synthetic images whose annotation file has unusable
    segmentations besides good ones, in a work dir holding stale temporaries of an interrupted
    save and user files of similar names, under umask 027. Returns what it saw."""
    data = tmp_path_factory.mktemp("bad_annotations")
    make_synthetic_coco(str(data), num_train=2, num_val=1, size=64, seed=0)
    ann_path = add_unusable_annotations(data)
    work_dir = data / "work"
    work_dir.mkdir()
    user_files = [".tmp_mine.ckpt", "notes.tmp", ".tmp_abcdefghi.ckpt", "keep.ckpt"]
    for name in user_files + [".tmp_abcd_123.tmp", ".tmp_results_abcd1234.json"]:
        (work_dir / name).write_text("x")
    inputs = snapshot(data / "annotations", data / "train")
    options = tiny_options(str(data), total_epochs=1)
    old_umask, stderr = os.umask(0o027), io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            code = TRAIN_PY.main(["--config", QUICKSTART, "--work-dir", str(work_dir),
                                  "--device_target", "CPU", "--cfg-options",
                                  *[f"{key}={value!r}" for key, value in options.items()]])
    finally:
        os.umask(old_umask)
    return dict(code=code, work_dir=work_dir, user_files=user_files, inputs=inputs, data=data,
                ann_path=ann_path, stderr=stderr.getvalue())


def test_train_py_skips_unusable_segmentations_with_one_warning(bad_annotation_run):
    run = bad_annotation_run
    assert run["code"] == 0, run["stderr"]
    assert (run["work_dir"] / "epoch_1.ckpt").is_file()
    warnings = [line for line in run["stderr"].splitlines() if "WARNING: annotation" in line]
    assert warnings == [expected_warning(run["ann_path"])]
    assert snapshot(run["data"] / "annotations", run["data"] / "train") == run["inputs"]


def test_the_data_set_keeps_the_usable_annotations(tmp_path, capsys):
    from mmdet_ms.datasets import build_dataset
    make_synthetic_coco(str(tmp_path), num_train=2, num_val=1, size=64, seed=0)
    ann_path = add_unusable_annotations(tmp_path)
    dataset = build_dataset(dict(
        type="CocoDataset", ann_file=str(ann_path), img_prefix=str(tmp_path / "train"),
        pipeline=[dict(type="LoadImageFromFile"), dict(type="LoadAnnotations")]))
    assert capsys.readouterr().err.strip().splitlines() == [expected_warning(ann_path)]
    annotations = json.loads(ann_path.read_text())["annotations"]
    for index, info in enumerate(dataset.img_infos):
        usable = [a for a in annotations if a["image_id"] == info["id"]
                  and (a["id"] < 1000 or a["id"] == 2000)]
        assert len(dataset[index]["gt_masks"]) == len(usable)


def test_train_py_removes_only_its_own_stale_temporaries(bad_annotation_run):
    names = set(os.listdir(bad_annotation_run["work_dir"]))
    assert set(bad_annotation_run["user_files"]) <= names
    assert ".tmp_abcd_123.tmp" not in names and ".tmp_results_abcd1234.json" not in names
    assert not {name for name in names if name.startswith(".tmp_")} - set(
        bad_annotation_run["user_files"])


def test_train_py_checkpoints_follow_the_umask(bad_annotation_run):
    mode = stat.S_IMODE(os.stat(bad_annotation_run["work_dir"] / "epoch_1.ckpt").st_mode)
    assert mode == 0o640


def test_converted_checkpoints_and_results_follow_the_umask(tmp_path):
    old_umask = os.umask(0o022)
    try:
        save_checkpoint([("w", np.zeros(2, np.float32))], str(tmp_path / "w.ckpt"))
        save_results([], tmp_path / "r.json")
        save_results([], tmp_path / "r.pkl")
    finally:
        os.umask(old_umask)
    for name in ("w.ckpt", "r.json", "r.pkl"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o644, name


def test_remove_stale_temporaries_touches_only_their_names(tmp_path):
    ours = [".tmp_a1b2c3d_.ckpt", ".tmp_a1b2c3d_.tmp", ".tmp_results_zz99zz99.pkl",
            "latest.ckpt.tmp4242"]
    others = [".tmp_a1b2c3d.ckpt", ".tmp_A1B2C3D_.ckpt", "x.tmp", ".tmp_a1b2c3d_.ckpt.bak",
              "epoch_1.ckpt", "latest.ckpt.tmp", "best.ckpt.tmp4242"]
    for name in ours + others:
        (tmp_path / name).write_text("x")
    (tmp_path / ".tmp_dir12345.ckpt").mkdir()
    logged = []
    assert remove_stale_temporaries(str(tmp_path), log=logged.append) == sorted(ours)
    assert sorted(os.listdir(tmp_path)) == sorted(others + [".tmp_dir12345.ckpt"])
    assert len(logged) == 1 and "4 temporary file(s)" in logged[0]


@pytest.mark.parametrize("option, message", [
    ("total_epochs=x", "total_epochs must be an integer >= 1, got 'x'"),
    ("optimizer.lr=abc", "optimizer.lr must be a number > 0, got 'abc'"),
    ("lr_config.step=x", "lr_config.step must be an epoch count >= 1 or a non-empty list"),
    ("lr_config.warmup_iters=2.5", "lr_config.warmup_iters must be an integer >= 0, got 2.5"),
])
def test_train_py_refuses_training_values_of_the_wrong_type(tmp_path, capsys, option, message):
    line = refused(TRAIN_PY.main, ["--config", QUICKSTART, "--work-dir", str(tmp_path / "work"),
                                   "--device_target", "CPU", "--cfg-options", option],
                   capsys, tmp_path)
    assert line.startswith(f"error: {message}")
    assert not (tmp_path / "work").exists()


@pytest.mark.parametrize("out, message", [
    ("folder.mindir", "is a folder; give a file name"),
    ("a_file/x.mindir", "a_file is a file, not a folder"),
    ("x.onnx", "a MindIR file name must end with .mindir"),
])
def test_export_refuses_out_paths_before_the_model_loads(r18_checkpoint, tmp_path, capsys, out,
                                                         message):
    spec = importlib.util.spec_from_file_location("script_export",
                                                  os.path.join(REPO, "tools", "export.py"))
    export = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(export)
    (tmp_path / "folder.mindir").mkdir()
    (tmp_path / "a_file").write_text("mine")
    line = refused(export.main, ["--config", LIGHT_R18_CONFIG, "--checkpoint",
                                 str(r18_checkpoint), "--out", str(tmp_path / out)],
                   capsys, tmp_path)
    assert line.startswith("export.py: error: --out ") and message in line


@pytest.mark.parametrize("corrupt, message", [
    (lambda coco: "not json", "is not valid JSON"),
    (lambda coco: json.dumps(dict(coco, annotations={})), "is not in COCO format"),
    (lambda coco: json.dumps(dict(coco, annotations=[dict(coco["annotations"][0], bbox=[1, 2])])),
     "annotation 1 has bbox [1, 2] and area"),
])
def test_train_py_names_a_broken_annotation_file(tmp_path, capsys, corrupt, message):
    make_synthetic_coco(str(tmp_path), num_train=2, num_val=1, size=64, seed=0)
    ann_path = tmp_path / "annotations" / "instances_train.json"
    ann_path.write_text(corrupt(json.loads(ann_path.read_text())))
    options = [f"{key}={value!r}" for key, value in tiny_options(str(tmp_path)).items()]
    line = refused(TRAIN_PY.main, ["--config", QUICKSTART, "--work-dir", str(tmp_path / "work"),
                                   "--device_target", "CPU", "--cfg-options", *options],
                   capsys, tmp_path / "annotations", tmp_path / "train")
    assert line.startswith(f"error: annotation file '{ann_path}'") and message in line


def test_train_py_refuses_a_work_dir_that_is_a_file(tmp_path, capsys):
    (tmp_path / "work").write_text("mine")
    line = refused(TRAIN_PY.main, ["--config", QUICKSTART, "--work-dir", str(tmp_path / "work"),
                                   "--device_target", "CPU"], capsys, tmp_path)
    assert line == f"error: --work-dir {tmp_path / 'work'} is a file, not a folder"


# 15: msrun_launcher.sh with fewer than nine arguments says which defaults it takes

def test_launcher_names_the_defaults_it_takes(tmp_path):
    result = subprocess.run(["bash", os.path.join(REPO, "msrun_launcher.sh"), "no_such.py", "2"],
                            capture_output=True, text=True, check=False, timeout=60,
                            cwd=tmp_path)
    assert result.returncode == 1  # the script is missing: nothing starts
    assert ("msrun_launcher.sh: note: 7 of the 9 arguments left off, using the defaults: "
            "LOCAL_WORKER_NUM=8 MASTER_ADDR=127.0.0.1 MASTER_PORT=8118 NODE_RANK=0 "
            "LOG_DIR=output/msrun_log JOIN=False CLUSTER_TIME_OUT=7200") in result.stderr
