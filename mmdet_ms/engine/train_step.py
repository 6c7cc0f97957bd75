"""One SOLOv2 optimisation step: targets (numpy, per image) → forward → dice + focal losses →
gradients → mean over ranks → clip by global L2 norm → SGD update.

The targets are packed into fixed shapes (`pack_targets`), so with ``jit_step`` the network and
the losses each run as a compiled graph (and so do their backward passes) inside the PyNative
step: on the CPU (quick start) 1.7x faster a step than op by op and 1.3x faster than with only the
network compiled; faster too than compiling the whole step as one graph, whose backward ran 1.5x
slower than the compiled network's here. Each new input shape (image size, or positive slots: a
power of two) compiles again (seconds to tens of seconds), so it suits fixed-size inputs (the
quick start); op by op is the default.
"""
import math

import mindspore as ms
import mindspore.nn as nn
import mindspore.ops as ops

from ..core.targets import MASK_FEAT_STRIDE, solov2_targets_single
from ..models.heads.solov2_loss import as_tensors, pack_targets, solov2_loss


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
    """``TrainOutputs`` compiled into one graph (per input shape)."""

    @ms.jit
    def construct(self, img):
        return self.network.forward_train_outputs(img)


class TrainLosses(nn.Cell):
    """`solov2_loss` on flat arguments: the L cate logits, the L kernels, the mask feature, then
    the `PackedTargets` fields → (total, loss_ins, loss_cate).

    Flat Tensor arguments, because a compiled cell takes a tuple argument as a constant.
    """

    def __init__(self, num_levels, loss_kwargs):
        super().__init__()
        self.num_levels = num_levels
        self.loss_kwargs = loss_kwargs

    def construct(self, *tensors):
        return self._losses(tensors)

    def _losses(self, tensors):
        levels = self.num_levels
        loss_ins, loss_cate = solov2_loss(list(tensors[:levels]), list(tensors[levels:2 * levels]),
                                          tensors[2 * levels], tensors[2 * levels + 1:],
                                          **self.loss_kwargs)
        return loss_ins + loss_cate, loss_ins, loss_cate


class CompiledTrainLosses(TrainLosses):
    """``TrainLosses`` compiled into one graph (per shape of its inputs)."""

    @ms.jit
    def construct(self, *tensors):
        return self._losses(tensors)


class TrainStep:
    """Callable on (img Tensor (B, 3, H, W), targets) → dict of float losses; updates the weights.

    Args:
        grad_clip: ``dict(max_norm=35, norm_type=2)`` or None.
        grad_reducer: averages gradients over data-parallel ranks (None: one process).
        jit_step: run the network and the losses as compiled cells, each with its backward pass
            (see the module docstring).
    """

    def __init__(self, network, optimizer, grad_clip=None, grad_reducer=None, jit_step=False):
        self.network = network
        self.optimizer = optimizer
        head = network.bbox_head
        loss_kwargs = dict(
            num_classes_out=head.cate_out_channels,
            ins_loss_weight=head.loss_ins_cfg.get("loss_weight", 3.0),
            cate_loss_weight=head.loss_cate_cfg.get("loss_weight", 1.0),
            focal_gamma=head.loss_cate_cfg.get("gamma", 2.0),
            focal_alpha=head.loss_cate_cfg.get("alpha", 0.25))
        self.jit_step = jit_step
        self.outputs = (CompiledTrainOutputs if jit_step else TrainOutputs)(network)
        self.loss_cell = (CompiledTrainLosses if jit_step else TrainLosses)(len(head.num_grids),
                                                                            loss_kwargs)
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
        """(total, loss_ins, loss_cate) for a batch and its `PackedTargets`; the total is what is
        differentiated."""
        cate_preds, kernel_preds, mask_feat = self.outputs(img)
        return self.loss_cell(*cate_preds, *kernel_preds, mask_feat, *targets)

    def gradients(self, img, targets_per_image):
        """Losses (floats) and gradients (one per ``optimizer.parameters``) of a batch, from the
        per-image targets of `batch_targets`."""
        targets = as_tensors(pack_targets(targets_per_image, round_to_power_of_two=self.jit_step))
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
