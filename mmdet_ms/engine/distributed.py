"""Data-parallel set-up. ``msrun`` (and Ascend's rank-table launch) set the environment that says a
process is one of several; only then is the collective backend initialised."""
import os

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
