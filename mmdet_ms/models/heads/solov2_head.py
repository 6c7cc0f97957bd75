"""SOLOv2 head: per grid cell, category logits and a dynamic 1x1 mask kernel."""
import mindspore.nn as nn
import mindspore.ops as ops
from mindspore.common.initializer import Normal

from ...registry import HEADS, ConfigError
from ..layers import ConvModule, append_coord_channels
from ..layers.conv_module import conv2d
from ..layers.points_nms import points_nms
from ..losses import build_loss
from .head_parts import HEAD_NORM, prior_bias_conv, split_feats
from .solov2_loss import SOLOv2Loss


@HEADS.register_module()
class SOLOv2Head(nn.Cell):
    """Args follow the original config keys. ``num_classes`` counts the background (81 for COCO):
    the category branch predicts ``num_classes - 1`` sigmoid scores. ``use_dcn_in_tower``: every
    conv of both towers is a ``type_dcn`` deformable conv (the light head: the last one only).
    """

    dcn_in_last_tower_conv_only = False  # True in SOLOv2LightHead, the only difference

    def __init__(self, num_classes, in_channels, seg_feat_channels=256, stacked_convs=4,
                 strides=(4, 8, 16, 32, 64), base_edge_list=(16, 32, 64, 128, 256),
                 scale_ranges=((8, 32), (16, 64), (32, 128), (64, 256), (128, 512)), sigma=0.2,
                 num_grids=None, ins_out_channels=64, loss_ins=None, loss_cate=None,
                 conv_cfg=None, norm_cfg=None, use_dcn_in_tower=False, type_dcn=None):
        super().__init__()
        if use_dcn_in_tower and type_dcn not in ("DCN", "DCNv2"):
            raise ConfigError(f"{type(self).__name__} use_dcn_in_tower=True needs "
                              f"type_dcn='DCN' or 'DCNv2', got type_dcn={type_dcn!r}")
        if not isinstance(num_classes, int) or isinstance(num_classes, bool):
            raise ConfigError(f"model.bbox_head.num_classes must be an integer (number of classes "
                              f"+ 1), got {num_classes!r:.40}")
        if num_classes < 2:
            raise ConfigError(f"SOLOv2Head num_classes={num_classes}: it counts the background, "
                              "so it must be (number of classes + 1)")
        if num_grids is None or not len(num_grids) == len(strides) == len(scale_ranges):
            raise ConfigError("SOLOv2Head needs num_grids, strides and scale_ranges of equal length")
        self.num_classes = num_classes
        self.cate_out_channels = num_classes - 1
        self.kernel_out_channels = ins_out_channels
        self.num_grids = tuple(num_grids)
        self.strides = tuple(strides)
        self.scale_ranges = tuple(tuple(r) for r in scale_ranges)
        self.sigma = sigma
        self.loss = SOLOv2Loss(
            len(self.num_grids), self.cate_out_channels,
            build_loss(loss_ins or dict(type="DiceLoss", use_sigmoid=True, loss_weight=3.0)),
            build_loss(loss_cate or dict(type="FocalLoss", use_sigmoid=True, gamma=2.0,
                                         alpha=0.25, loss_weight=1.0)))
        init = Normal(0.01)  # the main weight of a deformable tower conv too; its offsets: zero
        dcn_layers = range(stacked_convs - 1 if self.dcn_in_last_tower_conv_only else 0,
                           stacked_convs) if use_dcn_in_tower else ()
        tower_cfgs = [dict(type=type_dcn) if i in dcn_layers else conv_cfg
                      for i in range(stacked_convs)]
        self.kernel_convs = nn.CellList([
            ConvModule(in_channels + 2 if i == 0 else seg_feat_channels, seg_feat_channels, 3,
                       padding=1, norm_cfg=HEAD_NORM, weight_init=init, conv_cfg=tower_cfgs[i])
            for i in range(stacked_convs)])
        self.cate_convs = nn.CellList([
            ConvModule(in_channels if i == 0 else seg_feat_channels, seg_feat_channels, 3,
                       padding=1, norm_cfg=HEAD_NORM, weight_init=init, conv_cfg=tower_cfgs[i])
            for i in range(stacked_convs)])
        self.solo_cate = prior_bias_conv(seg_feat_channels, self.cate_out_channels, 3)
        self.solo_kernel = conv2d(seg_feat_channels, self.kernel_out_channels, 3, padding=1,
                                  has_bias=True, weight_init=init)

    def _forward_level(self, feat, num_grid):
        """(N, C, H, W) → cate logits (N, C_cls, S, S), kernels (N, E, S, S)."""
        kernel_feat = ops.interpolate(append_coord_channels(feat), size=(num_grid, num_grid),
                                      mode="bilinear", align_corners=False)
        cate_feat = kernel_feat[:, :-2]
        for conv in self.kernel_convs:
            kernel_feat = conv(kernel_feat)
        for conv in self.cate_convs:
            cate_feat = conv(cate_feat)
        return self.solo_cate(cate_feat), self.solo_kernel(kernel_feat)

    def construct(self, feats):
        """Raw outputs per level: lists of cate logits (N, C_cls, S, S) and kernels (N, E, S, S)."""
        cate_preds, kernel_preds = [], []
        for feat, num_grid in zip(split_feats(feats), self.num_grids):
            cate_pred, kernel_pred = self._forward_level(feat, num_grid)
            cate_preds.append(cate_pred)
            kernel_preds.append(kernel_pred)
        return cate_preds, kernel_preds

    def flatten_for_test(self, cate_preds, kernel_preds):
        """Per-level raw outputs → cell-major arrays for post-processing.

        Returns cate scores (N, ΣS², C_cls) after sigmoid and points NMS, and kernels (N, ΣS², E);
        cells are ordered level by level, row-major within a level.
        """
        cate_scores, kernels = [], []
        for cate_pred, kernel_pred in zip(cate_preds, kernel_preds):
            batch, channels = cate_pred.shape[0], cate_pred.shape[1]
            heat = points_nms(ops.sigmoid(cate_pred))
            cate_scores.append(heat.transpose(0, 2, 3, 1).reshape(batch, -1, channels))
            kernels.append(kernel_pred.reshape(batch, kernel_pred.shape[1], -1).transpose(0, 2, 1))
        return ops.concat(cate_scores, axis=1), ops.concat(kernels, axis=1)
