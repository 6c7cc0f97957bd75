"""The SOLOv2 detector: ResNet → FPN → (SOLOv2 head, mask feature head)."""
import mindspore.nn as nn

from ...core.postprocess import get_seg_batch
from ...registry import BACKBONES, DETECTORS, HEADS, NECKS, ConfigError


def _refuse_dcn(backbone, bbox_head, mask_feat_head):
    uses_dcn = (backbone.get("dcn") is not None or bbox_head.get("use_dcn_in_tower")
                or mask_feat_head.get("conv_cfg") is not None)
    if uses_dcn:
        raise ConfigError("this config uses deformable convolutions (DCN), which this MindSpore "
                          "port does not support; use a non-DCN config such as "
                          "configs/solov2/solov2_r101_fpn_8gpu_3x.py")


@DETECTORS.register_module()
class SOLOv2(nn.Cell):
    """``construct(img)`` is the inference network; ``forward_train_outputs`` gives raw outputs.

    ``construct`` returns the arrays post-processing needs, so the same cell runs in PyNative,
    under ``ms.jit`` and as an exported MindIR:
    cate scores (N, ΣS², C_cls), kernels (N, ΣS², E), mask feature (N, E, H/4, W/4).
    """

    def __init__(self, backbone, neck, bbox_head, mask_feat_head, train_cfg=None, test_cfg=None,
                 pretrained=None):
        super().__init__()
        _refuse_dcn(backbone, bbox_head, mask_feat_head)
        self.backbone = BACKBONES.build(backbone)
        self.neck = NECKS.build(neck)
        self.bbox_head = HEADS.build(bbox_head)
        self.mask_feat_head = HEADS.build(mask_feat_head)
        if self.mask_feat_head.out_channels != self.bbox_head.kernel_out_channels:
            raise ConfigError(
                f"mask_feat_head.num_classes ({self.mask_feat_head.out_channels}) must equal "
                f"bbox_head.ins_out_channels ({self.bbox_head.kernel_out_channels})")
        self.train_cfg = dict(train_cfg or {})
        self.test_cfg = dict(test_cfg or {})
        self.pretrained = pretrained

    def forward_train_outputs(self, img):
        """Raw per-level cate logits and kernels, and the mask feature, for the losses."""
        feats = self.neck(self.backbone(img))
        cate_preds, kernel_preds = self.bbox_head(feats)
        head = self.mask_feat_head
        mask_feat = head(feats[head.start_level:head.end_level + 1])
        return cate_preds, kernel_preds, mask_feat

    def construct(self, img):
        cate_preds, kernel_preds, mask_feat = self.forward_train_outputs(img)
        cate_scores, kernels = self.bbox_head.flatten_for_test(cate_preds, kernel_preds)
        return cate_scores, kernels, mask_feat

    def postprocess(self, cate_scores, kernels, mask_feat, img_metas):
        """numpy network outputs for a batch → one InstanceResult per image."""
        return get_seg_batch(cate_scores, kernels, mask_feat, self.bbox_head.num_grids,
                             self.bbox_head.strides, img_metas, self.test_cfg)
