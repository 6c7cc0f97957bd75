"""SOLO (v1) head: per grid cell a category and, per level, one mask channel for each of the S²
cells (the original's ``SOLOHead``, WXinlong/SOLO ``mmdet/models/anchor_heads/solo_head.py``).

``SOLOHeadBase`` holds what the SOLO v1 and Decoupled SOLO heads share: the config keys, the
five level inputs, the category branch and the test-time category scores.
"""
import mindspore.nn as nn
import mindspore.ops as ops
from mindspore.common.initializer import Normal

from ...registry import HEADS, ConfigError
from ..layers import ConvModule, append_coord_channels
from ..layers.points_nms import points_nms
from ..losses import build_loss
from .head_parts import HEAD_NORM, prior_bias_conv, split_feats
from .solo_loss import SOLOLoss, solo_mask_sizes

def upsample2x(feat):
    """(N, C, H, W) → (N, C, 2H, 2W), bilinear (the original's ``scale_factor=2``)."""
    return ops.interpolate(feat, size=(feat.shape[2] * 2, feat.shape[3] * 2), mode="bilinear",
                           align_corners=False)


def tower(in_channels, channels, num_convs, conv_cfg=None, last_conv_cfg=None):
    """``num_convs`` 3x3 ConvModules (conv, GN(32), ReLU); the last one may take another conv."""
    convs = []
    for i in range(num_convs):
        cfg = last_conv_cfg if i == num_convs - 1 and last_conv_cfg is not None else conv_cfg
        convs.append(ConvModule(in_channels if i == 0 else channels, channels, 3, padding=1,
                                norm_cfg=HEAD_NORM, weight_init=Normal(0.01), conv_cfg=cfg))
    return nn.CellList(convs)


class SOLOHeadBase(nn.Cell):
    """Config keys of the original SOLO heads. ``num_classes`` counts the background (81 for
    COCO): the category branch predicts ``num_classes - 1`` sigmoid scores. ``strides`` are the
    levels' nominal strides (masks of level l are at stride ``strides[l] / 2``); a test candidate
    survives if its mask covers more pixels than its level's stride.
    """

    decoupled = False  # masks are X * Y products (Decoupled SOLO)

    def __init__(self, num_classes, in_channels, seg_feat_channels, stacked_convs, strides,
                 scale_ranges, sigma, num_grids, cate_down_pos, loss_ins, loss_cate):
        super().__init__()
        name = type(self).__name__
        if num_classes < 2:
            raise ConfigError(f"{name} num_classes={num_classes}: it counts the background, "
                              "so it must be (number of classes + 1)")
        if num_grids is None or not len(num_grids) == len(strides) == len(scale_ranges) == 5:
            raise ConfigError(f"{name} needs num_grids, strides and scale_ranges for 5 levels")
        if not 0 <= cate_down_pos < stacked_convs:
            raise ConfigError(f"{name} cate_down_pos={cate_down_pos} must be in "
                              f"[0, stacked_convs={stacked_convs})")
        self.num_classes = num_classes
        self.cate_out_channels = num_classes - 1
        self.num_grids = tuple(num_grids)
        self.strides = tuple(strides)
        self.scale_ranges = tuple(tuple(r) for r in scale_ranges)
        self.sigma = sigma
        self.cate_down_pos = cate_down_pos
        loss_ins = dict(loss_ins or dict(type="DiceLoss", use_sigmoid=True, loss_weight=3.0))
        loss_cate = dict(loss_cate or dict(type="FocalLoss", use_sigmoid=True, gamma=2.0,
                                           alpha=0.25, loss_weight=1.0))
        # The original reads only loss_ins's weight (its dice loss is the head's own function).
        self.loss = SOLOLoss(self.num_grids, self.cate_out_channels,
                             build_loss(loss_ins).loss_weight, build_loss(loss_cate),
                             decoupled=self.decoupled)

    @staticmethod
    def mask_sizes(pad_height, pad_width):
        """(H_l, W_l) of each level's mask predictions for a padded input of that size
        (`solo_loss.solo_mask_sizes`)."""
        return solo_mask_sizes(pad_height, pad_width)

    def _cate_branch(self, feat, num_grid, cate_conv):
        """(N, C_in, H, W) → (N, C_cls, S, S) logits; the map is resized to S x S before conv
        ``cate_down_pos``."""
        for i, conv in enumerate(self.cate_convs):
            if i == self.cate_down_pos:
                feat = ops.interpolate(feat, size=(num_grid, num_grid), mode="bilinear",
                                       align_corners=False)
            feat = conv(feat)
        return cate_conv(feat)

    @staticmethod
    def cate_scores_for_test(cate_preds):
        """Per-level logits (N, C, S, S) → (N, ΣS², C) after sigmoid and points NMS, cells level
        by level, row-major within a level."""
        scores = []
        for cate_pred in cate_preds:
            batch, channels = cate_pred.shape[0], cate_pred.shape[1]
            heat = points_nms(ops.sigmoid(cate_pred))
            scores.append(heat.transpose(0, 2, 3, 1).reshape(batch, -1, channels))
        return ops.concat(scores, axis=1)


@HEADS.register_module()
class SOLOHead(SOLOHeadBase):
    """SOLO v1: the mask branch (coordinate channels, ``stacked_convs`` convs, x2 upsampling)
    ends in a 1x1 conv per level with S² output channels, channel i*S + j the mask of cell (i, j).

    ``with_deform`` and ``conv_cfg`` are accepted and, as in the original, unused.
    """

    def __init__(self, num_classes, in_channels, seg_feat_channels=256, stacked_convs=4,
                 strides=(4, 8, 16, 32, 64), base_edge_list=(16, 32, 64, 128, 256),
                 scale_ranges=((8, 32), (16, 64), (32, 128), (64, 256), (128, 512)), sigma=0.4,
                 num_grids=None, cate_down_pos=0, with_deform=False, loss_ins=None,
                 loss_cate=None, conv_cfg=None, norm_cfg=None):
        super().__init__(num_classes, in_channels, seg_feat_channels, stacked_convs, strides,
                         scale_ranges, sigma, num_grids, cate_down_pos, loss_ins, loss_cate)
        self.ins_convs = tower(in_channels + 2, seg_feat_channels, stacked_convs)
        self.cate_convs = tower(in_channels, seg_feat_channels, stacked_convs)
        self.solo_ins_list = nn.CellList([prior_bias_conv(seg_feat_channels, grid * grid, 1)
                                          for grid in self.num_grids])
        self.solo_cate = prior_bias_conv(seg_feat_channels, self.cate_out_channels, 3)

    def construct(self, feats):
        """Raw outputs per level: mask logits (N, S², H_l, W_l) and cate logits (N, C, S, S)."""
        ins_preds, cate_preds = [], []
        for feat, num_grid, ins_conv in zip(split_feats(feats), self.num_grids,
                                            self.solo_ins_list):
            ins_feat = append_coord_channels(feat)
            for conv in self.ins_convs:
                ins_feat = conv(ins_feat)
            ins_preds.append(ins_conv(upsample2x(ins_feat)))
            cate_preds.append(self._cate_branch(feat, num_grid, self.solo_cate))
        return ins_preds, cate_preds

    def outputs_for_test(self, ins_preds, cate_preds):
        """Raw outputs → (cate scores (N, ΣS², C), then per level the mask probabilities
        (N, S², H_l, W_l)); post-processing resizes the candidates' masks to level 0's size."""
        return (self.cate_scores_for_test(cate_preds),) + tuple(ops.sigmoid(p) for p in ins_preds)
