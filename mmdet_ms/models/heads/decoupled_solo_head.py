"""Decoupled SOLO heads: the mask of cell (i, j) is the product of two per-level maps, X_j and
Y_i, each with S channels (the original's ``DecoupledSOLOHead`` and ``DecoupledSOLOLightHead``).
"""
import mindspore.nn as nn
import mindspore.ops as ops

from ...registry import HEADS
from ..layers import append_coord_channels
from .head_parts import prior_bias_conv, split_feats
from .solo_head import SOLOHeadBase, tower, upsample2x


class _DecoupledSOLOHeadBase(SOLOHeadBase):
    """The X and Y mask convs and the category conv of both decoupled heads; subclasses build
    the mask towers and ``_xy_features``."""

    decoupled = True

    def _build_outputs(self, seg_feat_channels):
        self.dsolo_ins_list_x = nn.CellList([prior_bias_conv(seg_feat_channels, grid, 3)
                                             for grid in self.num_grids])
        self.dsolo_ins_list_y = nn.CellList([prior_bias_conv(seg_feat_channels, grid, 3)
                                             for grid in self.num_grids])
        self.dsolo_cate = prior_bias_conv(seg_feat_channels, self.cate_out_channels, 3)

    def construct(self, feats):
        """Raw outputs per level: X logits (N, S, H_l, W_l) (channel j: column j), Y logits
        (N, S, H_l, W_l) (channel i: row i), cate logits (N, C, S, S)."""
        ins_preds_x, ins_preds_y, cate_preds = [], [], []
        for feat, num_grid, conv_x, conv_y in zip(split_feats(feats), self.num_grids,
                                                  self.dsolo_ins_list_x, self.dsolo_ins_list_y):
            feat_x, feat_y = self._xy_features(feat)
            ins_preds_x.append(conv_x(feat_x))
            ins_preds_y.append(conv_y(feat_y))
            cate_preds.append(self._cate_branch(feat, num_grid, self.dsolo_cate))
        return ins_preds_x, ins_preds_y, cate_preds

    def outputs_for_test(self, ins_preds_x, ins_preds_y, cate_preds):
        """Raw outputs → (cate scores (N, ΣS², C), the L levels' X probabilities, the L levels'
        Y probabilities); post-processing resizes them to level 0's size and multiplies."""
        return ((self.cate_scores_for_test(cate_preds),)
                + tuple(ops.sigmoid(p) for p in ins_preds_x)
                + tuple(ops.sigmoid(p) for p in ins_preds_y))


@HEADS.register_module()
class DecoupledSOLOHead(_DecoupledSOLOHeadBase):
    """Two mask towers: X sees the x coordinate channel, Y the y channel.

    ``with_deform`` and ``conv_cfg`` are accepted and, as in the original, unused.
    """

    def __init__(self, num_classes, in_channels, seg_feat_channels=256, stacked_convs=4,
                 strides=(4, 8, 16, 32, 64), base_edge_list=(16, 32, 64, 128, 256),
                 scale_ranges=((8, 32), (16, 64), (32, 128), (64, 256), (128, 512)), sigma=0.4,
                 num_grids=None, cate_down_pos=0, with_deform=False, loss_ins=None,
                 loss_cate=None, conv_cfg=None, norm_cfg=None):
        super().__init__(num_classes, in_channels, seg_feat_channels, stacked_convs, strides,
                         scale_ranges, sigma, num_grids, cate_down_pos, loss_ins, loss_cate)
        self.ins_convs_x = tower(in_channels + 1, seg_feat_channels, stacked_convs)
        self.ins_convs_y = tower(in_channels + 1, seg_feat_channels, stacked_convs)
        self.cate_convs = tower(in_channels, seg_feat_channels, stacked_convs)
        self._build_outputs(seg_feat_channels)

    def _xy_features(self, feat):
        with_coords = append_coord_channels(feat)  # (N, C + 2, H, W): x then y
        feat_x = with_coords[:, :-1]
        feat_y = ops.concat((feat, with_coords[:, -1:]), axis=1)
        for conv_x, conv_y in zip(self.ins_convs_x, self.ins_convs_y):
            feat_x = conv_x(feat_x)
            feat_y = conv_y(feat_y)
        return upsample2x(feat_x), upsample2x(feat_y)


@HEADS.register_module()
class DecoupledSOLOLightHead(_DecoupledSOLOHeadBase):
    """One mask tower with both coordinate channels feeds the X and Y convs.

    ``use_dcn_in_tower``: the last conv of the mask and category towers is a ``type_dcn``
    deformable conv; ``conv_cfg``: the conv of the other tower layers.
    """

    def __init__(self, num_classes, in_channels, seg_feat_channels=256, stacked_convs=4,
                 strides=(4, 8, 16, 32, 64), base_edge_list=(16, 32, 64, 128, 256),
                 scale_ranges=((8, 32), (16, 64), (32, 128), (64, 256), (128, 512)), sigma=0.4,
                 num_grids=None, cate_down_pos=0, loss_ins=None, loss_cate=None, conv_cfg=None,
                 norm_cfg=None, use_dcn_in_tower=False, type_dcn=None):
        super().__init__(num_classes, in_channels, seg_feat_channels, stacked_convs, strides,
                         scale_ranges, sigma, num_grids, cate_down_pos, loss_ins, loss_cate)
        last_conv_cfg = dict(type=type_dcn) if use_dcn_in_tower else None
        self.ins_convs = tower(in_channels + 2, seg_feat_channels, stacked_convs, conv_cfg,
                               last_conv_cfg)
        self.cate_convs = tower(in_channels, seg_feat_channels, stacked_convs, conv_cfg,
                                last_conv_cfg)
        self._build_outputs(seg_feat_channels)

    def _xy_features(self, feat):
        ins_feat = append_coord_channels(feat)
        for conv in self.ins_convs:
            ins_feat = conv(ins_feat)
        ins_feat = upsample2x(ins_feat)
        return ins_feat, ins_feat
