"""ResNet as in mmdetection 1.0 (``style='pytorch'``: a bottleneck strides on its 3x3 conv).

Cell names match torchvision/mmdet (``conv1``, ``bn1``, ``layer{1..4}.{i}.conv{1,2,3}``,
``downsample.{0,1}``) so converted checkpoints load by name. With ``dcn`` the 3x3 conv of every
bottleneck of the ``stage_with_dcn`` stages is deformable (``conv2.weight`` and
``conv2.conv_offset.{weight,bias}``, as the original's).
"""
import math

import mindspore.nn as nn
import mindspore.ops as ops

from ...registry import BACKBONES, ConfigError
from ..layers.conv_module import build_conv_layer, build_norm, conv2d


class BasicBlock(nn.Cell):
    expansion = 1

    def __init__(self, in_channels, planes, stride, downsample, norm_cfg, norm_eval, dcn=None,
                 groups=1, base_width=4):
        super().__init__()
        if dcn is not None:
            raise ConfigError("ResNet dcn: deformable convolutions exist only in bottleneck "
                              "blocks (depth 50, 101, 152), as in the original")
        self.conv1 = conv2d(in_channels, planes, 3, stride, 1)
        self.bn1 = build_norm(norm_cfg, planes, norm_eval)[1]
        self.conv2 = conv2d(planes, planes, 3, 1, 1)
        self.bn2 = build_norm(norm_cfg, planes, norm_eval)[1]
        self.relu = nn.ReLU()
        self.downsample = downsample

    def construct(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Cell):
    """``groups`` > 1: the ResNeXt bottleneck, whose grouped 3x3 conv is
    ``floor(planes * base_width / 64) * groups`` wide (mmdet 1.0's ``resnext.py``)."""

    expansion = 4

    def __init__(self, in_channels, planes, stride, downsample, norm_cfg, norm_eval, dcn=None,
                 groups=1, base_width=4):
        super().__init__()
        width = planes if groups == 1 else math.floor(planes * base_width / 64) * groups
        self.conv1 = conv2d(in_channels, width, 1)
        self.bn1 = build_norm(norm_cfg, width, norm_eval)[1]
        self.conv2 = build_conv_layer(dcn, width, width, 3, stride, 1, groups=groups)
        self.bn2 = build_norm(norm_cfg, width, norm_eval)[1]
        self.conv3 = conv2d(width, planes * self.expansion, 1)
        self.bn3 = build_norm(norm_cfg, planes * self.expansion, norm_eval)[1]
        self.relu = nn.ReLU()
        self.downsample = downsample

    def construct(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


ARCH_SETTINGS = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}


def _stage_dcn(dcn, stage_with_dcn, num_stages):
    """The ``dcn`` dict → the conv_cfg of each stage's 3x3 convs (None: plain)."""
    if dcn is None:
        return [None] * num_stages
    if not isinstance(dcn, dict) or dcn.get("type") not in ("DCN", "DCNv2"):
        raise ConfigError(f"ResNet dcn must be dict(type='DCN'|'DCNv2', ...), got {dcn!r}")
    if len(stage_with_dcn) != num_stages:
        raise ConfigError(f"ResNet stage_with_dcn={stage_with_dcn} needs one entry per stage "
                          f"(num_stages={num_stages})")
    conv_cfg = dict(dcn)
    # mmdet 1.0 pops fallback_on_stride from the dict its blocks share, so True would make only
    # the first block it builds a plain conv: not reproduced; every original config says False.
    if conv_cfg.pop("fallback_on_stride", False):
        raise ConfigError("ResNet dcn fallback_on_stride=True is not supported "
                          "(every original config uses False)")
    return [conv_cfg if with_dcn else None for with_dcn in stage_with_dcn]


class _ResNetBase(nn.Cell):
    """The stem and the stages of ResNet and ResNeXt (see ``ResNet`` for the arguments)."""

    arch_settings = ARCH_SETTINGS

    def __init__(self, depth, num_stages, out_indices, frozen_stages, style, norm_cfg, norm_eval,
                 dcn, stage_with_dcn, base_channels, groups, base_width):
        super().__init__()
        name = type(self).__name__
        if depth not in self.arch_settings:
            raise ConfigError(f"{name} depth must be one of {sorted(self.arch_settings)}, "
                              f"got {depth}")
        if style != "pytorch":
            raise ConfigError(f"only style='pytorch' ResNets are supported, got style={style!r}")
        if not 1 <= num_stages <= 4 or max(out_indices) >= num_stages:
            raise ConfigError(f"{name} num_stages={num_stages} / out_indices={out_indices} invalid")
        stage_dcn = _stage_dcn(dcn, stage_with_dcn, num_stages)
        norm_cfg = dict(norm_cfg or dict(type="BN", requires_grad=True))
        block, stage_blocks = self.arch_settings[depth]
        self.out_indices = tuple(out_indices)
        self.conv1 = conv2d(3, base_channels, 7, 2, 3)
        self.bn1 = build_norm(norm_cfg, base_channels, norm_eval)[1]
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, pad_mode="pad", padding=1)
        in_channels = base_channels
        self.stage_names = []
        for i, num_blocks in enumerate(stage_blocks[:num_stages]):
            planes = base_channels * 2 ** i
            block_args = dict(dcn=stage_dcn[i], groups=groups, base_width=base_width)
            stage = self._make_stage(block, in_channels, planes, num_blocks,
                                     stride=1 if i == 0 else 2, norm_cfg=norm_cfg,
                                     norm_eval=norm_eval, block_args=block_args)
            setattr(self, f"layer{i + 1}", stage)
            self.stage_names.append(f"layer{i + 1}")
            in_channels = planes * block.expansion
        self.out_channels = [base_channels * 2 ** i * block.expansion for i in range(num_stages)]
        self._freeze_stages(frozen_stages)

    @staticmethod
    def _make_stage(block, in_channels, planes, num_blocks, stride, norm_cfg, norm_eval,
                    block_args):
        downsample = None
        if stride != 1 or in_channels != planes * block.expansion:
            downsample = nn.SequentialCell([
                conv2d(in_channels, planes * block.expansion, 1, stride),
                build_norm(norm_cfg, planes * block.expansion, norm_eval)[1],
            ])
        blocks = [block(in_channels, planes, stride, downsample, norm_cfg, norm_eval,
                        **block_args)]
        for _ in range(1, num_blocks):
            blocks.append(block(planes * block.expansion, planes, 1, None, norm_cfg, norm_eval,
                                **block_args))
        return nn.SequentialCell(blocks)

    def _freeze_stages(self, frozen_stages):
        # No gradient flows back into the frozen part (stem: 0, layer k: k; -1: none), as in torch
        # where nothing upstream requires grad: without the stop MindSpore ran their backward
        # for the image's gradient (R101, 2x512x512: 0.8 GB more memory a step).
        self.frozen_through = frozen_stages
        frozen = []
        if frozen_stages >= 0:
            frozen += [self.conv1, self.bn1]
        frozen += [getattr(self, f"layer{i}") for i in range(1, frozen_stages + 1)]
        for cell in frozen:
            for param in cell.get_parameters():
                param.requires_grad = False
            # The original keeps frozen stages in eval mode: their BN statistics stay fixed
            # even when norm_eval=False lets the other stages' BN learn.
            for _, sub_cell in cell.cells_and_names():
                if isinstance(sub_cell, nn.BatchNorm2d):
                    sub_cell.use_batch_statistics = False

    def construct(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        if self.frozen_through == 0:
            x = ops.stop_gradient(x)
        outs = []
        for i, name in enumerate(self.stage_names):
            x = getattr(self, name)(x)
            if i + 1 == self.frozen_through:
                x = ops.stop_gradient(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)


@BACKBONES.register_module()
class ResNet(_ResNetBase):
    """ResNet body returning the feature maps of ``out_indices`` (0..3 → C2..C5, strides 4..32).

    Args:
        frozen_stages: stages whose parameters get no gradient (0: the stem; i: stem + layer1..i).
        norm_eval: BN layers normalise with their running statistics in training too and do not
            update them (the original puts them in eval mode).
        base_channels: width of the stem and of the first stage (64 in every original config;
            stage i has ``base_channels * 2**i`` planes, as mmdetection 2's ResNet). Narrower
            networks only make sense trained from scratch, as the CPU quick start does.
        dcn, stage_with_dcn: ``dict(type='DCN'|'DCNv2', deformable_groups=1,
            fallback_on_stride=False)`` makes the 3x3 convs of the stages marked True deformable.
    """

    def __init__(self, depth, num_stages=4, out_indices=(0, 1, 2, 3), frozen_stages=-1,
                 style="pytorch", norm_cfg=None, norm_eval=True, dcn=None,
                 stage_with_dcn=(False, False, False, False), base_channels=64):
        super().__init__(depth, num_stages, out_indices, frozen_stages, style, norm_cfg,
                         norm_eval, dcn, stage_with_dcn, base_channels, groups=1, base_width=4)
