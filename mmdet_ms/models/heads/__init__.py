from .mask_feat_head import MaskFeatHead
from .solov2_head import SOLOv2Head

__all__ = ["MaskFeatHead", "SOLOv2Head"]
