from .solo import SOLO
from .solov2 import SOLOv2

__all__ = ["SOLO", "SOLOv2"]
