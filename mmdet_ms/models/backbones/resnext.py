"""ResNeXt as in mmdetection 1.0 (``resnext.py``): ResNet whose bottlenecks convolve their 3x3 in
``groups`` groups of ``base_width`` channels per 64 planes (X101-64x4d: groups=64, base_width=4,
so layer1's 3x3 conv is 256 wide in 64 groups). Names as ResNet's, so checkpoints map by name."""
from ...registry import BACKBONES
from .resnet import ARCH_SETTINGS, _ResNetBase


@BACKBONES.register_module()
class ResNeXt(_ResNetBase):
    """Args as ``ResNet``'s, plus ``groups`` and ``base_width``; depth 50, 101 or 152."""

    arch_settings = {depth: ARCH_SETTINGS[depth] for depth in (50, 101, 152)}

    def __init__(self, depth, groups=1, base_width=4, num_stages=4, out_indices=(0, 1, 2, 3),
                 frozen_stages=-1, style="pytorch", norm_cfg=None, norm_eval=True, dcn=None,
                 stage_with_dcn=(False, False, False, False), base_channels=64):
        super().__init__(depth, num_stages, out_indices, frozen_stages, style, norm_cfg,
                         norm_eval, dcn, stage_with_dcn, base_channels, groups, base_width)
