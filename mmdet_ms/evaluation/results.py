"""Detections as COCO result records, and their files (``.json`` or ``.pkl``).

A COCO result record is ``{image_id, category_id, score, segmentation, bbox}``: ``segmentation``
is an uncompressed-size RLE whose ``counts`` is a ``str`` (so the record is JSON-safe) and
``bbox`` is ``[x, y, w, h]`` of the mask's box, so bbox AP is measured on the boxes the masks
imply (SOLOv2 predicts no boxes of its own).
"""
import json
import os
import pickle
import tempfile

import numpy as np
import pycocotools.mask as mask_util

RESULT_FILE_SUFFIXES = (".json", ".pkl")


def encode_mask_rle(mask):
    """(H, W) bool/0-1 mask -> ``{'size': [H, W], 'counts': str}`` (pycocotools RLE)."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"encode_mask_rle expects a (H, W) mask, got shape {mask.shape}")
    # pycocotools wants a Fortran-ordered (H, W, N) uint8 array.
    rle = mask_util.encode(np.asfortranarray(mask[:, :, None], dtype=np.uint8))[0]
    return {"size": [int(rle["size"][0]), int(rle["size"][1])],
            "counts": rle["counts"].decode("ascii")}


def decode_mask_rle(rle):
    """Inverse of :func:`encode_mask_rle`: RLE (``counts`` str or bytes) -> (H, W) bool mask."""
    counts = rle["counts"]
    rle = {"size": list(rle["size"]),
           "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    return mask_util.decode(rle).astype(bool)


def xyxy_to_xywh(box):
    """``[x1, y1, x2, y2]`` (x2 exclusive) -> ``[x, y, w, h]`` as Python floats."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return [x1, y1, x2 - x1, y2 - y1]


def _instance_fields(result):
    """Yield (label, score, rle, bbox) per instance of an InstanceResult."""
    boxes = np.asarray(result.boxes)
    for index in range(len(result)):
        yield (int(result.labels[index]), float(result.scores[index]),
               encode_mask_rle(result.masks[index]), xyxy_to_xywh(boxes[index]))


def instances_to_coco(result, image_id, label2cat):
    """One COCO result record per instance of ``result`` (an InstanceResult) on ``image_id``.

    ``label2cat`` maps a 0-based label to the dataset's category id (a dict or a sequence).
    """
    return [{"image_id": int(image_id), "category_id": int(label2cat[label]), "score": score,
             "segmentation": rle, "bbox": bbox}
            for label, score, rle, bbox in _instance_fields(result)]


def instances_to_file_records(result, file_name, class_names, label2cat):
    """Records for a folder run: ``{file_name, category_id, category_name, score, bbox,
    segmentation}`` per instance (no COCO image id exists for a loose image file)."""
    return [{"file_name": file_name, "category_id": int(label2cat[label]),
             "category_name": class_names[label], "score": score, "bbox": bbox,
             "segmentation": rle}
            for label, score, rle, bbox in _instance_fields(result)]


def check_results_suffix(path):
    """The lower-case suffix of a results file name; ValueError unless .json or .pkl."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in RESULT_FILE_SUFFIXES:
        raise ValueError(f"{path}: a results file must end in .json or .pkl, got '{suffix}'")
    return suffix


def save_results(results_list, path):
    """Write a list of result records to ``path`` (.json or .pkl), atomically.

    The data goes to a temporary file in the same folder first and is then renamed over
    ``path``, so an interrupted run never leaves a truncated results file behind.
    """
    path = os.fspath(path)
    suffix = check_results_suffix(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, tmp_path = tempfile.mkstemp(dir=folder, prefix=".tmp_results_", suffix=suffix)
    try:
        with os.fdopen(handle, "wb") as tmp_file:
            if suffix == ".json":
                tmp_file.write(json.dumps(list(results_list)).encode("utf-8"))
            else:
                pickle.dump(list(results_list), tmp_file, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp_path, path)
    except BaseException:
        os.unlink(tmp_path)
        raise


def load_results(path):
    """Read a list of result records written by :func:`save_results`."""
    path = os.fspath(path)
    suffix = check_results_suffix(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"results file not found: {path}")
    try:
        if suffix == ".json":
            with open(path, encoding="utf-8") as result_file:
                records = json.load(result_file)
        else:
            with open(path, "rb") as result_file:
                records = pickle.load(result_file)
    except (json.JSONDecodeError, pickle.UnpicklingError, EOFError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not a readable results file ({err})") from err
    if not isinstance(records, list):
        raise ValueError(f"{path}: a results file holds a list of records, "
                         f"got {type(records).__name__}")
    return records
