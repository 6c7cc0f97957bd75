"""One SOLOv2 optimisation step in PyNative mode (the number of positive cells varies per batch).

targets (numpy, per image) → forward → dice + focal losses → gradients → mean over ranks →
clip by global L2 norm → SGD update.

With ``jit_network`` the network's forward (and so its backward) runs as one compiled graph while
the losses stay op by op: about a third faster per step on the CPU when every batch has the same
padded image size, but each new size costs a compilation (tens of seconds), so it suits fixed-size
inputs only (the quick start).
"""
import math

import mindspore as ms
import mindspore.nn as nn
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


class TrainOutputs(nn.Cell):
    """The network's raw training outputs (cate logits, kernels, mask feature) as one cell."""

    def __init__(self, network):
        super().__init__(auto_prefix=False)  # the parameters keep the network's names
        self.network = network

    def construct(self, img):
        return self.network.forward_train_outputs(img)


class CompiledTrainOutputs(TrainOutputs):
    """``TrainOutputs`` compiled into one graph (per input shape) inside the PyNative step."""

    @ms.jit
    def construct(self, img):
        return self.network.forward_train_outputs(img)


class TrainStep:
    """Callable on (img Tensor (B, 3, H, W), targets) → dict of float losses; updates the weights.

    Args:
        grad_clip: ``dict(max_norm=35, norm_type=2)`` or None.
        grad_reducer: averages gradients over data-parallel ranks (None: one process).
        jit_network: compile the network's forward/backward (see the module docstring).
    """

    def __init__(self, network, optimizer, grad_clip=None, grad_reducer=None, jit_network=False):
        self.network = network
        self.outputs = CompiledTrainOutputs(network) if jit_network else TrainOutputs(network)
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
        self._compiled_update = ms.jit(self._apply_gradients)

    def apply_gradients(self, grads):
        """Reduce, clip and apply ``grads`` (one per ``optimizer.parameters``).

        ``ms.mutable``: a plain tuple of new tensors at every step made ``ms.jit`` compile the
        graph again at every call (~2 s, and ~250 MB never freed).
        """
        return self._compiled_update(ms.mutable(tuple(grads)))

    def _apply_gradients(self, grads):
        if self.grad_reducer is not None:
            grads = self.grad_reducer(grads)
        if self.max_norm is not None:
            grads = ops.clip_by_global_norm(grads, self.max_norm)
        return self.optimizer(grads)

    def losses(self, img, targets):
        """(total, loss_ins, loss_cate) for a batch; the total is what is differentiated."""
        cate_preds, kernel_preds, mask_feat = self.outputs(img)
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
