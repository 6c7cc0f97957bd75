"""ResNet as in mmdetection 1.0 (``style='pytorch'``: a bottleneck strides on its 3x3 conv).

Cell names match torchvision/mmdet (``conv1``, ``bn1``, ``layer{1..4}.{i}.conv{1,2,3}``,
``downsample.{0,1}``) so converted checkpoints load by name.
"""
import mindspore.nn as nn

from ...registry import BACKBONES, ConfigError
from ..layers.conv_module import build_norm, conv2d


class BasicBlock(nn.Cell):
    expansion = 1

    def __init__(self, in_channels, planes, stride, downsample, norm_cfg, norm_eval):
        super().__init__()
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
    expansion = 4

    def __init__(self, in_channels, planes, stride, downsample, norm_cfg, norm_eval):
        super().__init__()
        self.conv1 = conv2d(in_channels, planes, 1)
        self.bn1 = build_norm(norm_cfg, planes, norm_eval)[1]
        self.conv2 = conv2d(planes, planes, 3, stride, 1)
        self.bn2 = build_norm(norm_cfg, planes, norm_eval)[1]
        self.conv3 = conv2d(planes, planes * self.expansion, 1)
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


@BACKBONES.register_module()
class ResNet(nn.Cell):
    """ResNet body returning the feature maps of ``out_indices`` (0..3 → C2..C5, strides 4..32).

    Args:
        frozen_stages: stages whose parameters get no gradient (0: the stem; i: stem + layer1..i).
        norm_eval: BN layers normalise with their running statistics in training too and do not
            update them (the original puts them in eval mode).
        base_channels: width of the stem and of the first stage (64 in every original config;
            stage i has ``base_channels * 2**i`` planes, as mmdetection 2's ResNet). Narrower
            networks only make sense trained from scratch, as the CPU quick start does.
    """

    def __init__(self, depth, num_stages=4, out_indices=(0, 1, 2, 3), frozen_stages=-1,
                 style="pytorch", norm_cfg=None, norm_eval=True, dcn=None,
                 stage_with_dcn=(False, False, False, False), base_channels=64):
        super().__init__()
        if depth not in ARCH_SETTINGS:
            raise ConfigError(f"ResNet depth must be one of {sorted(ARCH_SETTINGS)}, got {depth}")
        if style != "pytorch":
            raise ConfigError(f"only style='pytorch' ResNets are supported, got style={style!r}")
        if dcn is not None or any(stage_with_dcn):
            raise ConfigError("deformable convolution (dcn) is not supported by this port; "
                              "use a non-DCN config (see configs/solov2/README.md)")
        if not 1 <= num_stages <= 4 or max(out_indices) >= num_stages:
            raise ConfigError(f"ResNet num_stages={num_stages} / out_indices={out_indices} invalid")
        norm_cfg = dict(norm_cfg or dict(type="BN", requires_grad=True))
        block, stage_blocks = ARCH_SETTINGS[depth]
        self.out_indices = tuple(out_indices)
        self.conv1 = conv2d(3, base_channels, 7, 2, 3)
        self.bn1 = build_norm(norm_cfg, base_channels, norm_eval)[1]
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, pad_mode="pad", padding=1)
        in_channels = base_channels
        self.stage_names = []
        for i, num_blocks in enumerate(stage_blocks[:num_stages]):
            planes = base_channels * 2 ** i
            stage = self._make_stage(block, in_channels, planes, num_blocks,
                                     stride=1 if i == 0 else 2, norm_cfg=norm_cfg,
                                     norm_eval=norm_eval)
            setattr(self, f"layer{i + 1}", stage)
            self.stage_names.append(f"layer{i + 1}")
            in_channels = planes * block.expansion
        self.out_channels = [base_channels * 2 ** i * block.expansion for i in range(num_stages)]
        self._freeze_stages(frozen_stages)

    @staticmethod
    def _make_stage(block, in_channels, planes, num_blocks, stride, norm_cfg, norm_eval):
        downsample = None
        if stride != 1 or in_channels != planes * block.expansion:
            downsample = nn.SequentialCell([
                conv2d(in_channels, planes * block.expansion, 1, stride),
                build_norm(norm_cfg, planes * block.expansion, norm_eval)[1],
            ])
        blocks = [block(in_channels, planes, stride, downsample, norm_cfg, norm_eval)]
        for _ in range(1, num_blocks):
            blocks.append(block(planes * block.expansion, planes, 1, None, norm_cfg, norm_eval))
        return nn.SequentialCell(blocks)

    def _freeze_stages(self, frozen_stages):
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
        outs = []
        for i, name in enumerate(self.stage_names):
            x = getattr(self, name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)
