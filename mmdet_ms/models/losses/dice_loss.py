"""Dice loss of SOLO's mask branch."""
from mindspore import nn, ops

from ...registry import LOSSES, ConfigError

# Added to each squared sum in the denominator (the original's constant; 0.002 in all).
DICE_EPS = 0.001


def dice_loss(pred, target):
    """Per-instance dice loss `1 - 2 sum(p t) / (sum(p^2) + sum(t^2) + 0.002)`.

    Args:
        pred: (n, H, W) mask probabilities (after sigmoid).
        target: (n, H, W) binary masks, any numeric dtype.

    Returns:
        (n,) Tensor.
    """
    num = pred.shape[0]
    pred = pred.reshape(num, -1)  # (n, H*W)
    target = target.reshape(num, -1).astype(pred.dtype)
    overlap = ops.sum(pred * target, 1)
    pred_energy = ops.sum(pred * pred, 1) + DICE_EPS
    target_energy = ops.sum(target * target, 1) + DICE_EPS
    return 1 - (2 * overlap) / (pred_energy + target_energy)


@LOSSES.register_module()
class DiceLoss(nn.Cell):
    """``loss_weight`` × the mean dice loss of the instances whose weight is 1.

    ``construct(pred, target, weight)``: pred (n, H, W) probabilities, target (n, H, W) binary,
    weight (n,) 1 for a real instance, 0 for padding; no instance at all gives 0 (and zero
    gradients) where the original crashes on an empty concatenation.
    """

    def __init__(self, use_sigmoid=True, loss_weight=1.0):
        super().__init__()
        if not use_sigmoid:
            raise ConfigError("DiceLoss use_sigmoid=False is not supported: SOLO's dice loss is "
                              "computed on sigmoid mask probabilities")
        self.loss_weight = float(loss_weight)

    def construct(self, pred, target, weight):
        dice = dice_loss(pred, target)  # (n,)
        return self.loss_weight * ((dice * weight).sum() / ops.maximum(weight.sum(), 1.0))
