"""One optimisation step of any detector: targets (host) → forward → losses → gradients; then,
from the optimizer hook, mean over ranks → clip by global L2 norm → update.

The engine knows a detector only through its training interface (see
`mmdet_ms.models.detectors.SOLOv2`): ``loss_names``, ``train_targets(batch, static_shapes)``
(numpy), ``train_outputs(img)`` (flat Tensors) and ``loss`` (a parameter-free cell from outputs
and targets to one scalar per name). The step sums the losses and differentiates the sum.

With ``jit_step`` the network and the losses each run as a compiled graph (and so do their
backward passes) inside the PyNative step: on the CPU (quick start) 1.7x faster a step than op
by op and 1.3x faster than with only the network compiled; faster too than compiling the whole
step as one graph, whose backward ran 1.5x slower than the compiled network's here. Each new
input shape (image size, or positive slots: a power of two) compiles again (seconds to tens of
seconds), so it suits fixed-size inputs (the quick start); op by op is the default.
"""
import math

import mindspore as ms
import mindspore.nn as nn
import mindspore.ops as ops


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; training stops before the update."""


class TrainOutputs(nn.Cell):
    """The detector's flat training outputs as one cell."""

    def __init__(self, network):
        super().__init__(auto_prefix=False)  # the parameters keep the network's names
        self.network = network

    def construct(self, img):
        return self.network.train_outputs(img)


class CompiledTrainOutputs(TrainOutputs):
    """``TrainOutputs`` compiled into one graph (per input shape)."""

    @ms.jit
    def construct(self, img):
        return self.network.train_outputs(img)


class TrainLosses(nn.Cell):
    """The detector's loss cell on flat arguments (outputs, then targets) → (total, *losses).

    Flat Tensor arguments, because a compiled cell takes a tuple argument as a constant.
    """

    def __init__(self, loss):
        super().__init__()
        self.loss = loss

    def construct(self, *tensors):
        return self._total_and_losses(tensors)

    def _total_and_losses(self, tensors):
        losses = self.loss(*tensors)
        total = losses[0]
        for value in losses[1:]:
            total = total + value
        return (total, *losses)


class CompiledTrainLosses(TrainLosses):
    """``TrainLosses`` compiled into one graph (per shape of its inputs)."""

    @ms.jit
    def construct(self, *tensors):
        return self._total_and_losses(tensors)


def check_finite(values, iteration):
    """Raise `NonFiniteLossError` naming the iteration (1-based) and the values if any is not
    finite."""
    if not all(math.isfinite(v) for v in values.values()):
        raise NonFiniteLossError(f"non-finite loss at iteration {iteration + 1}: "
                                 + ", ".join(f"{k}={v}" for k, v in values.items()))


class TrainStep:
    """Losses and gradients of a batch (``gradients``); ``apply_gradients`` updates the weights.

    Args:
        grad_clip: ``dict(max_norm=35, norm_type=2)`` or None.
        grad_reducer: averages gradients over data-parallel ranks (None: one process).
        jit_step: run the network and the losses as compiled cells, each with its backward pass
            (see the module docstring).
    """

    def __init__(self, network, optimizer, grad_clip=None, grad_reducer=None, jit_step=False):
        self.network = network
        self.optimizer = optimizer
        self.loss_names = tuple(network.loss_names)
        self.jit_step = jit_step
        self.outputs = (CompiledTrainOutputs if jit_step else TrainOutputs)(network)
        self.loss_cell = (CompiledTrainLosses if jit_step else TrainLosses)(network.loss)
        self.max_norm = None
        if grad_clip:
            if grad_clip.get("norm_type", 2) != 2:
                raise ValueError("optimizer_config.grad_clip: only norm_type=2 is supported")
            self.max_norm = float(grad_clip["max_norm"])
        self.grad_reducer = grad_reducer
        self.grad_fn = ms.value_and_grad(self.losses, None, optimizer.parameters, has_aux=True)
        # One compiled graph for reduce + clip + update: op by op over every parameter it costs
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
        """(total, *losses in ``loss_names`` order) for a batch and its targets (Tensors); the
        total is what is differentiated."""
        return self.loss_cell(*self.outputs(img), *targets)

    def targets(self, batch):
        """The detector's targets of a collated batch, as Tensors."""
        return tuple(ms.Tensor(array) for array in
                     self.network.train_targets(batch, static_shapes=self.jit_step))

    def gradients(self, batch):
        """Losses ({name: float}, with their sum as ``loss``) and gradients (one per
        ``optimizer.parameters``) of a collated batch."""
        (total, *losses), grads = self.grad_fn(ms.Tensor(batch["img"]), self.targets(batch))
        values = {name: float(value.asnumpy()) for name, value in zip(self.loss_names, losses)}
        values["loss"] = float(total.asnumpy())
        return values, grads

    def __call__(self, batch, iteration):
        """One whole step outside the trainer: losses (floats) of ``batch``; updates the weights
        unless a loss is not finite (`NonFiniteLossError`)."""
        values, grads = self.gradients(batch)
        check_finite(values, iteration)
        self.apply_gradients(grads)
        return values
