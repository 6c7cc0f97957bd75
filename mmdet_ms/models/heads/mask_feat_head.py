"""SOLOv2's mask feature branch: FPN levels 0..3 fused at stride 4 into the map that the dynamic
kernels convolve (the "mask feature", E channels)."""
from collections import OrderedDict

import mindspore.nn as nn
import mindspore.ops as ops
from mindspore.common.initializer import Normal

from ...registry import HEADS, ConfigError
from ..layers import ConvModule, append_coord_channels


class Upsample2x(nn.Cell):
    """Bilinear ×2, ``align_corners=False`` (torch's ``nn.Upsample(scale_factor=2)``)."""

    def construct(self, x):
        return ops.interpolate(x, size=(x.shape[2] * 2, x.shape[3] * 2), mode="bilinear",
                               align_corners=False)


@HEADS.register_module()
class MaskFeatHead(nn.Cell):
    """Level 0: one conv; level i ≥ 1: i × (conv → upsample ×2); the deepest level also gets
    coordinate channels. The levels are summed and projected to ``num_classes`` channels.

    ``num_classes`` is the original's name for the output width E (it must equal the SOLOv2
    head's ``ins_out_channels``); ``out_channels`` is the width inside the branch.
    """

    def __init__(self, in_channels, out_channels, start_level, end_level, num_classes,
                 conv_cfg=None, norm_cfg=None):
        super().__init__()
        if conv_cfg is not None:
            raise ConfigError(f"MaskFeatHead conv_cfg={conv_cfg!r}: only plain convolutions are supported")
        if not 0 <= start_level <= end_level:
            raise ConfigError(f"MaskFeatHead levels {start_level}..{end_level} invalid")
        self.start_level = start_level
        self.end_level = end_level
        self.out_channels = num_classes
        init = Normal(0.01)
        levels = []
        for level in range(start_level, end_level + 1):
            layers = OrderedDict()
            if level == 0:
                layers["conv0"] = ConvModule(in_channels, out_channels, 3, padding=1,
                                             norm_cfg=norm_cfg, weight_init=init)
            for j in range(level):
                chn = in_channels if j > 0 or level != 3 else in_channels + 2
                chn = out_channels if j > 0 else chn
                layers[f"conv{j}"] = ConvModule(chn, out_channels, 3, padding=1,
                                                norm_cfg=norm_cfg, weight_init=init)
                layers[f"upsample{j}"] = Upsample2x()
            levels.append(nn.SequentialCell(layers))
        self.convs_all_levels = nn.CellList(levels)
        self.conv_pred = nn.SequentialCell([
            ConvModule(out_channels, num_classes, 1, norm_cfg=norm_cfg, weight_init=init)])

    def construct(self, inputs):
        """inputs: FPN levels start..end, (N, C, H_l, W_l) → (N, E, H_0, W_0)."""
        fused = self.convs_all_levels[0](inputs[0])
        for i in range(1, len(inputs)):
            feat = inputs[i]
            if i == 3:
                feat = append_coord_channels(feat)
            fused = fused + self.convs_all_levels[i](feat)
        return self.conv_pred(fused)
