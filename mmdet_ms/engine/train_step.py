"""One SOLOv2 optimisation step in PyNative mode (the number of positive cells varies per batch).

targets (numpy, per image) → forward → dice + focal losses → gradients → mean over ranks →
clip by global L2 norm → SGD update.
"""
import math

import mindspore as ms
import mindspore.ops as ops

from ..core.targets import solov2_targets_single
from ..models.heads.solov2_loss import solov2_loss

MASK_FEAT_STRIDE = 4


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; training stops before the update."""


def batch_targets(head, batch):
    """Per-image, per-level targets for a collated batch (masks at each image's pad size)."""
    height, width = batch["img"].shape[2:]
    mask_feat_size = (height // MASK_FEAT_STRIDE, width // MASK_FEAT_STRIDE)
    return [solov2_targets_single(boxes, labels, masks, mask_feat_size, head.scale_ranges,
                                  head.num_grids, head.sigma)
            for boxes, labels, masks in zip(batch["gt_bboxes"], batch["gt_labels"],
                                            batch["gt_masks"])]


class TrainStep:
    """Callable on (img Tensor (B, 3, H, W), targets) → dict of float losses; updates the weights.

    Args:
        grad_clip: ``dict(max_norm=35, norm_type=2)`` or None.
        grad_reducer: averages gradients over data-parallel ranks (None: one process).
    """

    def __init__(self, network, optimizer, grad_clip=None, grad_reducer=None):
        self.network = network
        self.optimizer = optimizer
        head = network.bbox_head
        self.loss_kwargs = dict(
            num_classes_out=head.cate_out_channels,
            ins_loss_weight=head.loss_ins_cfg.get("loss_weight", 3.0),
            cate_loss_weight=head.loss_cate_cfg.get("loss_weight", 1.0),
            focal_gamma=head.loss_cate_cfg.get("gamma", 2.0),
            focal_alpha=head.loss_cate_cfg.get("alpha", 0.25))
        self.max_norm = None
        if grad_clip:
            if grad_clip.get("norm_type", 2) != 2:
                raise ValueError("optimizer_config.grad_clip: only norm_type=2 is supported")
            self.max_norm = float(grad_clip["max_norm"])
        self.grad_reducer = grad_reducer
        self.grad_fn = ms.value_and_grad(self.losses, None, optimizer.parameters, has_aux=True)
        # One compiled graph for reduce + clip + SGD: op by op over every parameter it costs
        # about as much as the backward pass of a small model.
        self.apply_gradients = ms.jit(self._apply_gradients)

    def _apply_gradients(self, grads):
        if self.grad_reducer is not None:
            grads = self.grad_reducer(grads)
        if self.max_norm is not None:
            grads = ops.clip_by_global_norm(grads, self.max_norm)
        return self.optimizer(grads)

    def losses(self, img, targets):
        """(total, loss_ins, loss_cate) for a batch; the total is what is differentiated."""
        cate_preds, kernel_preds, mask_feat = self.network.forward_train_outputs(img)
        loss_ins, loss_cate = solov2_loss(cate_preds, kernel_preds, mask_feat, targets,
                                          **self.loss_kwargs)
        return loss_ins + loss_cate, loss_ins, loss_cate

    def gradients(self, img, targets):
        (loss, loss_ins, loss_cate), grads = self.grad_fn(img, targets)
        values = dict(loss_ins=float(loss_ins.asnumpy()), loss_cate=float(loss_cate.asnumpy()),
                      loss=float(loss.asnumpy()))
        return values, grads

    def __call__(self, img, targets, iteration):
        values, grads = self.gradients(img, targets)
        if not all(math.isfinite(v) for v in values.values()):
            raise NonFiniteLossError(
                f"non-finite loss at iteration {iteration + 1}: "
                + ", ".join(f"{k}={v}" for k, v in values.items()))
        self.apply_gradients(grads)
        return values
