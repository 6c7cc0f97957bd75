"""Data-parallel set-up. ``msrun`` (and Ascend's rank-table launch) set the environment that says a
process is one of several; only then is the collective backend initialised."""
import json
import os

import mindspore as ms
import mindspore.ops as ops
import numpy as np
from mindspore.communication import get_group_size, get_rank, init

_LAUNCHER_VARIABLES = ("MS_WORKER_NUM", "RANK_SIZE")


def launched_distributed():
    """True when a launcher started this process as one of several workers."""
    return any(int(os.environ.get(name, "1")) > 1 for name in _LAUNCHER_VARIABLES)


def init_distributed():
    """Initialise the collective backend (HCCL / NCCL / MindSpore's own on CPU) when launched as
    several workers; returns (rank, world_size)."""
    if not launched_distributed():
        return 0, 1
    init()
    return get_rank(), get_group_size()


def all_gather_objects(obj, world_size):
    """The JSON-able ``obj`` of every rank, in rank order (``[obj]`` in one process).

    Sent as bytes through two ``AllGather``s (their lengths, then the bytes padded to the
    longest), so it works across machines, unlike a file in a shared work dir. int32 carries the
    bytes: the backends gather it on every device.
    """
    if world_size == 1:
        return [obj]
    payload = np.frombuffer(json.dumps(obj).encode("utf-8"), np.uint8).astype(np.int32)
    gather = ops.AllGather()
    lengths = gather(ms.Tensor([payload.size], ms.int32)).asnumpy()  # (world_size,)
    padded = np.zeros(int(lengths.max()), np.int32)
    padded[:payload.size] = payload
    gathered = gather(ms.Tensor(padded)).asnumpy().reshape(world_size, -1)
    return [json.loads(row[:length].astype(np.uint8).tobytes().decode("utf-8"))
            for row, length in zip(gathered, lengths)]
