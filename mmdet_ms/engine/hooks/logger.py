"""The training log: text lines in mmdetection's format on the console and in
``work_dir/<time>.log``, and one JSON object a line in ``work_dir/<time>.log.json`` (mmdet's
format, read by ``tools/analyze_logs.py``)."""
import json
import logging
import os
import time

from ...registry import HOOKS, ConfigError
from ..logger import format_eta
from ..train_step import read_records
from .hook import PRIORITIES, Hook, is_read_iteration


def log_file_path(logger):
    """The file the logger writes (its first ``FileHandler``), or None."""
    for handler in logger.handlers:
        if isinstance(handler, logging.FileHandler):
            return handler.baseFilename
    return None


def _rounded(value):
    return round(value, 6) if isinstance(value, float) else value


@HOOKS.register_module()
class TextLoggerHook(Hook):
    """Every ``interval`` iterations (and at the end of an epoch): the losses averaged over
    them, lr, time per iteration, data time and ETA (with float16: the loss scale and the steps
    skipped for overflowing gradients); after an evaluation, its metrics. The losses are read
    from the device here, once per interval.

    The JSON lines (rank 0, with a work dir): ``{"mode": "train", "epoch", "iter", "lr", "time",
    "data_time", <each loss>, "loss"}`` and ``{"mode": "val", "epoch", "iter", "lr",
    "segm_mAP", ...}``; the first line holds the config name and the seed.
    """

    priority = PRIORITIES["VERY_LOW"]

    def __init__(self, interval=50):
        if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
            raise ConfigError(f"log_config.interval must be a positive int, got {interval!r}")
        self.interval = interval
        self.json_path = None
        self._window = []
        self._data_times = []

    def before_run(self, trainer):
        text_path = log_file_path(trainer.logger)
        if trainer.rank != 0 or text_path is None:
            return
        self.json_path = text_path + ".json"
        self._write_json(dict(config=trainer.meta.get("config"), seed=trainer.meta.get("seed"),
                              exp_name=os.path.basename(trainer.work_dir or "")))

    def before_train_epoch(self, trainer):
        self._epoch_started = self._window_started = time.perf_counter()
        self._remaining = (trainer.max_epochs - trainer.epoch) * trainer.iters_per_epoch
        self._window, self._data_times = [], []

    def after_train_iter(self, trainer):
        outputs = trainer.outputs
        record = dict(outputs["log_vars"])
        if "applied" in outputs:
            record["applied"] = outputs["applied"]
        self._window.append(record)
        self._data_times.append(trainer.data_time)
        if not is_read_iteration(trainer, self.interval):
            return
        done = trainer.inner_iter + 1
        scaler = trainer.train_step.loss_scaler
        scale_record = [] if scaler is None else [dict(loss_scale=scaler.scale_value)]
        records = read_records(self._window + scale_record)  # the one read per interval
        extra = records.pop() if scale_record else {}
        now = time.perf_counter()
        iter_time = (now - self._window_started) / len(records)
        eta = (now - self._epoch_started) / done * (self._remaining - done)
        skipped = sum(1 for entry in records if entry.pop("applied", 1.0) == 0.0)
        mean = {key: sum(entry[key] for entry in records) / len(records) for key in records[0]}
        data_time = sum(self._data_times) / len(self._data_times)
        if skipped or scaler is not None:
            extra["skipped"] = skipped  # steps not applied: gradient overflow
        losses = ", ".join(f"{name}: {value:.4f}" for name, value in mean.items())
        extras = "".join(f", {name}: {value:g}" for name, value in extra.items())
        trainer.logger.info(
            f"Epoch [{trainer.epoch + 1}][{done}/{trainer.iters_per_epoch}]\tlr: {trainer.lr:.5e}, "
            f"eta: {format_eta(eta)}, time: {iter_time:.3f}, data_time: {data_time:.3f}, {losses}"
            f"{extras}")
        self._write_json(dict(mode="train", epoch=trainer.epoch + 1, iter=done, lr=trainer.lr,
                              time=iter_time, data_time=data_time, **mean, **extra))
        self._window, self._data_times = [], []
        self._window_started = time.perf_counter()

    def after_train_epoch(self, trainer):
        metrics = trainer.log_buffer.pop("val", None)
        if not metrics:
            return
        trainer.logger.info(f"Epoch(val) [{trainer.epoch}][{trainer.iters_per_epoch}]\t"
                            + ", ".join(f"{key}: {value:.4f}" for key, value in metrics.items()))
        self._write_json(dict(mode="val", epoch=trainer.epoch, iter=trainer.iters_per_epoch,
                              lr=trainer.lr, **metrics))

    def _write_json(self, entry):
        if self.json_path is None:
            return
        with open(self.json_path, "a", encoding="utf-8") as f:
            f.write(json.dumps({key: _rounded(value) for key, value in entry.items()}) + "\n")
