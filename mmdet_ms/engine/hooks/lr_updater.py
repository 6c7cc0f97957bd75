"""Sets the learning rate of the coming iteration (``lr_config``)."""
from ...registry import HOOKS
from ..optimizer import set_learning_rate
from .hook import PRIORITIES, Hook


@HOOKS.register_module()
class LrUpdaterHook(Hook):
    """``schedule(epoch, iteration)`` → lr, written into the optimizer before each iteration."""

    priority = PRIORITIES["VERY_HIGH"]

    def __init__(self, schedule):
        self.schedule = schedule

    def before_train_iter(self, trainer):
        trainer.lr = self.schedule(trainer.epoch, trainer.iteration)
        set_learning_rate(trainer.optimizer, trainer.lr)
