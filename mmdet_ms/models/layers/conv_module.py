"""Conv + norm + ReLU, named as mmdetection 1.0's ``ConvModule`` so checkpoints map one to one.

Parameter names follow MindSpore (``gamma``/``beta``/``moving_mean``/``moving_variance`` for norms);
the submodule names (``conv``, ``bn``, ``gn``) follow the original, e.g.
``bbox_head.kernel_convs.0.conv.weight`` and ``bbox_head.kernel_convs.0.gn.gamma``.
"""
import mindspore.nn as nn
from mindspore.common.initializer import HeNormal

from ...registry import ConfigError
from .group_norm import GroupNorm

_NORM_ATTRS = {"BN": "bn", "GN": "gn"}


def build_norm(norm_cfg, num_features, frozen_stats=False):
    """Build a BatchNorm2d or GroupNorm from an mmdet ``norm_cfg``; returns (attribute name, cell).

    ``frozen_stats``: BN normalises with its running statistics also in training (``norm_eval``).
    """
    norm_type = norm_cfg.get("type")
    if norm_type == "BN":
        norm = nn.BatchNorm2d(num_features, eps=1e-5, momentum=0.9,
                              use_batch_statistics=False if frozen_stats else None)
    elif norm_type == "GN":
        norm = GroupNorm(norm_cfg.get("num_groups", 32), num_features, eps=1e-5)
    else:
        raise ConfigError(f"norm_cfg type must be 'BN' or 'GN', got {norm_type!r}")
    if not norm_cfg.get("requires_grad", True):
        for param in norm.trainable_params():
            param.requires_grad = False
    return _NORM_ATTRS[norm_type], norm


def conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, has_bias=False,
           weight_init=None):
    """A torch-style Conv2d (explicit symmetric padding); He-normal weights unless ``weight_init``."""
    weight_init = weight_init or HeNormal(mode="fan_out", nonlinearity="relu")
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, pad_mode="pad",
                     padding=padding, has_bias=has_bias, weight_init=weight_init, bias_init="zeros")


class ConvModule(nn.Cell):
    """conv → optional norm → optional ReLU. The conv has a bias only when there is no norm."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 norm_cfg=None, activation=True, weight_init=None):
        super().__init__()
        self.conv = conv2d(in_channels, out_channels, kernel_size, stride, padding,
                           has_bias=norm_cfg is None, weight_init=weight_init)
        self.norm_name = None
        if norm_cfg is not None:
            self.norm_name, norm = build_norm(norm_cfg, out_channels)
            setattr(self, self.norm_name, norm)
        self.activate = nn.ReLU() if activation else None

    def construct(self, x):
        x = self.conv(x)
        if self.norm_name is not None:
            x = getattr(self, self.norm_name)(x)
        if self.activate is not None:
            x = self.activate(x)
        return x
