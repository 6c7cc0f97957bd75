"""One optimisation step of any detector: targets → forward → losses → gradients; then, from
the optimizer hook, mean over ranks → unscale → finiteness check and global L2 norm (one
pass) → clip → update (skipped when anything is not finite).

The engine knows a detector only through its training interface (see
`mmdet_ms.models.detectors.SOLOv2`): ``loss_names``, ``train_targets(batch, static_shapes)``
(numpy; the loader workers usually build them, ``batch["targets"]``), ``train_outputs(img)``
(flat Tensors) and ``loss`` (a parameter-free cell from outputs and targets to one scalar per
name). The step sums the losses and differentiates the sum.

Compiled by default (``jit_step``): the network and the losses each run as a compiled graph (and
so do their backward passes) inside the PyNative step, and the update is one more graph. On the
CPU (quick start) that is 1.7x faster a step than op by op and 1.3x faster than with only the
network compiled; faster too than compiling the whole step as one graph, whose backward ran 1.5x
slower than the compiled network's here. (For R101 at 800×800 one graph was as fast and
took 14.5 GB against ~22 GB, but a new positive-slot count compiled the whole network again,
67 s, and kept ~8 GB more.) A graph is compiled for each new input shape: the
image canvas (the loader pads every batch to one of a few, ``data.train.pad_to``) and, for the
losses, the positive slots (a power of two); each compilation is logged once.

Nothing here reads the device: the losses stay Tensors until a hook reads them (every
``log_config.interval`` iterations), and the finiteness check is part of the compiled update.
"""
import math
import time

import mindspore as ms
import mindspore.nn as nn
import mindspore.ops as ops
from mindspore.amp import DynamicLossScaler

from .mixed_precision import loss_scale_value


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; training stops before the update."""


class TrainOutputs(nn.Cell):
    """The detector's flat training outputs as one cell, in float32 (what the losses take, also
    when the network computes in float16)."""

    def __init__(self, network):
        super().__init__(auto_prefix=False)  # the parameters keep the network's names
        self.network = network

    def construct(self, img):
        return self._float32_outputs(img)

    def _float32_outputs(self, img):
        outputs = self.network.train_outputs(img)
        return tuple([ops.cast(output, ms.float32) for output in outputs])


class CompiledTrainOutputs(TrainOutputs):
    """``TrainOutputs`` compiled into one graph (per input shape).

    Cells with a form that is faster compiled but slower op by op declare a
    ``compiled_training_form`` flag (the GroupNorms: `mmdet_ms.models.layers.group_norm`); it is
    set here, before the first compilation (so also for the network's op-by-op runs after it).
    """

    def __init__(self, network):
        super().__init__(network)
        for _, cell in network.cells_and_names():
            if hasattr(cell, "compiled_training_form"):
                cell.compiled_training_form = True

    @ms.jit
    def construct(self, img):
        return self._float32_outputs(img)


class TrainLosses(nn.Cell):
    """The detector's loss cell on flat arguments (outputs, then targets) → (total, *losses).

    Flat Tensor arguments, because a compiled cell takes a tuple argument as a constant.
    """

    def __init__(self, loss):
        super().__init__()
        self.loss = loss

    def construct(self, *tensors):
        return with_total(self.loss(*tensors))


class CompiledTrainLosses(TrainLosses):
    """``TrainLosses`` compiled into one graph (per shape of its inputs)."""

    @ms.jit
    def construct(self, *tensors):
        return with_total(self.loss(*tensors))


def with_total(losses):
    """(loss, ...) → (their sum, loss, ...)."""
    total = losses[0]
    for value in losses[1:]:
        total = total + value
    return (total, *losses)


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
        jit_step: run the network and the losses as compiled graphs (see the module docstring);
            False: op by op, for debugging (the update is compiled either way).
        loss_scaler: a MindSpore loss scaler for float16 training
            (`engine.mixed_precision.build_loss_scaler`); None: float32, no scaling.
        logger: where each new compiled shape is reported (None: silent).
    """

    def __init__(self, network, optimizer, grad_clip=None, grad_reducer=None, jit_step=True,
                 loss_scaler=None, logger=None):
        self.network = network
        self.optimizer = optimizer
        self.loss_names = tuple(network.loss_names)
        self.jit_step = jit_step
        self.loss_scaler = loss_scaler
        self.logger = logger
        self.outputs = (CompiledTrainOutputs if jit_step else TrainOutputs)(network)
        self.loss_cell = (CompiledTrainLosses if jit_step else TrainLosses)(network.loss)
        self.max_norm = None
        if grad_clip:
            if grad_clip.get("norm_type", 2) != 2:
                raise ValueError("optimizer_config.grad_clip: only norm_type=2 is supported")
            self.max_norm = float(grad_clip["max_norm"])
        self.grad_reducer = grad_reducer
        self.grad_fn = ms.value_and_grad(self._scaled_losses, None, optimizer.parameters,
                                         has_aux=True)
        self.compiled_shapes = []  # (img shape, target shapes) of each compiled step, in order
        # One compiled graph for reduce + unscale + check + clip + update, also when the rest runs
        # op by op: op by op over every parameter it costs about as much as the backward pass of
        # a small model, and its finiteness test would read the device at every step.
        self._update = ms.jit(self._apply_gradients)

    def apply_gradients(self, grads, loss=None):
        """Reduce, unscale, clip and apply ``grads`` (one per ``optimizer.parameters``) unless
        a gradient (or ``loss``, the step's total) is not finite. Returns whether it was applied
        (a bool Tensor; not read here). A dynamic loss scale is adjusted either way.

        ``ms.mutable``: a plain tuple of new tensors at every step made ``ms.jit`` compile the
        graph again at every call (~2 s, and ~250 MB never freed).
        """
        loss = ms.Tensor(0.0, ms.float32) if loss is None else loss
        return self._update(ms.mutable(tuple(grads)), loss)

    def _apply_gradients(self, grads, loss):
        if self.grad_reducer is not None:
            grads = self.grad_reducer(grads)
        if self.loss_scaler is not None:
            grads = self.loss_scaler.unscale(grads)
        # One pass over the gradients for both the finiteness check and the clip's norm: a
        # non-finite gradient makes the sum non-finite (and so does a finite one whose square
        # overflows float32, |g| > 1.8e19, an overflow too).
        squares = sum_of_squares(grads)
        finite = ops.logical_and(ops.isfinite(squares), ops.isfinite(loss))
        if finite:
            if self.max_norm is not None:
                grads = clip_by_norm(grads, ops.sqrt(squares), self.max_norm)
            self.optimizer(grads)
        if self.loss_scaler is not None:
            self.loss_scaler.adjust(finite)
        return finite

    def losses(self, img, targets):
        """(total, *losses in ``loss_names`` order) for a batch and its targets (Tensors); the
        total is what is differentiated (times the loss scale)."""
        return self.loss_cell(*self.outputs(img), *targets)

    def _scaled_losses(self, img, targets):
        total, *losses = self.losses(img, targets)
        scaled = total if self.loss_scaler is None else self.loss_scaler.scale(total)
        return (scaled, total, *losses)

    def targets(self, batch):
        """The detector's targets of a collated batch, as Tensors: those the loader built
        (``batch["targets"]``) or, without them, built here."""
        arrays = batch.get("targets")
        if arrays is None:
            arrays = self.network.train_targets(batch, static_shapes=self.jit_step)
        return tuple(ms.Tensor(array) for array in arrays)

    def gradients(self, batch):
        """Losses ({name: scalar Tensor}, with their sum as ``loss``) and gradients (one per
        ``optimizer.parameters``, times the loss scale) of a collated batch; nothing is read
        from the device."""
        img, targets = ms.Tensor(batch["img"]), self.targets(batch)
        shapes = (tuple(img.shape), tuple(tuple(target.shape) for target in targets))
        started = time.perf_counter()
        (_, total, *losses), grads = self.grad_fn(img, targets)
        if self.jit_step and shapes not in self.compiled_shapes:
            self._log_compiled(shapes, time.perf_counter() - started)
        values = dict(zip(self.loss_names, losses))
        values["loss"] = total
        return values, grads

    def _log_compiled(self, shapes, seconds):
        self.compiled_shapes.append(shapes)
        if self.logger is not None:
            img_shape, target_shapes = shapes
            self.logger.info(
                f"train step shape {len(self.compiled_shapes)} compiled: img {img_shape}, "
                f"targets {', '.join(str(shape) for shape in target_shapes)}; first call "
                f"{seconds:.1f} s, compilation included")

    def state(self):
        """What a training checkpoint keeps of the step besides the weights: a dynamic loss
        scale and its count of clean steps (read from the device)."""
        if not isinstance(self.loss_scaler, DynamicLossScaler):
            return {}
        return dict(loss_scale=loss_scale_value(self.loss_scaler),
                    loss_scale_counter=int(self.loss_scaler.counter.asnumpy()))

    def load_state(self, meta):
        """Restore what `state` saved (a checkpoint's meta); other keys are ignored."""
        if isinstance(self.loss_scaler, DynamicLossScaler) and "loss_scale" in meta:
            scaler = self.loss_scaler
            scaler.scale_value.set_data(ms.Tensor(float(meta["loss_scale"]), ms.float32))
            scaler.counter.set_data(ms.Tensor(int(meta["loss_scale_counter"]),
                                              scaler.counter.dtype))

    def __call__(self, batch, iteration):
        """One whole step outside the trainer: losses (floats) of ``batch``; updates the weights
        unless a loss is not finite (`NonFiniteLossError`; nothing is updated)."""
        values, grads = self.gradients(batch)
        applied = self.apply_gradients(grads, values["loss"])
        values = read_values(dict(values, applied=applied))
        applied = values.pop("applied")
        check_finite(values, iteration)
        if not applied:
            raise NonFiniteLossError(f"non-finite gradients at iteration {iteration + 1}")
        return values


_row_square_sum = ops.MultitypeFuncGraph("row_square_sum")


@_row_square_sum.register("Tensor")
def _row_square_sum_one(tensor):
    rows = tensor.reshape(tensor.shape[0], -1) if tensor.ndim > 1 else tensor.reshape(1, -1)
    return ops.sum(ops.sum(ops.square(rows), 1))  # (rows, row size) → (rows,) → ()


_scaled = ops.MultitypeFuncGraph("scaled")


@_scaled.register("Tensor", "Tensor")
def _scaled_one(scale, tensor):
    return tensor * scale


def sum_of_squares(tensors):
    """Σ x² over every element of ``tensors`` (a float32 scalar).

    Each tensor is summed along its rows first: MindSpore's CPU kernel reduces a 2-D tensor's
    rows much faster than a whole tensor (R101's 65 M gradients: 0.10 s so, 0.34 s with one
    ``ops.sum`` each), and as accurately. Mapped with ``HyperMap``: the same over a Python list
    took the quick start's update ~10x longer to compile (8.8 s against 0.7 s).
    """
    return ops.addn(ops.HyperMap()(_row_square_sum, tensors))


def clip_by_norm(grads, norm, max_norm):
    """``grads`` of global L2 norm ``norm`` scaled by min(max_norm / (norm + 1e-6), 1), the
    arithmetic of torch's ``clip_grad_norm_`` (the original's optimizer hook): below
    ``max_norm`` they are unchanged, bit for bit."""
    scale = ops.minimum(max_norm / (norm + 1e-6), 1.0)
    return ops.HyperMap()(ops.partial(_scaled, scale), grads)


def read_values(values):
    """{name: scalar Tensor} → {name: float}, in one read of the device."""
    return read_records([values])[0]


def read_records(records):
    """A list of {name: scalar Tensor (or number)} → the same of floats, in one read of the
    device (booleans become 0.0/1.0)."""
    scalars = [value for record in records for value in record.values()]
    if not scalars:
        return [{} for _ in records]
    flat = ops.stack([ops.cast(ms.Tensor(value) if not isinstance(value, ms.Tensor) else value,
                               ms.float32).reshape(()) for value in scalars]).asnumpy()
    floats, start = [], 0
    for record in records:
        floats.append({name: float(value) for name, value in zip(record, flat[start:])})
        start += len(record)
    return floats
