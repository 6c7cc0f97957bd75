"""Dice loss of SOLO's mask branch."""
from mindspore import ops

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
