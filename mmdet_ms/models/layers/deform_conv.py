"""Deformable convolutions v1 and v2 as mmdetection 1.0 packs them (``mmdet/ops/dcn``).

``DeformConvPack`` (config ``type='DCN'``) and ``ModulatedDeformConvPack`` (``type='DCNv2'``)
predict their sampling offsets with a plain conv ``conv_offset`` of the main conv's kernel,
stride and padding, and carry the original's parameter names: ``<name>.weight`` (and
``<name>.bias`` for DCNv2 with a bias), ``<name>.conv_offset.weight`` / ``.bias``, so checkpoints
map one to one.

Offset layout. The original's CUDA kernel reads, per deformable group ``g`` and kernel point
``k = i * kw + j``, the offsets at channels ``g*2K + 2k`` (dy) and ``g*2K + 2k + 1`` (dx), and
the DCNv2 mask at ``g*K + k`` (K = kh*kw). ``ops.deformable_conv2d`` takes one tensor of three
blocks of dg*K channels: all dx, then all dy, then the mask, each block indexed ``g*K + k``.
``_to_ms_offsets`` rearranges the first into the second; the sampling itself (bilinear, zero
outside the map, no sample unless -1 < y < H and -1 < x < W) is the same in both.
"""
import math

import mindspore.nn as nn
import mindspore.ops as ops
from mindspore import Parameter
from mindspore.common.initializer import Uniform, initializer

from ...registry import ConfigError


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _to_ms_offsets(offset, mask):
    """Original layout → ``ops.deformable_conv2d``'s.

    offset: (N, dg*K*2, Ho, Wo), (dy, dx) interleaved per kernel point; mask: (N, dg*K, Ho, Wo).
    Returns (N, 3*dg*K, Ho, Wo): dx block, dy block, mask block.
    """
    batch, channels, height, width = offset.shape
    pairs = offset.reshape(batch, channels // 2, 2, height, width)  # (N, dg*K, (dy, dx), Ho, Wo)
    return ops.concat((pairs[:, :, 1], pairs[:, :, 0], mask), axis=1)


def deform_conv2d(x, offset, mask, weight, bias=None, stride=(1, 1), padding=(0, 0),
                  dilation=(1, 1), groups=1, deformable_groups=1):
    """The original's ``modulated_deform_conv`` with its offset layout (mask of ones: DCN v1).

    x: (N, C_in, H, W); offset: (N, dg*K*2, Ho, Wo) with (dy, dx) per kernel point; mask:
    (N, dg*K, Ho, Wo); weight: (C_out, C_in/groups, kh, kw). Returns (N, C_out, Ho, Wo).
    """
    return ops.deformable_conv2d(
        x, weight, _to_ms_offsets(offset, mask), (weight.shape[2], weight.shape[3]),
        (1, 1) + tuple(stride), (padding[0], padding[0], padding[1], padding[1]), bias=bias,
        dilations=(1, 1) + tuple(dilation), groups=groups, deformable_groups=deformable_groups,
        modulated=True)


class _DeformConvBase(nn.Cell):
    """Main weight and ``conv_offset``; subclasses say how many offset channels and use them."""

    offset_channels_per_point = None  # 2 for DCN (dy, dx), 3 for DCNv2 (+ mask)

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, deformable_groups=1, has_bias=False, weight_init=None,
                 offset_init="zeros"):
        super().__init__()
        kernel_size, stride = _pair(kernel_size), _pair(stride)
        padding, dilation = _pair(padding), _pair(dilation)
        if in_channels % groups or out_channels % groups:
            raise ConfigError(f"{type(self).__name__}: in_channels={in_channels} and "
                              f"out_channels={out_channels} must divide by groups={groups}")
        if in_channels % deformable_groups:
            raise ConfigError(f"{type(self).__name__}: in_channels={in_channels} must divide by "
                              f"deformable_groups={deformable_groups}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.groups = kernel_size, groups
        self.deformable_groups = deformable_groups
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.num_points = kernel_size[0] * kernel_size[1]
        # The original's reset_parameters: U(-1/sqrt(n), 1/sqrt(n)) with n = in_channels * kh * kw
        # (all input channels, whatever the groups).
        weight_init = weight_init or Uniform(1.0 / math.sqrt(in_channels * self.num_points))
        self.weight = Parameter(initializer(
            weight_init, (out_channels, in_channels // groups) + kernel_size), name="weight")
        self.bias = (Parameter(initializer("zeros", (out_channels,)), name="bias")
                     if has_bias else None)
        # The offsets are predicted at the main conv's stride and padding, without its dilation,
        # and start at zero (the original's init_offset): DCN starts as the plain conv, DCNv2 as
        # half of it (mask sigmoid(0) = 0.5).
        self.conv_offset = nn.Conv2d(
            in_channels, deformable_groups * self.offset_channels_per_point * self.num_points,
            kernel_size, stride=stride, pad_mode="pad",
            padding=(padding[0], padding[0], padding[1], padding[1]), has_bias=True,
            weight_init=offset_init, bias_init="zeros")

    def _deform(self, x, offset, mask):
        return deform_conv2d(x, offset, mask, self.weight, self.bias, self.stride, self.padding,
                             self.dilation, self.groups, self.deformable_groups)


class DeformConvPack(_DeformConvBase):
    """DCN v1 (``DeformConvPack``): offsets only, no modulation; never a bias (as the original,
    which asserts ``not bias``)."""

    offset_channels_per_point = 2

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, deformable_groups=1, has_bias=False, weight_init=None,
                 offset_init="zeros"):
        if has_bias:
            raise ConfigError("conv_cfg type 'DCN' (DeformConvPack) has no bias; "
                              "use a norm after it or type 'DCNv2'")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, deformable_groups, False, weight_init, offset_init)

    def construct(self, x):
        """(N, C_in, H, W) → (N, C_out, Ho, Wo)."""
        offset = self.conv_offset(x)  # (N, dg*K*2, Ho, Wo), original layout
        mask = ops.ones((offset.shape[0], offset.shape[1] // 2, offset.shape[2], offset.shape[3]),
                        offset.dtype)
        return self._deform(x, offset, mask)


class ModulatedDeformConvPack(_DeformConvBase):
    """DCN v2 (``ModulatedDeformConvPack``): ``conv_offset``'s output in three equal chunks
    (o1, o2, m); the offsets are cat(o1, o2) in the (dy, dx) layout, the mask sigmoid(m)."""

    offset_channels_per_point = 3

    def construct(self, x):
        """(N, C_in, H, W) → (N, C_out, Ho, Wo)."""
        out = self.conv_offset(x)  # (N, 3*dg*K, Ho, Wo)
        split = 2 * self.deformable_groups * self.num_points
        offset, mask = out[:, :split], ops.sigmoid(out[:, split:])
        return self._deform(x, offset, mask)


# mmdetection's conv_cfg type names
DCN, DCNv2 = DeformConvPack, ModulatedDeformConvPack
CONV_TYPES = {"DCN": DCN, "DCNv2": DCNv2}
