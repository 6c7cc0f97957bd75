"""Loss functions, and the loss modules a config names through ``LOSSES``."""
from ...registry import LOSSES
from .dice_loss import DiceLoss, dice_loss
from .focal_loss import FocalLoss, sigmoid_focal_loss


def build_loss(cfg):
    """The loss module of a config dict such as ``dict(type='DiceLoss', loss_weight=3.0)``."""
    return LOSSES.build(cfg)


__all__ = ["DiceLoss", "FocalLoss", "build_loss", "dice_loss", "sigmoid_focal_loss"]
