"""COCO-format instance segmentation dataset.

Class names come from the annotation file's categories (sorted by id), or from ``classes=``,
which selects and orders categories by name: no source file lists classes. Labels are 0-based
indices into ``CLASSES`` (the original's were 1-based, 0 meaning background).
"""
import contextlib
import io
import json
import os
import sys

import numpy as np
from pycocotools.coco import COCO

from ..registry import DATASETS, ConfigError
from ..utils.segmentation import UNUSABLE_DESCRIPTION, usable_segmentation
from .canvas import check_pad_to
from .transforms import Compose

# A training image whose pipeline returns None is replaced by another one of its group; a pipeline
# that drops this many in a row is broken rather than unlucky.
_MAX_REDRAWS = 100


def _read_json(ann_file):
    if not os.path.isfile(ann_file):
        raise FileNotFoundError(f"annotation file '{ann_file}' does not exist")
    with open(ann_file, encoding="utf-8") as f:
        text = f.read()
    if not text.strip():
        raise ValueError(f"annotation file '{ann_file}' is empty")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"annotation file '{ann_file}' is not valid JSON: {err}") from None


def load_coco(ann_file, require_annotations=True):
    """A pycocotools ``COCO`` for ``ann_file``, with one-line errors for files that are not COCO."""
    data = _read_json(ann_file)
    required = ["images", "categories"] + (["annotations"] if require_annotations else [])
    if not isinstance(data, dict) or any(not isinstance(data.get(key), list) for key in required):
        raise ValueError(f"annotation file '{ann_file}' is not in COCO format: it needs the lists "
                         f"{', '.join(required)}")
    if not data["categories"]:
        raise ValueError(f"annotation file '{ann_file}' has no categories")
    for img in data["images"]:
        missing = [key for key in ("id", "file_name", "width", "height") if key not in img]
        if missing:
            raise ValueError(f"annotation file '{ann_file}': image {img!r:.100} lacks {', '.join(missing)}")
    for ann in data.get("annotations") or []:
        if not isinstance(ann, dict) or "id" not in ann or "image_id" not in ann:
            raise ValueError(f"annotation file '{ann_file}': annotation {ann!r:.100} lacks id or "
                             "image_id")
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress lines
        coco.createIndex()
    return coco


def _select_categories(coco, classes, ann_file):
    """Category ids in label order: all sorted by id, or those named by ``classes`` in its order."""
    all_ids = sorted(coco.cats)
    if classes is None:
        return all_ids
    if isinstance(classes, str) or not isinstance(classes, (list, tuple)) or not classes:
        raise ConfigError(f"classes must be a non-empty list or tuple of category names, got {classes!r}")
    ids_by_name = {}
    for cat_id in all_ids:
        ids_by_name.setdefault(coco.cats[cat_id]["name"], []).append(cat_id)
    unknown = [name for name in classes if name not in ids_by_name]
    if unknown:
        raise ConfigError(f"classes {unknown} are not categories of '{ann_file}'; "
                          f"it has: {', '.join(ids_by_name)}")
    repeated = sorted({name for name in classes if list(classes).count(name) > 1})
    if repeated:
        raise ConfigError(f"classes lists {repeated} more than once")
    ambiguous = [name for name in classes if len(ids_by_name[name]) > 1]
    if ambiguous:
        raise ConfigError(f"classes {ambiguous} name several categories of '{ann_file}' each; "
                          f"rename them there so that each name is unique")
    return [ids_by_name[name][0] for name in classes]


@DATASETS.register_module()
class CocoDataset:
    """COCO-format dataset: images in ``img_prefix``, annotations in ``ann_file``.

    Args:
        ann_file: COCO json.
        pipeline: list of transform configs (or callables), see ``datasets.transforms``.
        img_prefix: folder of the images (joined with each ``file_name``).
        classes: optional list of category names to use, in label order (others are ignored).
        test_mode: no filtering; ``__getitem__`` runs the pipeline once without annotations.
        filter_empty_gt: in training, drop images with no usable (non-crowd, valid) instance.
        min_size: in training, drop images whose shorter side is below this (None: keep all).
        pad_to: how the training loader pads this dataset's batches (None, 'auto', (long, short)
            or a list of them, see `datasets.canvas`); checked and kept here, so that
            ``build_dataset(cfg.data.train)`` takes the key, and read by the train loader.
    """

    def __init__(self, ann_file, pipeline, img_prefix="", classes=None, test_mode=False,
                 filter_empty_gt=True, min_size=None, pad_to=None):
        check_pad_to(pad_to)
        self.pad_to = pad_to
        self.ann_file = ann_file
        self.img_prefix = img_prefix
        self.test_mode = test_mode
        self.filter_empty_gt = filter_empty_gt
        self.coco = load_coco(ann_file, require_annotations=not test_mode)
        self.cat_ids = _select_categories(self.coco, classes, ann_file)
        self.cat2label = {cat_id: label for label, cat_id in enumerate(self.cat_ids)}
        self.label2cat = dict(enumerate(self.cat_ids))
        self.CLASSES = tuple(self.coco.cats[cat_id]["name"] for cat_id in self.cat_ids)
        self.img_infos = [dict(info, filename=info["file_name"]) for info in self.coco.dataset["images"]]
        self._unusable_ann_ids = set()
        if not test_mode:
            self._drop_unusable_segmentations()
            self.img_infos = self._filtered(self.img_infos, min_size)
            if not self.img_infos:
                raise ValueError(f"annotation file '{ann_file}' has no training image with a usable "
                                 f"annotation (non-crowd, positive area, of the selected classes)")
        self.img_ids = [info["id"] for info in self.img_infos]
        self.flag = np.array([info["width"] / info["height"] > 1 for info in self.img_infos], dtype=np.uint8)
        self.pipeline = Compose(pipeline)

    def __len__(self):
        return len(self.img_infos)

    def __repr__(self):
        mode = "test" if self.test_mode else "train"
        return (f"{type(self).__name__}({self.ann_file!r}, {mode}, {len(self)} images, "
                f"{len(self.CLASSES)} classes)")

    def _filtered(self, img_infos, min_size):
        kept = []
        for info in img_infos:
            if min_size is not None and min(info["width"], info["height"]) < min_size:
                continue
            if self.filter_empty_gt and len(self._parse_ann_info(info)["labels"]) == 0:
                continue
            kept.append(info)
        return kept

    def get_ann_info(self, idx):
        """Annotations of image ``idx``: bboxes (N, 4) float32 [x1, y1, x2, y2] with x2 = x + w - 1,
        labels (N,) int64 0-based, bboxes_ignore (K, 4) for crowd regions, masks (N raw COCO
        segmentations)."""
        return self._parse_ann_info(self.img_infos[idx])

    def _parse_ann_info(self, img_info):
        bboxes, labels, masks, bboxes_ignore = [], [], [], []
        for ann in self.coco.imgToAnns.get(img_info["id"], []):
            self._check_ann(ann)
            if (ann.get("ignore", False) or ann["category_id"] not in self.cat2label
                    or ann["id"] in self._unusable_ann_ids):
                continue
            x, y, w, h = ann["bbox"]
            if ann["area"] <= 0 or w < 1 or h < 1:
                continue
            box = [x, y, x + w - 1, y + h - 1]
            if ann.get("iscrowd", False):
                bboxes_ignore.append(box)
                continue
            bboxes.append(box)
            labels.append(self.cat2label[ann["category_id"]])
            masks.append(ann["segmentation"])
        return dict(bboxes=np.array(bboxes, dtype=np.float32).reshape(-1, 4),
                    labels=np.array(labels, dtype=np.int64),
                    bboxes_ignore=np.array(bboxes_ignore, dtype=np.float32).reshape(-1, 4),
                    masks=masks)

    def _drop_unusable_segmentations(self):
        """Drop the polygons no mask can be made of and skip the annotations left without a
        usable segmentation (see ``utils.segmentation``), with one warning line for the file."""
        skipped, dropped_polygons = 0, 0
        for ann in self.coco.dataset["annotations"]:
            if ann.get("iscrowd", False) or "segmentation" not in ann:
                continue  # crowd regions are ignored boxes; a missing key is an error below
            img = self.coco.imgs.get(ann["image_id"], {})
            usable, dropped = usable_segmentation(ann["segmentation"], img.get("height"),
                                                  img.get("width"))
            dropped_polygons += dropped
            if usable is None:
                self._unusable_ann_ids.add(ann["id"])
                skipped += 1
            else:
                ann["segmentation"] = usable
        if skipped or dropped_polygons:
            print(f"WARNING: annotation file '{self.ann_file}': skipped {skipped} annotation(s) "
                  f"without a usable segmentation and dropped {dropped_polygons} unusable "
                  f"polygon(s) ({UNUSABLE_DESCRIPTION})", file=sys.stderr)

    def _check_ann(self, ann):
        missing = [key for key in ("category_id", "bbox", "area", "segmentation") if key not in ann]
        if missing:
            raise ValueError(f"annotation file '{self.ann_file}': annotation {ann.get('id')} lacks "
                             f"{', '.join(missing)}")
        if ann["category_id"] not in self.coco.cats:
            raise ValueError(f"annotation file '{self.ann_file}': annotation {ann.get('id')} has "
                             f"category_id {ann['category_id']}, which is not among its categories")
        box, area = ann["bbox"], ann["area"]
        if (not isinstance(box, (list, tuple)) or len(box) != 4
                or not all(isinstance(v, (int, float)) for v in (*box, area))):
            raise ValueError(f"annotation file '{self.ann_file}': annotation {ann.get('id')} has "
                             f"bbox {box!r:.60} and area {area!r:.20}; they must be [x, y, w, h] "
                             "and a number")

    def _results(self, idx, with_ann):
        results = dict(img_info=self.img_infos[idx], img_prefix=self.img_prefix,
                       bbox_fields=[], mask_fields=[])
        if with_ann:
            results["ann_info"] = self.get_ann_info(idx)
        return results

    def prepare_train_img(self, idx):
        return self.pipeline(self._results(idx, with_ann=True))

    def prepare_test_img(self, idx):
        return self.pipeline(self._results(idx, with_ann=False))

    def _rand_another(self, idx):
        """Another image of the same aspect group, drawn with numpy's global RNG (as mmdet)."""
        return int(np.random.choice(np.flatnonzero(self.flag == self.flag[idx])))

    def __getitem__(self, idx):
        if self.test_mode:
            return self.prepare_test_img(idx)
        for _ in range(_MAX_REDRAWS):
            data = self.prepare_train_img(idx)
            if data is not None:
                return data
            idx = self._rand_another(idx)
        raise RuntimeError(f"the training pipeline dropped {_MAX_REDRAWS} images in a row "
                           f"(last: index {idx} of '{self.ann_file}'); check the pipeline")
