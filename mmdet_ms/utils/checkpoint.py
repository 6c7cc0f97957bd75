"""Checkpoint files: reading the original PyTorch ``.pth``, mapping it onto the MindSpore network,
and loading/saving MindSpore ``.ckpt`` files with every key and shape checked.

Names: the network's cells carry the original module names, so a MindSpore parameter name maps to
the PyTorch one by its last part alone (norm layers: gamma/beta/moving_mean/moving_variance ↔
weight/bias/running_mean/running_var). ``num_batches_tracked`` has no MindSpore counterpart.
"""
import json
import os
import pickle
import tempfile

import mindspore as ms
import numpy as np

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


def read_torch_checkpoint(path):
    """``.pth`` → (state dict of numpy arrays, meta dict). Accepts mmcv files, bare state dicts and
    DataParallel ``module.`` prefixes."""
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        import torch
    except ImportError as err:
        raise CheckpointError("reading a PyTorch checkpoint needs torch: "
                              "pip install torch==2.13.0 (the CPU build)") from err
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # mmcv checkpoints may pickle objects in 'meta' or 'optimizer' that the safe loader
        # refuses; the tensors themselves are read the same way.
        print(f"note: {path} holds non-tensor objects; loading it with weights_only=False")
        blob = torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, OSError) as err:
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({err})") from err
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


def _mismatch_report(source, missing, unexpected, misshaped):
    lines = [f"{source} does not fit the network:"]
    for title, items in (("missing", missing), ("unexpected", unexpected),
                         ("wrong shape", misshaped)):
        if items:
            shown = ", ".join(items[:8]) + (f", ... ({len(items)} in all)" if len(items) > 8 else "")
            lines.append(f"  {title} ({len(items)}): {shown}")
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
            misshaped.append(f"{original} {tuple(value.shape)} vs network {tuple(param.shape)}")
            continue
        converted.append((param.name, value.astype(np.float32)))
    unexpected = [name for name in torch_state
                  if name not in used and not name.endswith(_IGNORED_TORCH_SUFFIXES)]
    if missing or unexpected or misshaped:
        raise CheckpointError(_mismatch_report(source, missing, unexpected, misshaped))
    return converted


def save_checkpoint(params, path, meta=None):
    """Write ``params`` ([(name, array or Tensor)] or a Cell) and a JSON ``meta`` atomically:
    a temporary file in the same folder, then a rename, so a crash never leaves a partial file."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    if isinstance(params, ms.nn.Cell):
        params = [(p.name, p.value()) for p in params.get_parameters()]
    entries = [{"name": name, "data": value if isinstance(value, ms.Tensor) else ms.Tensor(value)}
               for name, value in params]
    fd, tmp_path = tempfile.mkstemp(prefix=".tmp_", suffix=".ckpt", dir=folder)
    os.close(fd)
    os.remove(tmp_path)
    try:
        ms.save_checkpoint(entries, tmp_path, append_dict={META_KEY: json.dumps(meta or {})})
        os.replace(tmp_path, path)
    finally:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)


def read_checkpoint(path):
    """``.ckpt`` → (dict name → Parameter, meta dict)."""
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        content = ms.load_checkpoint(path)
    except (RuntimeError, ValueError, OSError) as err:
        raise CheckpointError(f"{path}: not a readable MindSpore checkpoint "
                              f"(truncated or corrupt?): {str(err).splitlines()[0]}") from err
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
    misshaped = [f"{name} {tuple(content[name].shape)} vs network {tuple(param.shape)}"
                 for name, param in params.items()
                 if name in content and tuple(content[name].shape) != tuple(param.shape)]
    if strict and (missing or unexpected or misshaped):
        raise CheckpointError(_mismatch_report(path, missing, unexpected, misshaped))
    skipped = missing + [m.split(" ")[0] for m in misshaped]
    for name, param in params.items():
        if name not in skipped:
            param.set_data(content[name].value().astype(param.dtype))
    meta["skipped"] = skipped
    return meta
