from .decoupled_solo_head import DecoupledSOLOHead, DecoupledSOLOLightHead
from .mask_feat_head import MaskFeatHead
from .solo_head import SOLOHead
from .solov2_head import SOLOv2Head
from .solov2_light_head import SOLOv2LightHead

__all__ = ["DecoupledSOLOHead", "DecoupledSOLOLightHead", "MaskFeatHead", "SOLOHead",
           "SOLOv2Head", "SOLOv2LightHead"]
