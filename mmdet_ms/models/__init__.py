"""Importing this package registers every model part."""
from . import backbones, detectors, heads, necks  # noqa: F401  (registration)
from ..registry import DETECTORS


def build_detector(cfg, train_cfg=None, test_cfg=None):
    """Build the detector of ``cfg`` (the config's ``model`` dict)."""
    model_cfg = dict(cfg)
    model_cfg.setdefault("train_cfg", train_cfg)
    model_cfg.setdefault("test_cfg", test_cfg)
    return DETECTORS.build(model_cfg)


__all__ = ["build_detector"]
