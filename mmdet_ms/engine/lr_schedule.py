"""mmcv's ``step`` learning-rate policy with linear (or constant) warmup."""
from ..registry import ConfigError


class StepLrSchedule:
    """lr(epoch, iteration): ``base_lr × gamma^k``, warmed up over the first ``warmup_iters``
    iterations as mmcv does. ``step`` a list: k = the steps passed by the 0-based epoch; an int:
    k = epoch // step (mmcv decays every ``step`` epochs then). Warmup:
    linear ``lr × (1 - (1 - i/warmup_iters)(1 - warmup_ratio))``, constant ``lr × warmup_ratio``.
    """

    def __init__(self, base_lr, step, gamma=0.1, warmup=None, warmup_iters=0, warmup_ratio=1 / 3,
                 policy="step"):
        if policy != "step":
            raise ConfigError(f"lr_config.policy={policy!r}: only 'step' is supported")
        if warmup not in (None, "linear", "constant"):
            raise ConfigError(f"lr_config.warmup={warmup!r}: use None, 'linear' or 'constant'")
        self.base_lr = base_lr
        self.step = step if isinstance(step, int) else sorted(step)
        self.gamma = gamma
        self.warmup = warmup
        self.warmup_iters = warmup_iters
        self.warmup_ratio = warmup_ratio

    def regular_lr(self, epoch):
        if isinstance(self.step, int):
            return self.base_lr * self.gamma ** (epoch // self.step)
        passed = sum(1 for s in self.step if epoch >= s)
        return self.base_lr * self.gamma ** passed

    def __call__(self, epoch, iteration):
        lr = self.regular_lr(epoch)
        if self.warmup is None or iteration >= self.warmup_iters:
            return lr
        if self.warmup == "constant":
            return lr * self.warmup_ratio
        return lr * (1 - (1 - iteration / self.warmup_iters) * (1 - self.warmup_ratio))
