"""The SOLOv2 detector: ResNet → FPN → (SOLOv2 head, mask feature head)."""
import mindspore.nn as nn

from ...core.postprocess import check_test_cfg, get_seg_batch
from ..heads.solov2_loss import SOLOv2TargetAssigner
from ...registry import BACKBONES, DETECTORS, HEADS, NECKS, ConfigError
from .train_losses import losses_of_batch


@DETECTORS.register_module()
class SOLOv2(nn.Cell):
    """``construct(img)`` is the inference network; ``forward_train`` gives the losses.

    ``construct`` returns the arrays post-processing needs, so the same cell runs in PyNative,
    under ``ms.jit`` and as an exported MindIR:
    cate scores (N, ΣS², C_cls), kernels (N, ΣS², E), mask feature (N, E, H/4, W/4).

    Training, as the engine sees any detector (it knows nothing of SOLOv2):
    ``train_targets(batch)`` (numpy, host side) → ``train_outputs(img)`` (flat Tensors) →
    ``loss(*outputs, *targets)`` (a parameter-free cell: one scalar per ``loss_names``), so the
    network and the losses can each be compiled. ``forward_train`` chains the three, as mmdet's
    detectors do, and returns ``{name: loss}``. ``target_assigner()`` is ``train_targets`` as a
    picklable numpy callable, which the training loader runs in its workers.
    """

    loss_names = ("loss_ins", "loss_cate")

    def __init__(self, backbone, neck, bbox_head, mask_feat_head, train_cfg=None, test_cfg=None,
                 pretrained=None):
        super().__init__()
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
        check_test_cfg(self.test_cfg)  # before any image runs
        self.pretrained = pretrained

    @property
    def loss(self):
        """The head's `SOLOv2Loss`: (L cate logits, L kernels, mask feature, packed targets) →
        (loss_ins, loss_cate)."""
        return self.bbox_head.loss

    def forward_features(self, img):
        """Raw per-level cate logits (N, C_cls, S, S) and kernels (N, E, S, S), and the mask
        feature (N, E, H/4, W/4)."""
        feats = self.neck(self.backbone(img))
        cate_preds, kernel_preds = self.bbox_head(feats)
        head = self.mask_feat_head
        mask_feat = head(feats[head.start_level:head.end_level + 1])
        return cate_preds, kernel_preds, mask_feat

    def train_outputs(self, img):
        """What the losses read, flat: the L cate logits, the L kernels, the mask feature."""
        cate_preds, kernel_preds, mask_feat = self.forward_features(img)
        return (*cate_preds, *kernel_preds, mask_feat)

    def target_assigner(self, static_shapes=False):
        """The picklable numpy callable batch → targets (`SOLOv2TargetAssigner`), for the
        data-loading workers."""
        head = self.bbox_head
        return SOLOv2TargetAssigner(head.scale_ranges, head.num_grids, head.sigma, static_shapes)

    def train_targets(self, batch, static_shapes=False):
        """The `PackedTargets` fields (numpy, a tuple) of a collated batch (``img``
        (B, 3, H, W), per-image ``gt_bboxes``, 0-based ``gt_labels``, ``gt_masks`` at the padded
        size).

        ``static_shapes``: positives padded to a power of two per image, so that a compiled
        loss meets few distinct shapes; otherwise to the batch's largest count.
        """
        return self.target_assigner(static_shapes)(batch)

    def targets_per_image(self, batch):
        """Per image, per level `LevelTargets` (the original's ``solov2_target_single``), masks
        at the mask feature's size (the padded batch's / 4)."""
        return self.target_assigner().per_image(batch)

    def forward_train(self, img, img_metas, gt_bboxes, gt_labels, gt_masks):
        """{loss name: scalar Tensor} of a batch, op by op (`losses_of_batch`)."""
        return losses_of_batch(self, img, img_metas, gt_bboxes, gt_labels, gt_masks)

    def construct(self, img):
        cate_preds, kernel_preds, mask_feat = self.forward_features(img)
        cate_scores, kernels = self.bbox_head.flatten_for_test(cate_preds, kernel_preds)
        return cate_scores, kernels, mask_feat

    def postprocess(self, cate_scores, kernels, mask_feat, img_metas):
        """numpy network outputs for a batch → one InstanceResult per image."""
        return get_seg_batch(cate_scores, kernels, mask_feat, self.bbox_head.num_grids,
                             self.bbox_head.strides, img_metas, self.test_cfg)
