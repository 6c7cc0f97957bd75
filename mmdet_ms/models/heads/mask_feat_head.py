"""SOLOv2's mask feature branch: FPN levels 0..3 fused at stride 4 into the map that the dynamic
kernels convolve (the "mask feature", E channels)."""
from collections import OrderedDict

import mindspore.nn as nn
import mindspore.ops as ops
from mindspore.common.initializer import Normal, initializer

from ...registry import HEADS, ConfigError
from ..layers import ConvModule, append_coord_channels
from ..layers.deform_conv import CONV_TYPES as DEFORM_CONV_TYPES


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
    head's ``ins_out_channels``); ``out_channels`` is the width inside the branch. ``conv_cfg``
    (e.g. ``dict(type='DCNv2')``) applies to every conv, the final 1x1 included.
    """

    def __init__(self, in_channels, out_channels, start_level, end_level, num_classes,
                 conv_cfg=None, norm_cfg=None):
        super().__init__()
        if not 0 <= start_level <= end_level:
            raise ConfigError(f"MaskFeatHead levels {start_level}..{end_level} invalid")
        self.start_level = start_level
        self.end_level = end_level
        self.out_channels = num_classes
        # The original's init_weights draws N(0, 0.01) for every nn.Conv2d: the plain convs, and
        # with conv_cfg the deformable convs' conv_offset, whose main weights keep their own init.
        init = Normal(0.01)
        deformable = (conv_cfg or {}).get("type") in DEFORM_CONV_TYPES

        def conv_module(chn_in, chn_out, kernel_size, padding):
            module = ConvModule(chn_in, chn_out, kernel_size, padding=padding, norm_cfg=norm_cfg,
                                weight_init=None if deformable else init, conv_cfg=conv_cfg)
            if deformable:
                offset_weight = module.conv.conv_offset.weight
                offset_weight.set_data(initializer(init, offset_weight.shape))
            return module

        levels = []
        for level in range(start_level, end_level + 1):
            layers = OrderedDict()
            if level == 0:
                layers["conv0"] = conv_module(in_channels, out_channels, 3, 1)
            for j in range(level):
                chn = in_channels if j > 0 or level != 3 else in_channels + 2
                chn = out_channels if j > 0 else chn
                layers[f"conv{j}"] = conv_module(chn, out_channels, 3, 1)
                layers[f"upsample{j}"] = Upsample2x()
            levels.append(nn.SequentialCell(layers))
        self.convs_all_levels = nn.CellList(levels)
        self.conv_pred = nn.SequentialCell([conv_module(out_channels, num_classes, 1, 0)])

    def construct(self, inputs):
        """inputs: FPN levels start..end, (N, C, H_l, W_l) → (N, E, H_0, W_0)."""
        fused = self.convs_all_levels[0](inputs[0])
        for i in range(1, len(inputs)):
            feat = inputs[i]
            if i == 3:
                feat = append_coord_channels(feat)
            fused = fused + self.convs_all_levels[i](feat)
        return self.conv_pred(fused)
