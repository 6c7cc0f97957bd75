"""Writes ``epoch_N.ckpt`` (and ``latest.ckpt``) every ``checkpoint_config.interval`` epochs."""
from ...registry import HOOKS, ConfigError
from .hook import Hook


@HOOKS.register_module()
class CheckpointHook(Hook):
    """On rank 0, after every ``interval``-th epoch and after the last one."""

    def __init__(self, interval=1):
        if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
            raise ConfigError(f"checkpoint_config.interval must be a positive int, got {interval!r}")
        self.interval = interval

    def after_train_epoch(self, trainer):
        if trainer.epoch % self.interval == 0 or trainer.epoch == trainer.max_epochs:
            trainer.save_checkpoint()
