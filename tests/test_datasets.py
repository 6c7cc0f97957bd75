"""CocoDataset, build_dataset, GroupSampler, collate, the data loader and the synthetic dataset."""
import json
import os

import cv2
import numpy as np
import pytest

import mmdet_ms  # noqa: F401
from mmdet_ms.datasets import (CocoDataset, GroupSampler, ImageReadError, build_dataloader, build_dataset,
                               collate, make_synthetic_coco)
from mmdet_ms.datasets.synthetic import draw_scene
from mmdet_ms.datasets.transforms import ann_to_mask
from mmdet_ms.registry import ConfigError

IMG_NORM_CFG = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
TRAIN_PIPELINE = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadAnnotations", with_bbox=True, with_mask=True),
    dict(type="Resize", img_scale=[(96, 64), (96, 48), (96, 32)], multiscale_mode="value", keep_ratio=True),
    dict(type="RandomFlip", flip_ratio=0.5),
    dict(type="Normalize", **IMG_NORM_CFG),
    dict(type="Pad", size_divisor=32),
    dict(type="DefaultFormatBundle"),
    dict(type="Collect", keys=["img", "gt_bboxes", "gt_labels", "gt_masks"]),
]
ANN_ONLY_PIPELINE = [dict(type="Collect", keys=[], meta_keys=())]


def _box_ann(ann_id, image_id, category_id, bbox, **extra):
    x, y, w, h = bbox
    ann = dict(id=ann_id, image_id=image_id, category_id=category_id, bbox=list(bbox), area=float(w * h),
               segmentation=[[x, y, x + w, y, x + w, y + h, x, y + h]], iscrowd=0)
    ann.update(extra)
    return ann


def _write_coco(tmp_path, images, annotations, categories, write_images=True, name="ann.json"):
    """Write ``images`` ((width, height) each) as small jpgs and a COCO json; return (ann_file, prefix)."""
    img_dir = tmp_path / "images"
    img_dir.mkdir(exist_ok=True)
    image_entries = []
    for img_id, (width, height) in enumerate(images, start=1):
        file_name = f"{img_id}.jpg"
        if write_images:
            cv2.imwrite(str(img_dir / file_name), np.full((height, width, 3), 50 * img_id % 255, np.uint8))
        image_entries.append(dict(id=img_id, file_name=file_name, width=width, height=height))
    ann_file = tmp_path / name
    ann_file.write_text(json.dumps(dict(images=image_entries, annotations=annotations, categories=categories)))
    return str(ann_file), str(img_dir)


def _categories(*id_names):
    return [dict(id=cat_id, name=name) for cat_id, name in id_names]


# ---------------------------------------------------------------- classes and labels


def test_class_names_come_from_the_file_sorted_by_id(tmp_path):
    ann_file, _ = _write_coco(tmp_path, [(40, 30)], [_box_ann(1, 1, 9, (1, 1, 10, 10))],
                              _categories((9, "zebra"), (2, "cat"), (5, "dog")), write_images=False)
    dataset = CocoDataset(ann_file, ANN_ONLY_PIPELINE)
    assert dataset.CLASSES == ("cat", "dog", "zebra")
    assert dataset.cat_ids == [2, 5, 9]
    np.testing.assert_array_equal(dataset.get_ann_info(0)["labels"], [2])


def test_category_id_gaps_map_to_consecutive_labels_and_back(tmp_path):
    anns = [_box_ann(1, 1, 7, (1, 1, 10, 10)), _box_ann(2, 1, 1, (2, 2, 10, 10)), _box_ann(3, 1, 3, (3, 3, 9, 9))]
    ann_file, _ = _write_coco(tmp_path, [(40, 30)], anns, _categories((1, "a"), (3, "b"), (7, "c")),
                              write_images=False)
    dataset = CocoDataset(ann_file, ANN_ONLY_PIPELINE)
    assert dataset.cat2label == {1: 0, 3: 1, 7: 2}
    assert dataset.label2cat == {0: 1, 1: 3, 2: 7}
    np.testing.assert_array_equal(dataset.get_ann_info(0)["labels"], [2, 0, 1])


def test_classes_override_selects_and_orders_categories(tmp_path):
    anns = [_box_ann(1, 1, 1, (1, 1, 10, 10)), _box_ann(2, 1, 2, (2, 2, 10, 10)), _box_ann(3, 1, 3, (3, 3, 9, 9))]
    ann_file, _ = _write_coco(tmp_path, [(40, 30)], anns, _categories((1, "a"), (2, "b"), (3, "c")),
                              write_images=False)
    dataset = CocoDataset(ann_file, ANN_ONLY_PIPELINE, classes=("c", "a"))
    assert dataset.CLASSES == ("c", "a") and dataset.cat2label == {3: 0, 1: 1}
    ann = dataset.get_ann_info(0)
    np.testing.assert_array_equal(ann["labels"], [1, 0])  # the 'b' instance is not a class here
    assert len(ann["masks"]) == 2
    with pytest.raises(ConfigError, match="'d'"):
        CocoDataset(ann_file, ANN_ONLY_PIPELINE, classes=["a", "d"])
    with pytest.raises(ConfigError, match="list or tuple"):
        CocoDataset(ann_file, ANN_ONLY_PIPELINE, classes="a")


# ---------------------------------------------------------------- annotation parsing and filtering


def test_crowd_and_invalid_annotations_are_not_trained(tmp_path):
    anns = [
        _box_ann(1, 1, 1, (2, 3, 10, 20)),
        _box_ann(2, 1, 1, (5, 5, 8, 8), iscrowd=1),
        _box_ann(3, 1, 1, (5, 5, 0.5, 8)),          # narrower than a pixel
        _box_ann(4, 1, 1, (5, 5, 8, 8), area=0),    # no area
        _box_ann(5, 1, 1, (5, 5, 8, 8), ignore=True),
    ]
    ann_file, _ = _write_coco(tmp_path, [(40, 30)], anns, _categories((1, "a")), write_images=False)
    ann = CocoDataset(ann_file, ANN_ONLY_PIPELINE).get_ann_info(0)
    np.testing.assert_array_equal(ann["bboxes"], [[2, 3, 11, 22]])  # [x, y, x + w - 1, y + h - 1]
    np.testing.assert_array_equal(ann["bboxes_ignore"], [[5, 5, 12, 12]])
    np.testing.assert_array_equal(ann["labels"], [0])
    assert ann["bboxes"].dtype == np.float32 and ann["labels"].dtype == np.int64 and len(ann["masks"]) == 1


def test_images_without_usable_instances_are_filtered_in_training_only(tmp_path):
    anns = [_box_ann(1, 1, 1, (1, 1, 10, 10)), _box_ann(2, 2, 1, (1, 1, 10, 10), iscrowd=1),
            _box_ann(3, 4, 1, (1, 1, 10, 10))]
    ann_file, _ = _write_coco(tmp_path, [(40, 30), (40, 30), (20, 50), (10, 12)], anns, _categories((1, "a")),
                              write_images=False)
    train = CocoDataset(ann_file, ANN_ONLY_PIPELINE)
    assert train.img_ids == [1, 4]
    np.testing.assert_array_equal(train.flag, [1, 0])
    assert CocoDataset(ann_file, ANN_ONLY_PIPELINE, min_size=20).img_ids == [1]
    assert CocoDataset(ann_file, ANN_ONLY_PIPELINE, filter_empty_gt=False).img_ids == [1, 2, 3, 4]
    test = CocoDataset(ann_file, ANN_ONLY_PIPELINE, test_mode=True)
    assert test.img_ids == [1, 2, 3, 4] and len(test) == 4
    assert test.img_infos[2]["filename"] == test.img_infos[2]["file_name"] == "3.jpg"


def test_a_training_set_without_any_usable_image_is_an_error(tmp_path):
    ann_file, _ = _write_coco(tmp_path, [(40, 30)], [], _categories((1, "a")), write_images=False)
    with pytest.raises(ValueError, match="no training image"):
        CocoDataset(ann_file, ANN_ONLY_PIPELINE)


def test_missing_empty_and_non_coco_annotation_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.json"):
        CocoDataset(str(tmp_path / "nothing.json"), ANN_ONLY_PIPELINE)
    (tmp_path / "empty.json").write_text("")
    with pytest.raises(ValueError, match="empty.json' is empty"):
        CocoDataset(str(tmp_path / "empty.json"), ANN_ONLY_PIPELINE)
    (tmp_path / "broken.json").write_text("{'images': ")
    with pytest.raises(ValueError, match="broken.json' is not valid JSON"):
        CocoDataset(str(tmp_path / "broken.json"), ANN_ONLY_PIPELINE)
    (tmp_path / "other.json").write_text(json.dumps(dict(images=[], labels=[])))
    with pytest.raises(ValueError, match="other.json' is not in COCO format"):
        CocoDataset(str(tmp_path / "other.json"), ANN_ONLY_PIPELINE)
    ann_file, _ = _write_coco(tmp_path, [(40, 30)], [_box_ann(1, 1, 4, (1, 1, 10, 10))], _categories((1, "a")),
                              write_images=False, name="badcat.json")
    with pytest.raises(ValueError, match="category_id 4"):
        CocoDataset(ann_file, ANN_ONLY_PIPELINE)


def test_corrupt_image_error_names_the_file(tmp_path):
    ann_file, img_dir = _write_coco(tmp_path, [(40, 30)], [_box_ann(1, 1, 1, (1, 1, 10, 10))],
                                    _categories((1, "a")))
    with open(os.path.join(img_dir, "1.jpg"), "wb") as f:
        f.write(b"\xff\xd8\xff\xe0 truncated")
    dataset = CocoDataset(ann_file, TRAIN_PIPELINE, img_prefix=img_dir)
    with pytest.raises(ImageReadError, match="1.jpg"):
        dataset[0]


def test_a_worker_error_reaches_the_caller(tmp_path):
    ann_file, img_dir = _write_coco(tmp_path, [(40, 30)], [_box_ann(1, 1, 1, (1, 1, 10, 10))],
                                    _categories((1, "a")))
    os.remove(os.path.join(img_dir, "1.jpg"))
    dataset = CocoDataset(ann_file, TRAIN_PIPELINE, img_prefix=img_dir)
    with build_dataloader(dataset, imgs_per_gpu=1, workers_per_gpu=1) as loader:
        with pytest.raises(ImageReadError, match="1.jpg"):
            list(loader)


def test_training_item_and_redraw_when_the_pipeline_drops_a_sample(tmp_path):
    anns = [_box_ann(1, 1, 1, (4, 4, 20, 12)), _box_ann(2, 2, 2, (30, 10, 25, 15)), _box_ann(3, 3, 1, (1, 1, 9, 9))]
    ann_file, img_dir = _write_coco(tmp_path, [(64, 40), (64, 40), (30, 40)], anns, _categories((1, "a"), (2, "b")))
    drop_first = lambda results: None if results["img_info"]["id"] == 1 else results  # noqa: E731
    dataset = CocoDataset(ann_file, [drop_first] + TRAIN_PIPELINE, img_prefix=img_dir)
    np.random.seed(0)
    data = dataset[0]
    assert data["img_meta"]["filename"].endswith("2.jpg")  # the other image of the same aspect group
    np.testing.assert_array_equal(data["gt_labels"], [1])
    assert data["gt_masks"].shape[1:] == data["img"].shape[1:] == data["img_meta"]["pad_shape"][:2]


def test_build_dataset_from_config_with_default_args(tmp_path):
    ann_file, img_dir = _write_coco(tmp_path, [(40, 30), (40, 30)], [_box_ann(1, 1, 1, (1, 1, 10, 10))],
                                    _categories((1, "a")))
    cfg = dict(type="CocoDataset", ann_file=ann_file, img_prefix=img_dir, pipeline=ANN_ONLY_PIPELINE)
    assert len(build_dataset(cfg)) == 1
    assert len(build_dataset(cfg, dict(test_mode=True))) == 2
    assert cfg["type"] == "CocoDataset"  # the config is not consumed
    with pytest.raises(ConfigError, match="ann_fle"):
        build_dataset(dict(cfg, ann_fle="x"))


# ---------------------------------------------------------------- sampler, collate, loader


class _Flags:
    def __init__(self, flags):
        self.flag = np.asarray(flags, np.uint8)

    def __len__(self):
        return len(self.flag)


def test_group_sampler_never_mixes_groups_and_pads_each_group():
    dataset = _Flags([0] * 5 + [1] * 8)
    sampler = GroupSampler(dataset, samples_per_gpu=2, seed=3)
    batches = sampler.batches()
    assert len(batches) == len(sampler) == 3 + 4
    for batch in batches:
        assert len(batch) == 2 and len({int(dataset.flag[i]) for i in batch}) == 1
    assert sorted({i for batch in batches for i in batch}) == list(range(13))


def test_group_sampler_order_is_a_function_of_seed_and_epoch():
    dataset = _Flags([0] * 6 + [1] * 6)
    sampler = GroupSampler(dataset, samples_per_gpu=2, seed=1)
    first = sampler.batches()
    assert GroupSampler(dataset, samples_per_gpu=2, seed=1).batches() == first
    sampler.set_epoch(1)
    assert sampler.batches() != first
    sampler.set_epoch(0)
    assert sampler.batches() == first


def test_group_sampler_shards_across_ranks():
    dataset = _Flags([0] * 7 + [1] * 4)
    shards = [GroupSampler(dataset, samples_per_gpu=2, num_replicas=3, rank=rank, seed=5) for rank in range(3)]
    batches = [shard.batches() for shard in shards]
    assert [len(b) for b in batches] == [len(shard) for shard in shards] == [3, 3, 3]  # ceil(7/6) + ceil(4/6)
    all_indices = [i for rank_batches in batches for batch in rank_batches for i in batch]
    assert sorted(set(all_indices)) == list(range(11))
    for rank_batches in batches:
        for batch in rank_batches:
            assert len({int(dataset.flag[i]) for i in batch}) == 1
    sequential = [GroupSampler(dataset, 2, shuffle=False, num_replicas=2, rank=r).batches() for r in range(2)]
    assert sequential == [[[0, 2], [4, 6], [8, 10]], [[1, 3], [5, 7], [9, 0]]]


def test_collate_pads_images_to_the_batch_and_keeps_lists():
    samples = [dict(img=np.ones((3, 64, 96), np.float32), img_meta=dict(pad_shape=(64, 96, 3)),
                    gt_masks=np.zeros((2, 64, 96), np.uint8), gt_labels=np.array([0, 1])),
               dict(img=np.ones((3, 96, 32), np.float32), img_meta=dict(pad_shape=(96, 32, 3)),
                    gt_masks=np.zeros((1, 96, 32), np.uint8), gt_labels=np.array([2]))]
    batch = collate(samples)
    assert batch["img"].shape == (2, 3, 96, 96) and batch["img"].dtype == np.float32
    assert batch["img"][0, :, :64, :96].all() and not batch["img"][0, :, 64:].any()
    assert not batch["img"][1, :, :, 32:].any()
    assert [m.shape for m in batch["gt_masks"]] == [(2, 64, 96), (1, 96, 32)]
    assert len(batch["img_meta"]) == 2 and isinstance(batch["gt_labels"], list)


def test_loader_batches_are_identical_with_and_without_workers(tmp_path):
    splits = make_synthetic_coco(str(tmp_path / "shapes"), num_train=6, num_val=0, size=64, seed=1)
    ann_file, img_prefix = splits["train"]
    dataset = CocoDataset(ann_file, TRAIN_PIPELINE, img_prefix=img_prefix)

    def epoch_batches(workers, epoch):
        with build_dataloader(dataset, imgs_per_gpu=2, workers_per_gpu=workers, seed=7) as loader:
            loader.set_epoch(epoch)
            assert len(loader) == 3
            return list(loader)

    in_process, in_workers = epoch_batches(0, 1), epoch_batches(2, 1)
    assert len(in_process) == len(in_workers) == 3
    for a, b in zip(in_process, in_workers):
        np.testing.assert_array_equal(a["img"], b["img"])
        assert [m["flip"] for m in a["img_meta"]] == [m["flip"] for m in b["img_meta"]]
        for masks_a, masks_b in zip(a["gt_masks"], b["gt_masks"]):
            np.testing.assert_array_equal(masks_a, masks_b)
    assert in_process[0]["img"].ndim == 4 and isinstance(in_process[0]["gt_bboxes"], list)
    other_epoch = epoch_batches(0, 2)
    assert any(a["img"].shape != b["img"].shape or not np.array_equal(a["img"], b["img"])
               for a, b in zip(in_process, other_epoch))


def test_loader_resumes_mid_epoch(tmp_path):
    splits = make_synthetic_coco(str(tmp_path / "shapes"), num_train=4, num_val=0, size=64, seed=2)
    dataset = CocoDataset(splits["train"][0], TRAIN_PIPELINE, img_prefix=splits["train"][1])
    loader = build_dataloader(dataset, imgs_per_gpu=1, workers_per_gpu=0, seed=0)
    loader.set_epoch(3)
    full = list(loader)
    loader.set_epoch(3, start_batch=2)
    resumed = list(loader)
    assert len(resumed) == 2
    for a, b in zip(full[2:], resumed):
        np.testing.assert_array_equal(a["img"], b["img"])


# ---------------------------------------------------------------- synthetic dataset


def test_synthetic_dataset_is_deterministic_and_exact(tmp_path):
    first = make_synthetic_coco(str(tmp_path / "a"), num_train=8, num_val=2, size=128, seed=4)
    second = make_synthetic_coco(str(tmp_path / "b"), num_train=8, num_val=2, size=128, seed=4)
    with open(first["train"][0]) as f:
        coco = json.load(f)
    with open(second["train"][0]) as f:
        assert json.load(f) == coco
    with open(os.path.join(first["val"][1], "000002.jpg"), "rb") as a, \
            open(os.path.join(second["val"][1], "000002.jpg"), "rb") as b:
        assert a.read() == b.read()
    assert [c["name"] for c in coco["categories"]] == ["circle", "rectangle", "triangle"]
    kinds = {(a["category_id"], type(a["segmentation"]).__name__) for a in coco["annotations"]}
    assert {kind for _, kind in kinds} == {"dict", "list"}
    assert all(kind == ("dict" if cat == 1 else "list") for cat, kind in kinds)
    for ann in coco["annotations"]:
        mask = ann_to_mask(ann["segmentation"], 128, 128)
        ys, xs = np.nonzero(mask)
        assert ann["area"] == mask.sum()
        assert ann["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
    dataset = CocoDataset(first["train"][0], TRAIN_PIPELINE, img_prefix=first["train"][1])
    assert len(dataset) == 8 and dataset.CLASSES == ("circle", "rectangle", "triangle")


def test_synthetic_scene_paints_exactly_its_masks():
    img, objects = draw_scene(np.random.default_rng(0), 320)
    assert img.shape == (320, 320, 3) and img.dtype == np.uint8 and 1 <= len(objects) <= 4
    union = np.zeros((320, 320), int)
    for obj in objects:
        union += obj["mask"]
        x, y, w, h = obj["bbox"]
        assert 20 <= max(w, h) <= 160  # sizes of roughly 30-150 px at 320 px
        inside, ring = obj["mask"].astype(bool), cv2.dilate(obj["mask"], np.ones((5, 5), np.uint8)) > obj["mask"]
        # the painted object differs clearly from the background around it
        assert np.abs(img[inside].mean(axis=0) - img[ring].mean(axis=0)).max() > 20
    assert union.max() == 1  # shapes do not overlap
