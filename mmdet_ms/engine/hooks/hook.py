"""The hook interface of the trainer, as mmcv's ``Hook``: a method per point of the loop.

Hooks run in priority order (lower first; equal priorities in registration order), so a hook
that must see an iteration before another (the NaN check before the update) says so by its
priority, not by where it was added.
"""
from ...registry import ConfigError

PRIORITIES = dict(HIGHEST=0, VERY_HIGH=10, HIGH=30, ABOVE_NORMAL=40, NORMAL=50, BELOW_NORMAL=60,
                  LOW=70, VERY_LOW=90, LOWEST=100)


def priority_value(priority):
    """A priority name of ``PRIORITIES`` or an int 0..100 → the int."""
    if isinstance(priority, str):
        if priority not in PRIORITIES:
            raise ConfigError(f"hook priority '{priority}': use one of {', '.join(PRIORITIES)} "
                              "or an int 0..100")
        return PRIORITIES[priority]
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 100:
        raise ConfigError(f"hook priority {priority!r}: use one of {', '.join(PRIORITIES)} or "
                          "an int 0..100")
    return priority


def is_read_iteration(trainer, interval):
    """Whether the iteration just done ends a window of ``interval`` iterations or the epoch:
    where the hooks that read the device (log, NaN stop) read it."""
    done = trainer.inner_iter + 1
    return done % interval == 0 or done == trainer.iters_per_epoch


class Hook:
    """Override what you need; each method gets the `Trainer` (epoch, iteration, inner_iter,
    outputs, lr, network, optimizer, logger, work_dir, rank, log_buffer)."""

    priority = PRIORITIES["NORMAL"]

    def before_run(self, trainer):
        pass

    def after_run(self, trainer):
        pass

    def before_train_epoch(self, trainer):
        pass

    def after_train_epoch(self, trainer):
        pass

    def before_train_iter(self, trainer):
        pass

    def after_train_iter(self, trainer):
        pass
