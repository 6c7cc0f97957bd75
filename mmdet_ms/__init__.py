"""SOLOv2 for MindSpore: a port of WXinlong/SOLO (mmdetection 1.0) with its configs and checkpoints."""
import os
from importlib import metadata as _metadata


def _prepare_environment():
    """Environment that must be set before MindSpore is imported."""
    os.environ.setdefault("GLOG_v", "3")  # MindSpore's C++ INFO/WARNING lines drown the logs
    try:
        version = tuple(int(p) for p in _metadata.version("mindspore").split(".")[:2])
    except (_metadata.PackageNotFoundError, ValueError):
        return
    # MindSpore 2.9/2.10 pick oneDNN's reference convolution on AVX-512 CPUs (~200x slower);
    # capping the ISA restores the fast kernels. No effect on Ascend/GPU.
    if version >= (2, 9):
        os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")


_prepare_environment()

__version__ = "0.1.0"
