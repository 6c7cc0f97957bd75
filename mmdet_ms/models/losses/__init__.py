"""Loss functions."""
from .dice_loss import dice_loss
from .focal_loss import sigmoid_focal_loss

__all__ = ["dice_loss", "sigmoid_focal_loss"]
