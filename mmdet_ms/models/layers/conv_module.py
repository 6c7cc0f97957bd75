"""Conv + norm + ReLU, named as mmdetection 1.0's ``ConvModule`` so checkpoints map one to one.

Parameter names follow MindSpore (``gamma``/``beta``/``moving_mean``/``moving_variance`` for norms);
the submodule names (``conv``, ``bn``, ``gn``) follow the original, e.g.
``bbox_head.kernel_convs.0.conv.weight`` and ``bbox_head.kernel_convs.0.gn.gamma``.
"""
import mindspore.nn as nn
from mindspore.common.initializer import HeNormal

from ...registry import ConfigError
from .deform_conv import CONV_TYPES
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
           weight_init=None, groups=1):
    """A torch-style Conv2d (explicit symmetric padding); He-normal weights unless ``weight_init``."""
    weight_init = weight_init or HeNormal(mode="fan_out", nonlinearity="relu")
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, pad_mode="pad",
                     padding=padding, has_bias=has_bias, weight_init=weight_init, bias_init="zeros",
                     group=groups)


def build_conv_layer(conv_cfg, in_channels, out_channels, kernel_size, stride=1, padding=0,
                     has_bias=False, weight_init=None, groups=1):
    """mmdetection's ``build_conv_layer``: ``conv_cfg`` None or ``dict(type='Conv')`` gives a plain
    conv, ``dict(type='DCN'|'DCNv2', deformable_groups=...)`` a deformable one; the other keys of
    ``conv_cfg`` go to the layer. ``weight_init``: the main weight's (None: the layer's default)."""
    cfg = dict(conv_cfg or dict(type="Conv"))
    conv_type = cfg.pop("type", None)
    if conv_type == "Conv" and not cfg:
        return conv2d(in_channels, out_channels, kernel_size, stride, padding, has_bias,
                      weight_init, groups)
    if conv_type not in CONV_TYPES:
        known = ", ".join(map(repr, ("Conv", *CONV_TYPES)))
        raise ConfigError(f"conv_cfg type must be one of {known}; got {conv_cfg!r}")
    unknown = set(cfg) - {"deformable_groups"}
    if unknown:
        raise ConfigError(f"conv_cfg {conv_cfg!r}: unknown key(s) {', '.join(sorted(unknown))}")
    return CONV_TYPES[conv_type](in_channels, out_channels, kernel_size, stride, padding,
                                 groups=groups, has_bias=has_bias, weight_init=weight_init, **cfg)


class ConvModule(nn.Cell):
    """conv → optional norm → optional ReLU. The conv has a bias only when there is no norm;
    ``conv_cfg`` picks the conv as ``build_conv_layer`` does."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 norm_cfg=None, activation=True, weight_init=None, conv_cfg=None):
        super().__init__()
        self.conv = build_conv_layer(conv_cfg, in_channels, out_channels, kernel_size, stride,
                                     padding, has_bias=norm_cfg is None, weight_init=weight_init)
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
