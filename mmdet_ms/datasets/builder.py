"""Build a dataset from its config dict (``data.train`` / ``data.val`` / ``data.test``)."""
import copy

from ..registry import DATASETS, ConfigError


def build_dataset(cfg, default_args=None):
    """``DATASETS.build`` on a copy of ``cfg``; ``default_args`` fill keys the config leaves out
    (e.g. ``dict(test_mode=True)`` for evaluation)."""
    return DATASETS.build(copy.deepcopy(cfg), **(default_args or {}))


def check_num_classes(num_classes, dataset_classes, where="model.bbox_head.num_classes"):
    """SOLOv2 configs count the background: ``num_classes`` must be the data set's C + 1."""
    expected = len(dataset_classes) + 1
    if num_classes != expected:
        raise ConfigError(
            f"{where} is {num_classes} but the data set has {len(dataset_classes)} classes; "
            f"num_classes counts the background (COCO: 80 classes -> 81), so set it to "
            f"{expected} with --cfg-options model.bbox_head.num_classes={expected}")
