"""Checkpoint files: reading the original PyTorch ``.pth``, mapping it onto the MindSpore network,
and loading/saving MindSpore ``.ckpt`` files with every key and shape checked.

Names: the network's cells carry the original module names, so a MindSpore parameter name maps to
the PyTorch one by its last part alone (norm layers: gamma/beta/moving_mean/moving_variance ↔
weight/bias/running_mean/running_var). ``num_batches_tracked`` has no MindSpore counterpart.
"""
import json
import os
import pickle
import re
import sys
import tempfile

import mindspore as ms
import numpy as np

from .paths import apply_umask

_NORM_SUFFIXES = {
    "gamma": "weight",
    "beta": "bias",
    "moving_mean": "running_mean",
    "moving_variance": "running_var",
}
_IGNORED_TORCH_SUFFIXES = ("num_batches_tracked",)
META_KEY = "meta_json"  # a JSON string stored beside the parameters (classes, epoch, ...)


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable or does not fit the network."""


def torch_name(ms_name):
    """The original PyTorch name of a MindSpore parameter name."""
    prefix, _, leaf = ms_name.rpartition(".")
    return f"{prefix}.{_NORM_SUFFIXES[leaf]}" if leaf in _NORM_SUFFIXES else ms_name


_TORCH_LOAD_ERRORS = (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError,
                     AttributeError, ImportError, IndexError, KeyError, TypeError)


def _first_line(err):
    """An exception's first message line, or its class name when the message is empty."""
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def _weights_unpickler_detail(err):
    """The reason in torch's long 'Weights only load failed' message: 'Unsupported global: GLOBAL
    argparse.Namespace ...' for a pickled object, e.g. 'Unsupported operand 95' for noise."""
    text = str(err)
    marker = "WeightsUnpickler error:"
    if marker not in text:
        return _first_line(err)
    detail = text.split(marker, 1)[1].strip()
    return detail.split("\n", 1)[0].split(". ", 1)[0].rstrip(".") or _first_line(err)


UNSAFE_PICKLE_WARNING = ("WARNING: {path} is read with weights_only=False (--unsafe-pickle): "
                         "this runs whatever code the file holds; use it only for a file you trust")


def _torch_load(torch, path, unsafe_pickle=False):
    """``torch.load`` on the CPU; a file that is not a checkpoint raises CheckpointError.

    The safe loader reads tensors and plain containers only. mmcv checkpoints may pickle objects
    in 'meta' or 'optimizer' that it refuses; ``unsafe_pickle`` reads those with the full
    unpickler, which executes code from the file, so it is never tried unasked.
    """
    if unsafe_pickle:
        print(UNSAFE_PICKLE_WARNING.format(path=path), file=sys.stderr)
    try:
        return torch.load(path, map_location="cpu", weights_only=not unsafe_pickle)
    except pickle.UnpicklingError as err:
        detail = _weights_unpickler_detail(err)
        if unsafe_pickle or not detail.startswith("Unsupported global"):
            raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({detail})") from err
        raise CheckpointError(
            f"{path}: holds pickled objects besides tensors, which the safe loader refuses "
            f"({detail}); if you trust the file, convert it with --unsafe-pickle (that runs code "
            "from the file)") from err
    except _TORCH_LOAD_ERRORS as err:
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint "
                              f"({_first_line(err)})") from err


def read_torch_checkpoint(path, unsafe_pickle=False):
    """``.pth`` → (state dict of numpy arrays, meta dict). Accepts mmcv files, bare state dicts and
    DataParallel ``module.`` prefixes; ``unsafe_pickle``: see ``_torch_load``."""
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        import torch
    except ImportError as err:
        raise CheckpointError("reading a PyTorch checkpoint needs torch: "
                              "pip install torch==2.13.0 (the CPU build)") from err
    blob = _torch_load(torch, path, unsafe_pickle)
    if not isinstance(blob, dict):
        raise CheckpointError(f"{path}: expected a dict of tensors, got {type(blob).__name__}")
    state = blob.get("state_dict", blob.get("model", blob))
    meta = blob.get("meta") or {}
    arrays = {}
    for name, value in state.items():
        if not hasattr(value, "detach"):
            continue
        name = name[len("module."):] if name.startswith("module.") else name
        arrays[name] = value.detach().cpu().numpy()
    if not arrays:
        raise CheckpointError(f"{path}: holds no tensors")
    return arrays, dict(meta) if isinstance(meta, dict) else {}


_LINES_PER_KIND = 10
# The category conv of SOLO v1 / SOLOv2 and of Decoupled SOLO.
_CATE_WEIGHTS = ("bbox_head.solo_cate.weight", "bbox_head.dsolo_cate.weight")


def _class_count_hint(misshaped):
    """A hint line when the category conv's shape differs: a class count that does not match."""
    for name, file_shape, network_shape in misshaped:
        file_classes, config_classes = file_shape[0], network_shape[0]
        if name in _CATE_WEIGHTS and file_classes != config_classes:
            return (f"  hint: the checkpoint has {file_classes} classes "
                    f"(num_classes={file_classes + 1}) but the config has "
                    f"num_classes={config_classes + 1}: set model.bbox_head.num_classes")
    return None


def _mismatch_report(source, missing, unexpected, misshaped):
    """One line per problem (at most ``_LINES_PER_KIND`` of a kind), each naming the tensor.

    misshaped: [(name, shape in the file, shape in the network)].
    """
    lines = [f"{source} does not fit the network:"]
    problems = ([f"missing: {name}" for name in missing],
                [f"unexpected: {name}" for name in unexpected],
                [f"wrong shape: {name} {tuple(file_shape)} in the file, {tuple(network_shape)} "
                 f"in the network" for name, file_shape, network_shape in misshaped])
    for kind in problems:
        lines += [f"  {line}" for line in kind[:_LINES_PER_KIND]]
        if len(kind) > _LINES_PER_KIND:
            lines.append(f"  ... and {len(kind) - _LINES_PER_KIND} more "
                         f"{kind[0].split(':')[0]} tensors")
    hint = _class_count_hint(misshaped)
    if hint:
        lines.append(hint)
    return "\n".join(lines)


def convert_torch_state(torch_state, network, source="checkpoint"):
    """Map every network parameter to its original tensor; raise CheckpointError listing what is
    missing, unexpected or mis-shaped. Returns [(ms_name, np.ndarray)] in network order."""
    converted, missing, misshaped, used = [], [], [], set()
    for param in network.get_parameters():
        original = torch_name(param.name)
        if original not in torch_state:
            missing.append(original)
            continue
        used.add(original)
        value = torch_state[original]
        if tuple(value.shape) != tuple(param.shape):
            misshaped.append((original, tuple(value.shape), tuple(param.shape)))
            continue
        converted.append((param.name, value.astype(np.float32)))
    unexpected = [name for name in torch_state
                  if name not in used and not name.endswith(_IGNORED_TORCH_SUFFIXES)]
    if missing or unexpected or misshaped:
        raise CheckpointError(_mismatch_report(source, missing, unexpected, misshaped))
    return converted


TMP_PREFIX = ".tmp_"
# save_checkpoint's temporaries: mkstemp's 8 random characters, and MindSpore's own ``.tmp`` file
# that it writes before renaming it to the ``.ckpt`` name; save_results' have ``results_`` before;
# the trainer's link to the newest checkpoint is made as ``latest.ckpt.tmp<pid>``, then renamed.
_STALE_TMP_NAME = re.compile(r"\.tmp_(results_)?[a-z0-9_]{8}\.(ckpt|tmp|json|pkl)"
                             r"|latest\.ckpt\.tmp\d+")


def save_checkpoint(params, path, meta=None):
    """Write ``params`` ([(name, array or Tensor)] or a Cell) and a JSON ``meta`` atomically:
    a temporary file in the same folder, then a rename, so a crash never leaves a partial file."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    if isinstance(params, ms.nn.Cell):
        params = [(p.name, p.value()) for p in params.get_parameters()]
    entries = [{"name": name, "data": value if isinstance(value, ms.Tensor) else ms.Tensor(value)}
               for name, value in params]
    fd, tmp_path = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=".ckpt", dir=folder)
    os.close(fd)
    os.remove(tmp_path)
    try:
        ms.save_checkpoint(entries, tmp_path, append_dict={META_KEY: json.dumps(meta or {})})
        apply_umask(tmp_path)  # MindSpore leaves it read-only to its owner (0400)
        os.replace(tmp_path, path)
    finally:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)


def remove_stale_temporaries(folder, log=print):
    """Delete the temporaries that ``save_checkpoint``/``save_results`` leave in ``folder`` when
    killed mid-write (a complete file is only ever renamed into place). Only names of exactly
    their pattern are touched; returns the names removed."""
    if not os.path.isdir(folder):
        return []
    removed = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if _STALE_TMP_NAME.fullmatch(name) and os.path.isfile(path) and not os.path.islink(path):
            os.remove(path)
            removed.append(name)
    if removed:
        log(f"removed {len(removed)} temporary file(s) left in {folder} by an interrupted write: "
            f"{', '.join(removed)}")
    return removed


# torch.save writes a zip archive (since torch 1.6) or, before, a pickle (protocol 2: 0x80 0x02).
_TORCH_MAGICS = (b"PK\x03\x04", b"\x80\x02")


def _is_torch_file(path):
    with open(path, "rb") as f:
        return f.read(4).startswith(_TORCH_MAGICS)


def read_checkpoint(path):
    """``.ckpt`` → (dict name → Parameter, meta dict)."""
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such checkpoint file")
    if _is_torch_file(path):
        raise CheckpointError(f"{path} is a PyTorch checkpoint (.pth), not a MindSpore .ckpt: "
                              f"convert it with weight_convert.py first")
    try:
        content = ms.load_checkpoint(path)
    except (RuntimeError, ValueError, OSError) as err:
        raise CheckpointError(f"{path}: not a readable MindSpore checkpoint "
                              f"(truncated or corrupt?): {_first_line(err)}") from err
    meta_text = content.pop(META_KEY, "{}")
    try:
        meta = json.loads(meta_text if isinstance(meta_text, str) else "{}")
    except json.JSONDecodeError:
        meta = {}
    return content, meta


def load_checkpoint(network, path, strict=True):
    """Load ``path`` into ``network`` after checking names and shapes; returns the meta dict.

    ``strict=False`` skips (and reports in the returned meta's ``skipped``) parameters whose name
    or shape does not match, for fine-tuning with another class count.
    """
    content, meta = read_checkpoint(path)
    params = {p.name: p for p in network.get_parameters()}
    missing = [name for name in params if name not in content]
    extra_state = {k for k in content if k.startswith(("optimizer.", "state."))}
    unexpected = [k for k in content if k not in params and k not in extra_state]
    misshaped = [(name, tuple(content[name].shape), tuple(param.shape))
                 for name, param in params.items()
                 if name in content and tuple(content[name].shape) != tuple(param.shape)]
    if strict and (missing or unexpected or misshaped):
        raise CheckpointError(_mismatch_report(path, missing, unexpected, misshaped))
    skipped = missing + [name for name, _, _ in misshaped]
    for name, param in params.items():
        if name not in skipped:
            param.set_data(content[name].value().astype(param.dtype))
    meta["skipped"] = skipped
    return meta
