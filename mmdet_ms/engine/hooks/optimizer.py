"""Applies an iteration's gradients (``optimizer_config``: reduction over ranks and clipping are
part of the train step's compiled update), and stops on a non-finite loss before that."""
from ...registry import HOOKS
from ..train_step import check_finite
from .hook import PRIORITIES, Hook


@HOOKS.register_module()
class NanStopHook(Hook):
    """Raise `NonFiniteLossError` on a NaN/inf loss, before the update touches the weights."""

    priority = PRIORITIES["HIGH"]

    def after_train_iter(self, trainer):
        check_finite(trainer.outputs["log_vars"], trainer.iteration)


@HOOKS.register_module()
class OptimizerHook(Hook):
    """The update of the weights from ``trainer.outputs['grads']``."""

    priority = PRIORITIES["ABOVE_NORMAL"]

    def after_train_iter(self, trainer):
        trainer.train_step.apply_gradients(trainer.outputs["grads"])
