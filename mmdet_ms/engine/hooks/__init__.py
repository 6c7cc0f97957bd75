"""Trainer hooks (mmcv's, by name): lr schedule, NaN stop, update, checkpoints, evaluation,
text + JSON log; users add their own through ``custom_hooks`` and the ``HOOKS`` registry."""
from .checkpoint import CheckpointHook
from .evaluation import EvalHook
from .hook import PRIORITIES, Hook, priority_value
from .logger import TextLoggerHook, log_file_path
from .lr_updater import LrUpdaterHook
from .optimizer import NanStopHook, OptimizerHook

__all__ = ["CheckpointHook", "EvalHook", "Hook", "LrUpdaterHook", "NanStopHook", "OptimizerHook",
           "PRIORITIES", "TextLoggerHook", "log_file_path", "priority_value"]
