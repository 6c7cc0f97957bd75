"""The original's ``SOLOv2LightHead`` (used by solov2_light_512_dcn_r50): ``SOLOv2Head`` whose
towers put the deformable conv (``use_dcn_in_tower``) in their last layer only; everything else,
parameter names included, is SOLOv2Head's."""
from ...registry import HEADS
from .solov2_head import SOLOv2Head


@HEADS.register_module()
class SOLOv2LightHead(SOLOv2Head):
    dcn_in_last_tower_conv_only = True
