"""Applies an iteration's gradients (``optimizer_config``: reduction over ranks, unscaling,
the finiteness check and clipping are part of the train step's compiled update), and stops on a
non-finite loss.

The update itself skips a step whose loss or gradients are not finite, so no weight is ever
touched by one; the losses are read from the device only every ``interval`` iterations (the log
interval) and at the end of an epoch, so the NaN stop names the iteration a little later than it
happens, but before any checkpoint of that epoch is written.
"""
from ...registry import HOOKS
from ..train_step import check_finite, read_records
from .hook import PRIORITIES, Hook, is_read_iteration


@HOOKS.register_module()
class NanStopHook(Hook):
    """Raise `NonFiniteLossError` naming the first iteration whose loss is NaN/inf."""

    priority = PRIORITIES["HIGH"]

    def __init__(self, interval=1):
        self.interval = interval
        self._pending = []  # (iteration, {name: Tensor}) not yet read

    def before_train_epoch(self, trainer):
        self._pending = []

    def after_train_iter(self, trainer):
        self._pending.append((trainer.iteration, trainer.outputs["log_vars"]))
        if not is_read_iteration(trainer, self.interval):
            return
        iterations, records = zip(*self._pending)
        self._pending = []
        for iteration, values in zip(iterations, read_records(list(records))):
            check_finite(values, iteration)


@HOOKS.register_module()
class OptimizerHook(Hook):
    """The update of the weights from ``trainer.outputs['grads']``; leaves whether it was applied
    in ``trainer.outputs['applied']`` (a bool Tensor)."""

    priority = PRIORITIES["ABOVE_NORMAL"]

    def after_train_iter(self, trainer):
        outputs = trainer.outputs
        outputs["applied"] = trainer.train_step.apply_gradients(outputs["grads"],
                                                                outputs["log_vars"]["loss"])
