"""Build a dataset from its config dict (``data.train`` / ``data.val`` / ``data.test``)."""
import copy

from ..registry import DATASETS


def build_dataset(cfg, default_args=None):
    """``DATASETS.build`` on a copy of ``cfg``; ``default_args`` fill keys the config leaves out
    (e.g. ``dict(test_mode=True)`` for evaluation)."""
    return DATASETS.build(copy.deepcopy(cfg), **(default_args or {}))
