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

from ..utils.paths import apply_umask

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
        apply_umask(tmp_path)  # mkstemp made it 0600
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


def check_coco_records(records, source):
    """ValueError naming ``source`` and the first record that is not a COCO result record
    pycocotools can score: a missing or non-numeric score, ids that are not integers, a box
    that is not 4 numbers, a segmentation that is not an RLE of consistent size. Without this,
    pycocotools fails with a KeyError/TypeError deep inside, or scores garbage masks as AP 0."""
    for index, record in enumerate(records):
        problem = _record_problem(record)
        if problem:
            raise ValueError(f"{source}: record {index} {problem}")


def _is_number(value):
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _is_integer(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def rle_run_lengths(counts):
    """The run lengths of a compressed COCO RLE string (pycocotools' ``rleFrString``), or None
    when the string cannot be one: characters outside '0'..'o', a cut-off last run, or a
    negative run. pycocotools itself decodes such strings into some mask without a word."""
    chars = np.frombuffer(counts, np.uint8).astype(np.int64) - 48
    if chars.size == 0 or chars.min() < 0 or chars.max() > 63 or chars[-1] & 0x20:
        return None
    ends = np.flatnonzero((chars & 0x20) == 0)  # the last character of each run
    starts = np.concatenate([[0], ends[:-1] + 1])
    if (ends - starts).max() > 6:  # 35 bits and more: no mask is that large
        return None
    position = np.arange(chars.size) - np.repeat(starts, ends - starts + 1)  # 5-bit digit index
    digits = (chars & 0x1F) << (5 * position)
    values = np.add.reduceat(digits, starts)
    negative = (chars[ends] & 0x10) != 0
    values = values - negative * (1 << (5 * (ends - starts + 1)))
    # Runs from the fourth on are stored as differences to the run two before.
    runs = values.copy()
    runs[2::2] = np.cumsum(values[2::2])
    runs[1::2] = np.cumsum(values[1::2])
    return None if (runs < 0).any() else runs


def _rle_problem(rle):
    """What is wrong with a result's RLE ``segmentation``, or None."""
    if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
        return "has a 'segmentation' that is not an RLE dict {size: [h, w], counts: str}"
    size, counts = rle["size"], rle["counts"]
    if (not isinstance(size, (list, tuple)) or len(size) != 2
            or not all(_is_integer(v) and v > 0 for v in size)):
        return f"has an RLE 'size' {size!r:.40} that is not [height, width]"
    if isinstance(counts, str):
        counts = counts.encode("ascii", errors="replace")
    if not isinstance(counts, bytes):
        return "has an RLE whose 'counts' is not a compressed string"
    runs = rle_run_lengths(counts)
    if runs is None or int(runs.sum()) != size[0] * size[1]:
        return (f"has a corrupt RLE: its 'counts' do not describe a {size[0]}x{size[1]} mask")
    return None


def _record_problem(record):
    """What is wrong with one COCO result record read from a file, or None."""
    if not isinstance(record, dict):
        return f"is a {type(record).__name__}, not a dict"
    for key in ("image_id", "category_id"):
        if not _is_integer(record.get(key)):
            return f"has {key} {record.get(key)!r:.40}, not an integer" if key in record \
                else f"lacks '{key}'"
    if "score" not in record:
        return "lacks 'score'"
    if not _is_number(record["score"]) or not np.isfinite(record["score"]):
        return f"has score {record['score']!r:.40}, not a number"
    if "segmentation" not in record and "bbox" not in record:
        return "has neither 'segmentation' nor 'bbox'"
    box = record.get("bbox", [0, 0, 0, 0])
    if not isinstance(box, (list, tuple)) or len(box) != 4 or not all(map(_is_number, box)):
        return f"has bbox {box!r:.60}, not [x, y, w, h] numbers"
    if "segmentation" in record:
        return _rle_problem(record["segmentation"])
    return None
