from .solov2 import SOLOv2

__all__ = ["SOLOv2"]
