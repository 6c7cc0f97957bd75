"""The training loop shared by ``train.py``, ``train_multi.py`` and ``train_multi_by_snap_ckpt.py``.

Epoch-based as mmdetection: the learning rate is set before every iteration, losses are logged
every ``log_interval`` iterations (averaged over them) with lr, time, data time and ETA, and
rank 0 writes ``epoch_N.ckpt`` every ``checkpoint_interval`` epochs plus ``latest.ckpt``.
"""
import os
import shutil
import time

import mindspore as ms

from .logger import format_eta
from .optimizer import set_learning_rate
from .train_state import restore_train_state, save_train_state
from .train_step import batch_targets


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
    def __init__(self, network, train_step, dataloader, lr_schedule, total_epochs, work_dir,
                 logger, rank=0, log_interval=50, checkpoint_interval=1, meta=None):
        self.network = network
        self.train_step = train_step
        self.dataloader = dataloader
        self.lr_schedule = lr_schedule
        self.total_epochs = total_epochs
        self.work_dir = work_dir
        self.logger = logger
        self.rank = rank
        self.log_interval = log_interval
        self.checkpoint_interval = checkpoint_interval
        self.meta = dict(meta or {})
        self.epoch = 0  # epochs completed
        self.iteration = 0  # iterations completed

    def resume(self, path):
        """Continue from a training checkpoint: weights, momentum, epoch and iteration."""
        meta = restore_train_state(path, self.network, self.train_step.optimizer)
        self.epoch, self.iteration = int(meta["epoch"]), int(meta["iter"])
        self.logger.info(f"resumed from {path}: epoch {self.epoch}, iteration {self.iteration}")

    def run(self):
        self.network.set_train(True)
        if self.epoch >= self.total_epochs:
            self.logger.info(f"nothing to do: {self.epoch} of {self.total_epochs} epochs done")
        while self.epoch < self.total_epochs:
            self.train_epoch()
            self.epoch += 1
            if self.epoch % self.checkpoint_interval == 0 or self.epoch == self.total_epochs:
                self.save_checkpoint()
        self.dataloader.close()

    def train_epoch(self):
        self.dataloader.set_epoch(self.epoch)
        iters_per_epoch = len(self.dataloader)
        remaining = (self.total_epochs - self.epoch) * iters_per_epoch
        window, window_start, started = [], time.perf_counter(), time.perf_counter()
        data_start = time.perf_counter()
        for index, batch in enumerate(self.dataloader):
            data_time = time.perf_counter() - data_start
            lr = self.lr_schedule(self.epoch, self.iteration)
            set_learning_rate(self.train_step.optimizer, lr)
            targets = batch_targets(self.network.bbox_head, batch)
            values = self.train_step(ms.Tensor(batch["img"]), targets, self.iteration)
            self.iteration += 1
            window.append(dict(values, data_time=data_time))
            if (index + 1) % self.log_interval == 0 or index + 1 == iters_per_epoch:
                elapsed = time.perf_counter() - window_start
                done = index + 1
                eta = (time.perf_counter() - started) / done * (remaining - done)
                self._log(index + 1, iters_per_epoch, lr, window, elapsed / len(window), eta)
                window, window_start = [], time.perf_counter()
            data_start = time.perf_counter()

    def _log(self, index, iters_per_epoch, lr, window, iter_time, eta):
        mean = {key: sum(v[key] for v in window) / len(window) for key in window[0]}
        losses = ", ".join(f"{k}: {mean[k]:.4f}" for k in ("loss_ins", "loss_cate", "loss"))
        self.logger.info(
            f"Epoch [{self.epoch + 1}][{index}/{iters_per_epoch}]\tlr: {lr:.5e}, "
            f"eta: {format_eta(eta)}, time: {iter_time:.3f}, data_time: {mean['data_time']:.3f}, "
            f"{losses}")

    def save_checkpoint(self):
        if self.rank != 0:
            return
        path = os.path.join(self.work_dir, f"epoch_{self.epoch}.ckpt")
        meta = dict(self.meta, epoch=self.epoch, iter=self.iteration)
        save_train_state(path, self.network, self.train_step.optimizer, meta)
        link_or_copy_atomically(path, os.path.join(self.work_dir, "latest.ckpt"))
        self.logger.info(f"saved {path}")
