"""The SOLO detector (v1 and Decoupled SOLO): ResNet → FPN → one SOLO head, no mask feature head
(the original's ``SOLO``, a ``SingleStageInsDetector`` without ``mask_feat_head``)."""
import mindspore.nn as nn

from ...core.postprocess import check_test_cfg
from ...core.solo_postprocess import batch_postprocess_of
from ...registry import BACKBONES, DETECTORS, HEADS, NECKS
from ..heads.solo_loss import SOLOTargetAssigner
from .train_losses import losses_of_batch


@DETECTORS.register_module()
class SOLO(nn.Cell):
    """``construct(img)`` is the inference network: a flat tuple of Tensors, the head's
    ``outputs_for_test`` (cate scores (N, ΣS², C), then the levels' mask probabilities: SOLO v1
    one tensor (N, S², H_l, W_l) per level, Decoupled SOLO the X then the Y tensors
    (N, S, H_l, W_l)). The same cell runs in PyNative, under ``ms.jit`` and as a MindIR.

    Training goes through the interface SOLOv2 has: ``train_targets(batch)`` (numpy, host side)
    → ``train_outputs(img)`` (flat Tensors) → ``loss(*outputs, *targets)`` (a parameter-free
    cell: one scalar per ``loss_names``); ``forward_train`` chains them into ``{name: loss}``;
    ``target_assigner()`` is ``train_targets`` as a picklable numpy callable (loader workers).
    """

    loss_names = ("loss_ins", "loss_cate")

    def __init__(self, backbone, neck, bbox_head, train_cfg=None, test_cfg=None, pretrained=None):
        super().__init__()
        self.backbone = BACKBONES.build(backbone)
        self.neck = NECKS.build(neck)
        self.bbox_head = HEADS.build(bbox_head)
        self.train_cfg = dict(train_cfg or {})
        self.test_cfg = dict(test_cfg or {})
        check_test_cfg(self.test_cfg)  # before any image runs
        self.pretrained = pretrained
        self._seg_batch = batch_postprocess_of(bbox_head["type"])

    @property
    def loss(self):
        """The head's `SOLOLoss`: (flat raw outputs, flat packed targets) →
        (loss_ins, loss_cate)."""
        return self.bbox_head.loss

    def forward_features(self, img):
        """The head's raw per-level outputs: SOLO v1 (mask logits, cate logits), Decoupled SOLO
        (X logits, Y logits, cate logits), each a list over levels."""
        return self.bbox_head(self.neck(self.backbone(img)))

    def train_outputs(self, img):
        """What the losses read, flat: the lists of ``forward_features`` one after the other."""
        flat = ()
        for outputs in self.forward_features(img):  # a loop: graph mode takes one comprehension
            flat = flat + tuple(outputs)
        return flat

    def target_assigner(self, static_shapes=False):
        """The picklable numpy callable batch → targets (`SOLOTargetAssigner`), for the
        data-loading workers."""
        head = self.bbox_head
        return SOLOTargetAssigner(head.strides, head.scale_ranges, head.num_grids, head.sigma,
                                  static_shapes)

    def train_targets(self, batch, static_shapes=False):
        """The flat packed targets (numpy, `PackedSOLOTargets.flat`) of a collated batch
        (``img`` (B, 3, H, W), per-image ``gt_bboxes``, 0-based ``gt_labels``, ``gt_masks`` at the
        padded size). ``static_shapes``: each level's positives padded to a power of two, so that
        a compiled loss meets few distinct shapes; otherwise to the batch's largest count."""
        return self.target_assigner(static_shapes)(batch)

    def targets_per_image(self, batch):
        """Per image, the levels' `targets.LevelTargets` (`solo_targets_single`) of a batch."""
        return self.target_assigner().per_image(batch)

    def forward_train(self, img, img_metas, gt_bboxes, gt_labels, gt_masks):
        """{loss name: scalar Tensor} of a batch, op by op (`losses_of_batch`)."""
        return losses_of_batch(self, img, img_metas, gt_bboxes, gt_labels, gt_masks)

    def construct(self, img):
        return self.bbox_head.outputs_for_test(*self.forward_features(img))

    def postprocess(self, *outputs_and_metas):
        """numpy network outputs for a batch, then ``img_metas`` → one InstanceResult per
        image."""
        *outputs, img_metas = outputs_and_metas
        head = self.bbox_head
        return self._seg_batch(outputs, head.num_grids, head.strides, img_metas, self.test_cfg)
