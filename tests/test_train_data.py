"""The training data path: fixed batch canvases (``data.train.pad_to``) and targets built in the
loader workers (``build_train_dataloader``), on a handful of tiny images."""
import json
import logging
import os
import pickle

import cv2
import numpy as np
import pytest

import mmdet_ms  # noqa: F401
from mmdet_ms.apis.train import build_train_dataloader
from mmdet_ms.config import Config, ConfigDict
from mmdet_ms.datasets import CocoDataset, Compose, build_dataset, collate, resolve_canvas
from mmdet_ms.datasets.canvas import canvas_hw
from mmdet_ms.datasets.transforms.geometric import keep_ratio_scale, scaled_size
from mmdet_ms.models import build_detector
from mmdet_ms.registry import ConfigError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = {"SOLOv2": os.path.join(REPO, "configs/solov2/solov2_light_r18_synthetic_quickstart.py"),
           "SOLO": os.path.join(REPO, "configs/solo/solo_r18_synthetic_quickstart.py")}
IMG_NORM_CFG = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
# (width, height): landscape and portrait images of several sizes
IMAGE_SIZES = [(150, 100), (120, 90), (200, 100), (100, 150), (80, 120), (90, 140)]


def pipeline(img_scale, flip=True):
    return [dict(type="LoadImageFromFile"),
            dict(type="LoadAnnotations", with_bbox=True, with_mask=True),
            dict(type="Resize", img_scale=img_scale, multiscale_mode="value", keep_ratio=True),
            dict(type="RandomFlip", flip_ratio=0.5 if flip else 0.0),
            dict(type="Normalize", **IMG_NORM_CFG),
            dict(type="Pad", size_divisor=32),
            dict(type="DefaultFormatBundle"),
            dict(type="Collect", keys=["img", "gt_bboxes", "gt_labels", "gt_masks"])]


MULTI_SCALE = pipeline([(96, 64), (96, 48), (96, 32)])  # 'auto': one canvas, (96, 64)
BUCKETS = pipeline([(128, 96), (128, 64), (128, 32)])  # 'auto': (128, 64) and (128, 96)
BUCKET_CANVASES = ((128, 64), (128, 96))


@pytest.fixture(scope="module")
def coco_files(tmp_path_factory):
    """A COCO file of IMAGE_SIZES with 2-4 rectangles each; (ann_file, img_prefix)."""
    out = tmp_path_factory.mktemp("canvas_data")
    rng = np.random.default_rng(0)
    images, annotations = [], []
    for img_id, (width, height) in enumerate(IMAGE_SIZES, start=1):
        cv2.imwrite(str(out / f"{img_id}.jpg"), rng.integers(0, 255, (height, width, 3), np.uint8))
        images.append(dict(id=img_id, file_name=f"{img_id}.jpg", width=width, height=height))
        for _ in range(rng.integers(2, 5)):
            w, h = (int(side) for side in rng.integers(15, 60, 2))
            x, y = int(rng.integers(0, width - w)), int(rng.integers(0, height - h))
            annotations.append(dict(id=len(annotations) + 1, image_id=img_id,
                                    category_id=int(rng.integers(1, 4)), bbox=[x, y, w, h],
                                    area=float(w * h), iscrowd=0,
                                    segmentation=[[x, y, x + w, y, x + w, y + h, x, y + h]]))
    categories = [dict(id=i, name=name) for i, name in enumerate(["a", "b", "c"], start=1)]
    ann_file = out / "ann.json"
    ann_file.write_text(json.dumps(dict(images=images, annotations=annotations,
                                        categories=categories)))
    return str(ann_file), str(out) + os.sep


@pytest.fixture(scope="module")
def networks():
    """The quick-start SOLOv2 and SOLO detectors with the 3 classes (+ background)."""
    built = {}
    for name, path in CONFIGS.items():
        cfg = Config.fromfile(path)
        cfg.model.bbox_head.num_classes = 4
        built[name] = build_detector(cfg.model, cfg.get("train_cfg"), cfg.get("test_cfg"))
    return built


def loader_cfg(workers):
    return ConfigDict(data=dict(imgs_per_gpu=2, workers_per_gpu=workers))


class Lines(logging.Handler):
    """Collects the messages of the package's logger (which may not propagate to pytest's)."""

    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append((record.levelname, record.getMessage()))

    def __enter__(self):
        logger = logging.getLogger("mmdet_ms")
        self.saved_level = logger.level
        logger.setLevel(logging.INFO)
        logger.addHandler(self)
        return self.lines

    def __exit__(self, *exc_info):
        logger = logging.getLogger("mmdet_ms")
        logger.removeHandler(self)
        logger.setLevel(self.saved_level)


def assert_targets_equal(first, second):
    assert len(first) == len(second)
    for a, b in zip(first, second):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


def assert_level_targets_equal(first, second):
    for level_a, level_b in zip(first, second):
        assert_targets_equal(level_a, level_b)


@pytest.mark.parametrize("detector", ["SOLOv2", "SOLO"])
def test_canvas_targets_are_the_batch_padding_ones(coco_files, networks, detector):
    """Canvas (96, 64): an image that fills it has today's targets; a smaller one has those the
    original's batch padding gives it beside a canvas-sized image, and those of the image padded
    to the canvas by hand."""
    ann_file, prefix = coco_files
    assigner = networks[detector].target_assigner(static_shapes=True)
    full = CocoDataset(ann_file, pipeline((96, 64), flip=False), img_prefix=prefix)[0]
    small = CocoDataset(ann_file, pipeline((96, 32), flip=False), img_prefix=prefix)[0]
    assert full["img"].shape == (3, 64, 96) and small["img"].shape == (3, 32, 64)
    canvas = (96, 64)

    full_targets = assigner(collate([full], canvases=[canvas]))
    assert_targets_equal(full_targets, assigner(collate([full])))
    assert full_targets[1] > 0  # num_pos: the targets are not all background

    on_canvas = collate([small], canvases=[canvas])
    assert on_canvas["img"].shape == (1, 3, 64, 96)
    beside_full = collate([small, full])
    assert_level_targets_equal(assigner.per_image(on_canvas)[0], assigner.per_image(beside_full)[0])
    by_hand = dict(img=np.pad(small["img"], ((0, 0), (0, 32), (0, 32)))[None],
                   gt_bboxes=[small["gt_bboxes"]], gt_labels=[small["gt_labels"]],
                   gt_masks=[small["gt_masks"]])
    canvas_targets = assigner(on_canvas)
    assert_targets_equal(canvas_targets, assigner(by_hand))
    assert canvas_targets[1] > 0
    own_size = assigner.per_image(collate([small]))[0][0].ins_labels.shape[1:]
    assert own_size != assigner.per_image(on_canvas)[0][0].ins_labels.shape[1:]


def layouts(canvases):
    """Every (H, W) a batch may get from ``canvases``: each (long, short) in both orientations."""
    return {(short, long) for long, short in canvases} | {(long, short) for long, short in canvases}


def test_auto_buckets_give_only_the_logged_canvases_over_multi_scale_epochs(coco_files, networks):
    """Each batch gets the smallest of the logged canvases that holds its images; a multi-scale
    run sees no other shape, and fewer than per-batch padding gives."""
    ann_file, prefix = coco_files
    dataset = CocoDataset(ann_file, BUCKETS, img_prefix=prefix, pad_to="auto")
    per_batch = CocoDataset(ann_file, BUCKETS, img_prefix=prefix, pad_to=None)
    assert resolve_canvas("auto", dataset.pipeline.transforms)[0] == BUCKET_CANVASES
    allowed = layouts(BUCKET_CANVASES)

    def shapes(data):
        with Lines() as lines:
            loader = build_train_dataloader(loader_cfg(0), data, networks["SOLOv2"], seed=3)
        assert len(lines) == 1, lines
        logged.append(lines[0])
        seen = set()
        for epoch in range(3):
            loader.set_epoch(epoch)
            for batch in loader:
                shape = batch["img"].shape[2:]
                seen.add(shape)
                mask_targets = batch["targets"][4]  # (B, P, H / 4, W / 4)
                assert mask_targets.shape[2:] == tuple(s // 4 for s in shape)
                if data.pad_to is None:
                    continue
                pad_shapes = [meta["pad_shape"][:2] for meta in batch["img_meta"]]
                landscape = max(w for _, w in pad_shapes) > max(h for h, _ in pad_shapes)
                holding = [(h, w) for h, w in allowed if (w > h) == landscape or w == h
                           if all(ph <= h and pw <= w for ph, pw in pad_shapes)]
                assert shape == min(holding, key=lambda hw: hw[0] * hw[1])
        return seen

    logged = []
    seen = shapes(dataset)
    assert seen <= allowed and len(seen) > 2  # the smaller canvas is used too
    assert len(shapes(per_batch)) > len(seen)  # what the canvases avoid
    assert logged == [("INFO", "data.train.pad_to='auto': each batch padded to the smallest of 2 "
                               "canvases that fits it, long x short (W x H for landscape batches, "
                               "H x W for the others): 128x64, 128x96"),
                      ("INFO", "data.train.pad_to=None: each batch padded to its own size")]


def test_the_smallest_canvas_that_holds_the_batch_is_chosen():
    canvases = [(1344, 800), (1088, 800), (992, 736), (1344, 736)]  # any order
    assert canvas_hw(canvases, [(704, 960), (640, 864)]) == (736, 992)  # landscape: (short, long)
    assert canvas_hw(canvases, [(736, 1000)]) == (800, 1088)  # 1088x800 < 1344x736 in area
    assert canvas_hw(canvases, [(768, 1344), (704, 960)]) == (800, 1344)
    assert canvas_hw(canvases, [(960, 704)]) == (992, 736)  # portrait: (long, short)
    assert canvas_hw(canvases, [(800, 800)]) == (1088, 800)  # square: as portrait
    with pytest.raises(ValueError, match=r"^an image of 1376x704 \(W x H\) \(b\.jpg\) does not "
                                         r"fit the largest canvas of data\.train\.pad_to "
                                         r"\(1344x800\);"):
        canvas_hw(canvases, [(704, 960), (704, 1376)], names=["a.jpg", "b.jpg"])


def coco_like_overhead(canvases, scales, num_images=2000, imgs_per_gpu=2):
    """Pixels of ``canvases``' batches / those of per-batch padding, for COCO-like images (long
    side 640; aspect ratios 4:3 60%, 3:2 25%, 16:9 10%, 1:1 5%; 70% landscape) resized
    keep_ratio to one of ``scales`` each, padded to 32 and batched within their aspect group."""
    rng = np.random.default_rng(0)
    aspects = rng.choice([4 / 3, 3 / 2, 16 / 9, 1.0], size=num_images, p=[0.6, 0.25, 0.1, 0.05])
    groups = ([], [])
    for aspect, landscape, scale in zip(aspects, rng.random(num_images) < 0.7,
                                        rng.integers(len(scales), size=num_images)):
        long_side, short_side = 640, round(640 / aspect)
        height, width = (short_side, long_side) if landscape else (long_side, short_side)
        new_w, new_h = scaled_size(height, width, keep_ratio_scale(height, width, scales[scale]))
        size = (-(-new_h // 32) * 32, -(-new_w // 32) * 32)
        groups[size[1] > size[0]].append(size)
    on_canvases = per_batch = 0
    for group in groups:
        for start in range(0, len(group) - imgs_per_gpu + 1, imgs_per_gpu):
            batch = group[start:start + imgs_per_gpu]
            canvas_h, canvas_w = canvas_hw(canvases, batch)
            on_canvases += canvas_h * canvas_w
            per_batch += max(h for h, _ in batch) * max(w for _, w in batch)
    return on_canvases / per_batch


def test_auto_buckets_of_the_3x_coco_pipeline_cut_the_padding_of_one_canvas():
    cfg = Config.fromfile(os.path.join(REPO, "configs/solov2/solov2_r101_fpn_8gpu_3x.py"))
    transforms = Compose(cfg.data.train.pipeline).transforms
    canvases, how = resolve_canvas(cfg.data.train.pad_to, transforms)
    assert canvases == ((992, 736), (992, 800), (1184, 736), (1184, 800), (1344, 736), (1344, 800))
    assert how.endswith(": 992x736, 992x800, 1184x736, 1184x800, 1344x736, 1344x800")
    scales = [(1333, short) for short in (800, 768, 736, 704, 672, 640)]
    buckets, one = coco_like_overhead(canvases, scales), coco_like_overhead([(1344, 800)], scales)
    assert one > 1.25 and buckets <= 1.15, (one, buckets)


@pytest.mark.parametrize("resize, canvases", [
    (dict(img_scale=(320, 320)), ((320, 320),)),  # the quick start
    (dict(img_scale=(1333, 800)), ((992, 800), (1184, 800), (1344, 800))),
    (dict(img_scale=[(768, 512), (768, 352)]),
     ((608, 448), (608, 512), (704, 448), (768, 448), (704, 512), (768, 512))),
    (dict(img_scale=[(1333, 800), (600, 1000)], keep_ratio=False), ((1024, 608), (1344, 800))),
    (dict(img_scale=[(1333, 800), (1333, 640)], multiscale_mode="range", keep_ratio=False),
     ((992, 736), (992, 800), (1184, 736), (1184, 800), (1344, 736), (1344, 800)))])
def test_auto_canvases_of_a_resize(resize, canvases):
    steps = [dict(type="Resize", **{"keep_ratio": True, **resize}),
             dict(type="Pad", size_divisor=32)]
    assert resolve_canvas("auto", Compose(steps).transforms)[0] == canvases


def test_targets_built_in_workers_equal_the_main_process_ones_and_resume(coco_files, networks):
    ann_file, prefix = coco_files
    dataset = CocoDataset(ann_file, BUCKETS, img_prefix=prefix, pad_to="auto")
    network = networks["SOLO"]
    with build_train_dataloader(loader_cfg(2), dataset, network, seed=5) as loader:
        loader.set_epoch(1)
        in_workers = list(loader)
        loader.set_epoch(1, start_batch=1)
        resumed = list(loader)
    in_process = build_train_dataloader(loader_cfg(0), dataset, network, seed=5)
    in_process.set_epoch(1)
    main = list(in_process)
    assert len(in_workers) == len(main) == 4 and len(resumed) == 3  # groups of 3 padded to 4
    for worker_batch, main_batch in zip(in_workers, main):
        np.testing.assert_array_equal(worker_batch["img"], main_batch["img"])
        assert_targets_equal(worker_batch["targets"], main_batch["targets"])
        rebuilt = network.train_targets({k: v for k, v in main_batch.items() if k != "targets"},
                                        static_shapes=True)
        assert_targets_equal(worker_batch["targets"], rebuilt)
    for resumed_batch, full_batch in zip(resumed, in_workers[1:]):
        np.testing.assert_array_equal(resumed_batch["img"], full_batch["img"])
        assert_targets_equal(resumed_batch["targets"], full_batch["targets"])
    assigner = pickle.loads(pickle.dumps(network.target_assigner(static_shapes=True)))
    assert_targets_equal(assigner(main[0]), main[0]["targets"])


def test_an_image_larger_than_the_canvas_is_a_one_line_error(coco_files, networks):
    ann_file, prefix = coco_files
    dataset = CocoDataset(ann_file, MULTI_SCALE, img_prefix=prefix, pad_to=(64, 32))
    loader = build_train_dataloader(loader_cfg(0), dataset, networks["SOLOv2"])
    with pytest.raises(ValueError, match=r"^an image of \d+x\d+ \(W x H\) \(.*\.jpg\) does not fit "
                                         r"the canvas of data\.train\.pad_to \(\d+x\d+\); [^\n]*$"):
        next(iter(loader))


@pytest.mark.parametrize("pad_to, message", [
    ((800, 1344), r"=\(800, 1344\): each canvas is \(long, short\) with long >= short"),
    ([(1344, 800), (800, 1088)], r"=\[.*\]: each canvas is \(long, short\) with long >= short; "
                                 r"got \(800, 1088\)"),
    ("big", " must be None, 'auto', "), ((1344,), " must be None, 'auto', "),
    ([], " must be None, 'auto', .* or a non-empty list of them"),
    ([(1344, 800), 800], " must be None, 'auto', "), ((1344.0, 800), " must be .*positive ints")])
def test_bad_pad_to_values_are_config_errors(coco_files, pad_to, message):
    ann_file, prefix = coco_files
    cfg = dict(type="CocoDataset", ann_file=ann_file, img_prefix=prefix, pipeline=MULTI_SCALE,
               pad_to=pad_to)
    with pytest.raises(ConfigError, match=r"^data\.train\.pad_to" + message + r"[^\n]*$"):
        build_dataset(cfg)


def test_pad_to_needs_multiples_of_32_and_auto_needs_a_resize():
    transforms = Compose(MULTI_SCALE).transforms
    with pytest.raises(ConfigError, match=r"^data\.train\.pad_to=\(1333, 800\): every side must be "
                                          r"a multiple of 32, e.g. \(1344, 800\)$"):
        resolve_canvas((1333, 800), transforms)
    with pytest.raises(ConfigError, match=r"^data\.train\.pad_to=\[\(1344, 800\), \(1088, 750\)\]: "
                                          r"every side must be a multiple of 32, e\.g\. "
                                          r"\[\(1088, 768\), \(1344, 800\)\]$"):
        resolve_canvas([(1344, 800), (1088, 750)], transforms)
    assert resolve_canvas((1344, 800), transforms)[0] == ((1344, 800),)
    assert resolve_canvas([[1344, 800], (1088, 800), (1344, 800)], transforms)[0] == (
        (1088, 800), (1344, 800))  # sorted by area, duplicates dropped
    canvas, how = resolve_canvas("auto", [t for t in transforms if type(t).__name__ != "Resize"])
    assert canvas is None and "no single Resize" in how and "padded to its own size" in how


def test_auto_without_resize_warns_once_and_pads_each_batch(coco_files, networks):
    ann_file, prefix = coco_files
    no_resize = [step for step in MULTI_SCALE if step["type"] not in ("Resize", "Collect")]
    no_resize.append(dict(type="Collect", keys=["img", "gt_bboxes", "gt_labels", "gt_masks"],
                          meta_keys=("filename", "flip", "pad_shape")))
    dataset = CocoDataset(ann_file, no_resize, img_prefix=prefix, pad_to="auto")
    with Lines() as lines:
        loader = build_train_dataloader(loader_cfg(0), dataset, networks["SOLOv2"])
    assert [level for level, _ in lines] == ["WARNING"]
    assert "no single Resize" in lines[0][1] and "padded to its own size" in lines[0][1]
    loader.set_epoch(0)
    shapes = set()
    for batch in loader:
        pad_shapes = [meta["pad_shape"] for meta in batch["img_meta"]]
        shapes.add(batch["img"].shape[2:])
        assert batch["img"].shape[2:] == (max(h for h, _, _ in pad_shapes),
                                          max(w for _, w, _ in pad_shapes))
    assert len(shapes) > 2
