"""The loops that run a detector over many images: a folder (``run.py``: drawn copies and one
``results.json``) and a COCO-style data set (``valuation.py`` and evaluation during training:
COCO result records)."""
import os
import pathlib
import sys
import time
from dataclasses import dataclass, field

from tqdm import tqdm

from ..datasets.transforms.loading import ImageReadError, read_image
from ..engine.distributed import all_gather_objects
from ..evaluation.coco_eval import evaluate_coco
from ..evaluation.results import instances_to_coco, instances_to_file_records, save_results
from ..utils.visualization import draw_instances, write_image
from .inference import inference_detector

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
RESULTS_FILE_NAME = "results.json"


@dataclass
class FolderRunSummary:
    """What a folder run did; ``str()`` is its one-line summary."""

    images: int = 0
    detections: int = 0
    skipped: list = field(default_factory=list)  # the relative paths that could not be read
    total_seconds: float = 0.0
    model_seconds: float = 0.0

    def __str__(self):
        per_image = self.total_seconds / self.images if self.images else 0.0
        model_per_image = self.model_seconds / self.images if self.images else 0.0
        return (f"{self.images} images, {self.detections} detections, {len(self.skipped)} "
                f"skipped, {per_image:.3f} s/image ({model_per_image:.3f} s in the model)")


def _log_to_stderr(message):
    """Print above the progress bar (which tqdm draws on stderr) without breaking it."""
    tqdm.write(message, file=sys.stderr)


def _is_image_file(name):
    return os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


def list_images(image_dir, recursive=False, exclude_dir=None):
    """Sorted paths relative to ``image_dir`` of its .jpg/.jpeg/.png/.bmp files (any case).

    ``recursive``: descend into sub-folders, except ``exclude_dir`` (e.g. an output folder
    inside ``image_dir``, so a second run does not read the first one's drawings).
    """
    image_dir = os.fspath(image_dir)
    if not os.path.isdir(image_dir):
        raise FileNotFoundError(f"image folder not found: {image_dir}")
    if not recursive:
        return sorted(name for name in os.listdir(image_dir)
                      if _is_image_file(name) and os.path.isfile(os.path.join(image_dir, name)))
    excluded = os.path.realpath(exclude_dir) if exclude_dir else None
    found = []
    for folder, sub_dirs, file_names in os.walk(image_dir):
        sub_dirs[:] = [name for name in sub_dirs
                       if os.path.realpath(os.path.join(folder, name)) != excluded]
        relative_folder = os.path.relpath(folder, image_dir)
        found += [os.path.normpath(os.path.join(relative_folder, name))
                  for name in file_names if _is_image_file(name)]
    return sorted(found)


def folder_category_ids(class_names, dataset=None):
    """label -> category id for a folder run's records.

    The ids of ``dataset`` (the config's test data set) when it names the same classes in the
    same order, so the records match that annotation file; otherwise ``label + 1``.
    """
    if dataset is not None and tuple(dataset.CLASSES) == tuple(class_names):
        return [dataset.label2cat[label] for label in range(len(class_names))]
    return [label + 1 for label in range(len(class_names))]


def _read_images(image_dir, relative_paths, summary, log):
    """[(relative path, BGR image)] of the readable files; the others are logged and recorded
    in ``summary.skipped``."""
    loaded = []
    for relative_path in relative_paths:
        try:
            loaded.append((relative_path, read_image(os.path.join(image_dir, relative_path))))
        except ImageReadError as err:
            log(f"skipped: {err}")
            summary.skipped.append(relative_path)
    return loaded


def run_folder(model, image_dir, out_dir, class_names, category_ids, score_thr=0.3,
               recursive=False, log=_log_to_stderr, batch_size=1):
    """Detect, draw and record every image of ``image_dir``; returns a FolderRunSummary.

    Each image is drawn into ``out_dir`` under its relative path; ``out_dir/results.json``
    holds one record per instance scoring ``>= score_thr`` (see
    ``results.instances_to_file_records``; ``category_ids[label]`` gives its id). A file that
    cannot be decoded is reported with ``log`` and skipped. ``batch_size`` images are read at a
    time and those of the same padded size go through the network together
    (``mmdet_ms.apis.inference_batch``).
    """
    if batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {batch_size}")
    image_dir, out_dir = os.fspath(image_dir), os.fspath(out_dir)
    if os.path.realpath(image_dir) == os.path.realpath(out_dir):
        raise ValueError(f"--out {out_dir} is the image folder: the drawings would overwrite "
                         f"the images")
    relative_paths = list_images(image_dir, recursive, exclude_dir=out_dir)
    if not relative_paths:
        log(f"WARNING: no {'/'.join(IMAGE_SUFFIXES)} file in {image_dir}"
            f"{'' if recursive else ' (use --recursive for sub-folders)'}")
    summary, records = FolderRunSummary(), []
    started = time.perf_counter()
    progress = tqdm(total=len(relative_paths), desc="images", unit="img")
    for start in range(0, len(relative_paths), batch_size):
        chunk = relative_paths[start:start + batch_size]
        loaded = _read_images(image_dir, chunk, summary, log)
        model_started = time.perf_counter()
        results = inference_detector(model, [image for _, image in loaded], batch_size=batch_size)
        summary.model_seconds += time.perf_counter() - model_started
        for (relative_path, image), result in zip(loaded, results):
            result = result.select(result.scores >= score_thr)
            write_image(os.path.join(out_dir, relative_path),
                        draw_instances(image, result, class_names, score_thr))
            records += instances_to_file_records(result, pathlib.PurePath(relative_path).as_posix(),
                                                 class_names, category_ids)
            summary.images += 1
            summary.detections += len(result)
        progress.update(len(chunk))
    progress.close()
    save_results(records, os.path.join(out_dir, RESULTS_FILE_NAME))
    summary.total_seconds = time.perf_counter() - started
    return summary


def _check_image_size(image, img_info, path):
    height, width = image.shape[:2]
    if (height, width) != (int(img_info["height"]), int(img_info["width"])):
        raise ValueError(f"image {path} is {height}x{width} (h x w) but its annotation says "
                         f"{img_info['height']}x{img_info['width']}")


def run_dataset(model, dataset, show_dir=None, score_thr=0.3, rank=0, world_size=1):
    """COCO result records of ``model`` on every image of ``dataset``, in data set order.

    Each image's masks are RLE-encoded as soon as it is done: full-size masks of a whole
    data set (COCO val: 5000 images x up to 100 masks) would not fit in memory.

    Args:
        dataset: a test-mode CocoDataset (``img_infos``, ``img_prefix``, ``label2cat``).
        show_dir: if given, each image is drawn there under its file name.
        score_thr: the lowest score drawn in ``show_dir`` (every instance is recorded).
        rank, world_size: run only images ``rank``, ``rank + world_size``, ... (one share of a
            data-parallel evaluation; the progress bar on rank 0).
    """
    records = []
    img_infos = dataset.img_infos[rank::world_size]
    for img_info in tqdm(img_infos, desc="evaluating", unit="img", disable=rank != 0):
        path = os.path.join(dataset.img_prefix or "", img_info["filename"])
        image = read_image(path)
        _check_image_size(image, img_info, path)
        result = inference_detector(model, image)
        records += instances_to_coco(result, img_info["id"], dataset.label2cat)
        if show_dir is not None:
            write_image(os.path.join(show_dir, img_info["filename"]),
                        draw_instances(image, result, dataset.CLASSES, score_thr))
    return records


def metric_names(iou_type):
    """mmdetection's log names of the six AP numbers of an IoU type."""
    return {f"{iou_type}_mAP{suffix}": name for suffix, name in
            (("", "AP"), ("_50", "AP50"), ("_75", "AP75"), ("_s", "APs"), ("_m", "APm"),
             ("_l", "APl"))}


def evaluate_dataset(model, dataset, iou_types, rank=0, world_size=1, log=print):
    """COCO AP of ``model`` on ``dataset``, each rank running its share of the images and rank 0
    scoring all of them; ``{'segm_mAP': .., 'segm_mAP_50': .., ...}`` on rank 0, {} elsewhere."""
    records = run_dataset(model, dataset, rank=rank, world_size=world_size)
    shares = all_gather_objects(records, world_size)
    if rank != 0:
        return {}
    all_records = [record for share in shares for record in share]
    metrics = evaluate_coco(dataset.coco, all_records, iou_types=iou_types,
                            img_ids=dataset.img_ids, log=log)
    return {key: metrics[iou_type][name] for iou_type in iou_types
            for key, name in metric_names(iou_type).items()}
