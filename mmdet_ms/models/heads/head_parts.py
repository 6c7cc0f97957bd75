"""What the SOLO family's heads share: the towers' norm, the prior-initialised output conv and
the five level inputs from the FPN maps."""
import math

import mindspore.ops as ops
from mindspore.common.initializer import Constant, Normal, initializer

from ..layers.conv_module import conv2d

# The original builds its towers with GN(32) whatever the config's norm_cfg says.
HEAD_NORM = dict(type="GN", num_groups=32, requires_grad=True)
PRIOR_PROB = 0.01  # focal-loss prior: every class (and every mask pixel) starts at p = 0.01


def prior_bias_conv(in_channels, out_channels, kernel_size):
    """A conv with N(0, 0.01) weights and the bias of ``PRIOR_PROB`` (``bias_init_with_prob``)."""
    conv = conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, has_bias=True,
                  weight_init=Normal(0.01))
    conv.bias.set_data(initializer(Constant(-math.log((1 - PRIOR_PROB) / PRIOR_PROB)),
                                   conv.bias.shape))
    return conv


def split_feats(feats):
    """Five FPN maps → the head's five inputs: P2 halved, P3..P5, P6 resized to P5's size."""
    p2, p5, p6 = feats[0], feats[3], feats[4]
    return (
        ops.interpolate(p2, size=(p2.shape[2] // 2, p2.shape[3] // 2), mode="bilinear",
                        align_corners=False),
        feats[1], feats[2], p5,
        ops.interpolate(p6, size=(p5.shape[2], p5.shape[3]), mode="bilinear",
                        align_corners=False),
    )
