"""COCO mask and box AP of result records, with pycocotools' summary and a per-class table."""
import contextlib
import io
import json
import os

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from ..utils.segmentation import UNUSABLE_DESCRIPTION, usable_segmentation

SUPPORTED_IOU_TYPES = ("segm", "bbox")
REFUSED_IOU_TYPES = ("proposal", "proposal_fast", "keypoints")
# The order of COCOeval.stats.
METRIC_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl",
                "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
# (title, IoU, area, maxDets) of each line of COCOeval.summarize(), for the empty-results case.
_SUMMARY_LINES = (
    ("Average Precision", "0.50:0.95", "all", 100), ("Average Precision", "0.50", "all", 100),
    ("Average Precision", "0.75", "all", 100), ("Average Precision", "0.50:0.95", "small", 100),
    ("Average Precision", "0.50:0.95", "medium", 100),
    ("Average Precision", "0.50:0.95", "large", 100),
    ("Average Recall", "0.50:0.95", "all", 1), ("Average Recall", "0.50:0.95", "all", 10),
    ("Average Recall", "0.50:0.95", "all", 100), ("Average Recall", "0.50:0.95", "small", 100),
    ("Average Recall", "0.50:0.95", "medium", 100), ("Average Recall", "0.50:0.95", "large", 100),
)
# The key each IoU type needs in a record, and the one it drops: without 'bbox', loadRes takes
# a segm record's area from its mask (with it, from the box, which misplaces small/medium/large).
_RECORD_KEYS = {"segm": ("segmentation", "bbox"), "bbox": ("bbox", "segmentation")}


def check_iou_types(iou_types):
    """``iou_types`` as a tuple without repeats; ValueError for anything but 'segm' and 'bbox'."""
    if isinstance(iou_types, str):
        iou_types = (iou_types,)
    iou_types = tuple(dict.fromkeys(iou_types))
    if not iou_types:
        raise ValueError("no evaluation type given; choose from: segm, bbox")
    for iou_type in iou_types:
        if iou_type in REFUSED_IOU_TYPES:
            raise ValueError(f"evaluation type '{iou_type}' is not available: SOLOv2 predicts no "
                             f"proposals or keypoints; use segm and/or bbox")
        if iou_type not in SUPPORTED_IOU_TYPES:
            raise ValueError(f"unknown evaluation type '{iou_type}'; choose from: segm, bbox")
    return iou_types


def _read_coco_json(ann_file):
    """The annotation file's dict, or a ValueError naming the file and what is wrong."""
    try:
        with open(ann_file, encoding="utf-8") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"annotation file {ann_file} is not valid JSON ({err})") from None
    if not isinstance(data, dict) or any(not isinstance(data.get(key), list)
                                         for key in ("images", "annotations", "categories")):
        raise ValueError(f"annotation file {ann_file} is not in COCO format: it needs the lists "
                         "images, annotations, categories")
    for key in ("images", "annotations", "categories"):
        if any(not isinstance(item, dict) or "id" not in item for item in data[key]):
            raise ValueError(f"annotation file {ann_file}: every entry of '{key}' needs an 'id'")
    return data


def load_coco_gt(ann_file):
    """pycocotools COCO of ``ann_file``, without its loading chatter; ``.ann_file`` names it."""
    ann_file = os.fspath(ann_file)
    if not os.path.isfile(ann_file):
        raise FileNotFoundError(f"annotation file not found: {ann_file}")
    coco = COCO()
    coco.dataset = _read_coco_json(ann_file)
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    coco.ann_file = ann_file
    return coco


def _check_records(coco_gt, coco_results, img_ids):
    source = f"annotation file {getattr(coco_gt, 'ann_file', '')}".rstrip()
    known_images = set(coco_gt.getImgIds())
    unknown_images = set(img_ids) - known_images
    if unknown_images:
        raise ValueError(f"image ids {sorted(unknown_images)[:5]} are not in the {source}")
    known_cats = set(coco_gt.getCatIds())
    for record in coco_results:
        if record["image_id"] not in known_images:
            raise ValueError(f"a result names image_id {record['image_id']}, which is not in "
                             f"the {source} ({len(known_images)} images)")
        if record["category_id"] not in known_cats:
            raise ValueError(f"a result names category_id {record['category_id']}, which is not "
                             f"in the {source} (known: {sorted(known_cats)})")
        img = coco_gt.imgs[record["image_id"]]
        size = record.get("segmentation", {}).get("size")
        if size is not None and list(size) != [img.get("height"), img.get("width")]:
            raise ValueError(f"a result's mask for image_id {record['image_id']} is "
                             f"{size[0]}x{size[1]} (h x w) but the {source} says that image is "
                             f"{img.get('height')}x{img.get('width')}")


def _gt_for_segm(coco_gt, log):
    """``coco_gt``, or when some of its annotations have a segmentation no mask can be made of
    (pycocotools fails on them inside COCOeval), a copy without those polygons and annotations,
    with one warning. Box evaluation keeps the full ground truth."""
    annotations, skipped, dropped_polygons = [], 0, 0
    for ann in coco_gt.dataset["annotations"]:
        img = coco_gt.imgs.get(ann.get("image_id"), {})
        usable, dropped = usable_segmentation(ann.get("segmentation"), img.get("height"),
                                              img.get("width"))
        dropped_polygons += dropped
        if usable is None:
            skipped += 1
        else:
            annotations.append(dict(ann, segmentation=usable))
    if not skipped and not dropped_polygons:
        return coco_gt
    source = getattr(coco_gt, "ann_file", "the ground truth")
    log(f"WARNING: {source}: {skipped} annotation(s) without a usable segmentation are not "
        f"scored by segm, {dropped_polygons} unusable polygon(s) dropped ({UNUSABLE_DESCRIPTION})")
    cleaned = COCO()
    cleaned.dataset = dict(coco_gt.dataset, annotations=annotations)
    with contextlib.redirect_stdout(io.StringIO()):
        cleaned.createIndex()
    return cleaned


def _records_for(iou_type, coco_results):
    """Shallow copies (loadRes adds keys to them) with the key this type needs and not the other."""
    needed, dropped = _RECORD_KEYS[iou_type]
    records = []
    for record in coco_results:
        if needed not in record:
            raise ValueError(f"{iou_type} evaluation needs '{needed}' in every result; "
                             f"a result for image {record.get('image_id')} has none")
        records.append({key: value for key, value in record.items() if key != dropped})
    return records


def _run_cocoeval(coco_gt, records, iou_type, img_ids):
    """COCOeval after evaluate() and accumulate(); returns (it, summarize()'s text)."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt = coco_gt.loadRes(records)
        coco_eval = COCOeval(coco_gt, coco_dt, iou_type)
        coco_eval.params.imgIds = list(img_ids)
        coco_eval.evaluate()
        coco_eval.accumulate()
    summary = io.StringIO()
    with contextlib.redirect_stdout(summary):
        coco_eval.summarize()
    return coco_eval, summary.getvalue().rstrip("\n")


def per_class_ap(coco_eval, coco_gt):
    """{class name: AP at IoU 0.50:0.95, all areas, 100 detections}; nan for a class with no GT."""
    # precision: (iou thresholds, recall points, classes, area ranges, max dets)
    precision = coco_eval.eval["precision"]
    ap_by_name = {}
    for index, cat_id in enumerate(coco_eval.params.catIds):
        values = precision[:, :, index, 0, -1]
        values = values[values > -1]
        name = coco_gt.cats[int(cat_id)]["name"]  # evaluate() made the ids np.int64
        ap_by_name[name] = float(np.mean(values)) if values.size else float("nan")
    return ap_by_name


def format_summary(stats):
    """The 12 lines of COCOeval.summarize() for given ``stats``."""
    lines = []
    for (title, iou, area, max_dets), value in zip(_SUMMARY_LINES, stats):
        short = "(AP)" if title.startswith("Average Precision") else "(AR)"
        lines.append(f" {title:<18} {short} @[ IoU={iou:<9} | area={area:>6s} | "
                     f"maxDets={max_dets:>3d} ] = {value:0.3f}")
    return "\n".join(lines)


def format_per_class_table(ap_by_name, pairs_per_row=3):
    """Fixed-width table of (category, AP) pairs, ``pairs_per_row`` pairs side by side."""
    if not ap_by_name:
        return "(no categories)"
    name_width = max(len("category"), *(len(name) for name in ap_by_name))
    cells = [f"{name:<{name_width}}  {'n/a' if np.isnan(ap) else f'{ap:.3f}':>5}"
             for name, ap in ap_by_name.items()]
    header_cell = f"{'category':<{name_width}}  {'AP':>5}"
    columns = min(pairs_per_row, len(cells))
    separator = " | "
    rule = separator.join(["-" * len(header_cell)] * columns)
    rows = [separator.join([header_cell] * columns), rule]
    for start in range(0, len(cells), columns):
        rows.append(separator.join(cells[start:start + columns]))
    return "\n".join(rows)


def evaluate_coco(coco_gt, coco_results, iou_types=SUPPORTED_IOU_TYPES, classwise=True,
                  img_ids=None, log=print):
    """COCO metrics of result records against ground truth.

    Args:
        coco_gt: pycocotools ``COCO`` (or the path of an annotation file).
        coco_results: list of COCO result records (see ``results.instances_to_coco``).
        iou_types: any of 'segm', 'bbox'.
        classwise: also compute (and log) AP per class.
        img_ids: the images that were run; only those are scored, so an image the model saw
            but found nothing on counts as misses. None: every image of ``coco_gt``.
        log: called with each block of text to print.

    Returns:
        ``{'segm': {'AP': .., ..., 'ARl': ..}, 'segm_per_class': {name: AP}, 'bbox': ...}``;
        the values are COCOeval's (-1 where the ground truth has nothing to score, e.g. no
        small objects). With no result records every metric is 0.
    """
    iou_types = check_iou_types(iou_types)
    if isinstance(coco_gt, (str, os.PathLike)):
        coco_gt = load_coco_gt(coco_gt)
    img_ids = sorted(coco_gt.getImgIds()) if img_ids is None else list(img_ids)
    _check_records(coco_gt, coco_results, img_ids)
    metrics = {}
    for iou_type in iou_types:
        records = _records_for(iou_type, coco_results)
        log(f"Evaluating {iou_type} on {len(img_ids)} images, {len(records)} results")
        if records:
            gt = _gt_for_segm(coco_gt, log) if iou_type == "segm" else coco_gt
            coco_eval, summary = _run_cocoeval(gt, records, iou_type, img_ids)
            stats = [float(value) for value in coco_eval.stats]
            class_aps = per_class_ap(coco_eval, coco_gt) if classwise else None
        else:
            # pycocotools' loadRes([]) raises IndexError: report zeros instead.
            log(f"WARNING: no results to evaluate: every {iou_type} metric is 0")
            stats = [0.0] * len(METRIC_NAMES)
            summary = format_summary(stats)
            class_aps = ({cat["name"]: 0.0 for cat in coco_gt.loadCats(coco_gt.getCatIds())}
                         if classwise else None)
        log(summary)
        metrics[iou_type] = dict(zip(METRIC_NAMES, stats))
        if classwise:
            log(format_per_class_table(class_aps))
            metrics[f"{iou_type}_per_class"] = class_aps
    return metrics
