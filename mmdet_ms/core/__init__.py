"""Pure array functions around the network: instances, Matrix NMS, post-processing.

``matrix_nms`` is imported from ``mmdet_ms.core.matrix_nms``: exporting the function here would
hide the module of the same name.
"""
from .instances import InstanceResult
from .postprocess import get_seg_batch, get_seg_single, resize_bilinear

__all__ = ["InstanceResult", "get_seg_batch", "get_seg_single", "resize_bilinear"]
