"""The training loop shared by ``train.py``, ``train_multi.py`` and ``train_multi_by_snap_ckpt.py``.

Epoch-based as mmcv's runner: the loop only fetches batches and computes losses and gradients
(`TrainStep.gradients`); everything else is a hook (`engine.hooks`), run in priority order:
the lr schedule before each iteration; after it the NaN check, the update, the log; after each
epoch the checkpoint, the evaluation and its log.
"""
import os
import shutil
import time

from .hooks.hook import priority_value
from .train_state import restore_train_state, save_train_state


def link_or_copy_atomically(src, dst):
    """Make ``dst`` a hard link to (or a copy of) ``src``, replacing ``dst`` in one step."""
    tmp = f"{dst}.tmp{os.getpid()}"
    if os.path.exists(tmp):
        os.remove(tmp)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copy2(src, tmp)
    os.replace(tmp, dst)


class Trainer:
    """State the hooks read: ``epoch`` (epochs completed), ``iteration`` (iterations completed
    before the current one), ``inner_iter`` (its index in the epoch), ``outputs``
    (``log_vars``: {name: scalar Tensor}, read them with `train_step.read_records` (a host
    sync: do it every few iterations, not every one); ``grads``; after the update ``applied``,
    a bool Tensor), ``data_time``, ``lr``, ``log_buffer`` (what a hook
    leaves for another, e.g. evaluation metrics for the logger)."""

    def __init__(self, network, train_step, dataloader, max_epochs, work_dir, logger, rank=0,
                 meta=None):
        self.network = network
        self.train_step = train_step
        self.optimizer = train_step.optimizer
        self.dataloader = dataloader
        self.max_epochs = max_epochs
        self.work_dir = work_dir
        self.logger = logger
        self.rank = rank
        self.meta = dict(meta or {})
        self.hooks = []
        self.epoch = 0
        self.iteration = 0
        self.inner_iter = 0
        self.outputs = {}
        self.data_time = 0.0
        self.lr = 0.0
        self.log_buffer = {}

    @property
    def iters_per_epoch(self):
        return len(self.dataloader)

    def register_hook(self, hook, priority=None):
        """Add ``hook``; ``priority`` (a name of ``hooks.PRIORITIES`` or 0..100) overrides the
        hook's own."""
        if priority is not None:
            hook.priority = priority_value(priority)
        index = len(self.hooks)
        while index > 0 and self.hooks[index - 1].priority > hook.priority:
            index -= 1
        self.hooks.insert(index, hook)

    def call_hook(self, stage):
        for hook in self.hooks:
            getattr(hook, stage)(self)

    def resume(self, path):
        """Continue from a training checkpoint: weights, momentum, epoch and iteration (and a
        dynamic loss scale)."""
        meta = restore_train_state(path, self.network, self.optimizer)
        self.train_step.load_state(meta)
        self.epoch, self.iteration = int(meta["epoch"]), int(meta["iter"])
        self.logger.info(f"resumed from {path}: epoch {self.epoch}, iteration {self.iteration}")

    def run(self):
        self.network.set_train(True)
        self.call_hook("before_run")
        if self.epoch >= self.max_epochs:
            self.logger.info(f"nothing to do: {self.epoch} of {self.max_epochs} epochs done")
        while self.epoch < self.max_epochs:
            self.train_epoch()
        self.call_hook("after_run")
        self.dataloader.close()

    def train_epoch(self):
        self.dataloader.set_epoch(self.epoch)
        self.call_hook("before_train_epoch")
        data_start = time.perf_counter()
        for self.inner_iter, batch in enumerate(self.dataloader):
            self.data_time = time.perf_counter() - data_start
            self.call_hook("before_train_iter")
            log_vars, grads = self.train_step.gradients(batch)
            self.outputs = dict(log_vars=log_vars, grads=grads)
            self.call_hook("after_train_iter")
            self.outputs = {}
            self.iteration += 1
            data_start = time.perf_counter()
        self.epoch += 1
        self.call_hook("after_train_epoch")

    def save_checkpoint(self, path=None, **meta):
        """Rank 0: the training state into ``path`` (default ``epoch_N.ckpt``, then linked as
        ``latest.ckpt``), atomically; ``meta`` is stored beside epoch, iteration and the run's
        meta."""
        if self.rank != 0:
            return
        epoch_file = path is None
        path = path or os.path.join(self.work_dir, f"epoch_{self.epoch}.ckpt")
        save_train_state(path, self.network, self.optimizer,
                         dict(self.meta, epoch=self.epoch, iter=self.iteration,
                              **self.train_step.state(), **meta))
        if epoch_file:
            link_or_copy_atomically(path, os.path.join(self.work_dir, "latest.ckpt"))
            self.logger.info(f"saved {path}")
