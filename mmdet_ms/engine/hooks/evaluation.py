"""Evaluation during training (``evaluation = dict(interval=1, metric=['segm', 'bbox'])``) and
the best checkpoint.

As detectron2's ``EvalHook``, the hook is handed the evaluation as a function of the network
(built by ``apis.train`` from ``data.val``), so the engine knows neither the model nor the data.
"""
import os

from ...registry import HOOKS, ConfigError
from ...utils.checkpoint import CheckpointError, read_checkpoint
from .hook import PRIORITIES, Hook


@HOOKS.register_module()
class EvalHook(Hook):
    """Every ``interval`` epochs: ``evaluate(network)`` in eval mode → {metric: value} (empty on
    ranks other than 0), into ``trainer.log_buffer['val']`` for the logger; on rank 0, when
    ``save_best`` (a metric name, e.g. 'segm_mAP') improves, ``best_<save_best>.ckpt``.

    After the checkpoint hook (so ``epoch_N.ckpt`` exists before a long evaluation) and before
    the logger (which writes the metrics).
    """

    priority = PRIORITIES["LOW"]

    def __init__(self, evaluate, interval=1, save_best=None):
        if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
            raise ConfigError(f"evaluation.interval must be a positive int, got {interval!r}")
        self.evaluate = evaluate
        self.interval = interval
        self.save_best = save_best
        self.best_score = None

    def best_path(self, trainer):
        return os.path.join(trainer.work_dir, f"best_{self.save_best}.ckpt")

    def before_run(self, trainer):
        """A resumed run keeps the best score of the run it continues."""
        path = self.best_path(trainer) if self.save_best else None
        if trainer.epoch == 0 or path is None or not os.path.exists(path):
            return
        try:
            self.best_score = read_checkpoint(path)[1].get("best_score")
        except CheckpointError as err:
            trainer.logger.warning(f"ignoring {path}: {str(err).splitlines()[0]}")

    def after_train_epoch(self, trainer):
        if trainer.epoch % self.interval:
            return
        trainer.network.set_train(False)
        try:
            metrics = self.evaluate(trainer.network)
        finally:
            trainer.network.set_train(True)
        if trainer.rank != 0:
            return
        trainer.log_buffer["val"] = metrics
        if self.save_best:
            self._keep_best(trainer, metrics)

    def _keep_best(self, trainer, metrics):
        if self.save_best not in metrics:
            raise ConfigError(f"evaluation.save_best='{self.save_best}' is not among the "
                              f"metrics: {', '.join(metrics)}")
        score = metrics[self.save_best]
        if self.best_score is not None and score <= self.best_score:
            return
        self.best_score = score
        path = self.best_path(trainer)
        trainer.save_checkpoint(path, best_metric=self.save_best, best_score=score)
        trainer.logger.info(f"best {self.save_best} {score:.4f} at epoch {trainer.epoch}: "
                            f"saved {path}")
