"""Feature pyramid network as in mmdetection 1.0 (no extra convs: each extra level is
``max_pool2d(x, 1, stride=2)`` of the one before).

The subsampling stays a pooling rather than ``x[:, :, ::2, ::2]``: MindSpore 2.8's CPU gradient of
a strided slice fails on odd sizes ("StridedSliceGrad ... memory out of bounds")."""
import mindspore.nn as nn
import mindspore.ops as ops
from mindspore.common.initializer import XavierUniform

from ...registry import NECKS, ConfigError
from ..layers import ConvModule


@NECKS.register_module()
class FPN(nn.Cell):
    def __init__(self, in_channels, out_channels, num_outs, start_level=0, end_level=-1,
                 add_extra_convs=False):
        super().__init__()
        if add_extra_convs:
            raise ConfigError("FPN add_extra_convs=True is not used by SOLOv2 and not supported")
        self.end_level = len(in_channels) if end_level == -1 else end_level + 1
        if num_outs < self.end_level - start_level:
            raise ConfigError(f"FPN num_outs={num_outs} is fewer than its input levels")
        self.start_level = start_level
        self.num_outs = num_outs
        levels = range(start_level, self.end_level)
        self.lateral_convs = nn.CellList(
            [ConvModule(in_channels[i], out_channels, 1, activation=False,
                        weight_init=XavierUniform()) for i in levels])
        self.fpn_convs = nn.CellList(
            [ConvModule(out_channels, out_channels, 3, padding=1, activation=False,
                        weight_init=XavierUniform()) for _ in levels])

    def construct(self, inputs):
        laterals = [conv(inputs[i + self.start_level]) for i, conv in enumerate(self.lateral_convs)]
        for i in range(len(laterals) - 1, 0, -1):
            coarse = laterals[i]
            laterals[i - 1] = laterals[i - 1] + ops.interpolate(
                coarse, size=(coarse.shape[2] * 2, coarse.shape[3] * 2), mode="nearest")
        outs = [conv(lateral) for conv, lateral in zip(self.fpn_convs, laterals)]
        for _ in range(self.num_outs - len(outs)):
            outs.append(ops.max_pool2d(outs[-1], kernel_size=1, stride=2))
        return tuple(outs)
