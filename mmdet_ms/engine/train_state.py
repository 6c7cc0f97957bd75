"""Training checkpoints: network + optimizer state + where training stands, in one ``.ckpt``.

The optimizer's buffers (momentum ``accum.*``, ``stat.*``, ``global_step``) are stored under an
``optimizer.`` prefix; BN running statistics are network parameters and travel with it. Files are
written atomically (see ``utils.checkpoint.save_checkpoint``), so the newest complete file is
always usable after a crash.
"""
import glob
import os

from ..utils.checkpoint import CheckpointError, read_checkpoint, save_checkpoint

OPTIMIZER_PREFIX = "optimizer."


def _optimizer_state(optimizer):
    network_names = {p.name for p in optimizer.parameters}
    return [(OPTIMIZER_PREFIX + p.name, p.value()) for p in optimizer.get_parameters()
            if p.name not in network_names]


def save_train_state(path, network, optimizer, meta):
    """``meta``: epoch (completed), iteration, and anything JSON-able (config text, classes)."""
    params = [(p.name, p.value()) for p in network.get_parameters()] + _optimizer_state(optimizer)
    save_checkpoint(params, path, meta=meta)


def restore_train_state(path, network, optimizer):
    """Load network and optimizer state saved by ``save_train_state``; returns its meta."""
    content, meta = read_checkpoint(path)
    if "epoch" not in meta:
        raise CheckpointError(f"{path}: not a training checkpoint (no epoch/optimizer state); "
                              "use load_from to start from its weights")
    targets = {p.name: p for p in network.get_parameters()}
    targets.update({OPTIMIZER_PREFIX + p.name: p for p in optimizer.get_parameters()
                    if p.name not in {q.name for q in optimizer.parameters}})
    missing = sorted(set(targets) - set(content))
    if missing:
        raise CheckpointError(f"{path}: lacks {len(missing)} tensors of this network/optimizer, "
                              f"e.g. {', '.join(missing[:5])}")
    for name, param in targets.items():
        value = content[name].value()
        if tuple(value.shape) != tuple(param.shape):
            raise CheckpointError(f"{path}: {name} has shape {tuple(value.shape)}, "
                                  f"the network {tuple(param.shape)}")
        param.set_data(value.astype(param.dtype))
    return meta


def epoch_checkpoints(work_dir):
    """``epoch_N.ckpt`` files in ``work_dir``, newest (highest N) first."""
    def epoch_of(path):
        stem = os.path.basename(path)[len("epoch_"):-len(".ckpt")]
        return int(stem) if stem.isdigit() else -1
    paths = [p for p in glob.glob(os.path.join(work_dir, "epoch_*.ckpt")) if epoch_of(p) >= 0]
    return sorted(paths, key=epoch_of, reverse=True)
