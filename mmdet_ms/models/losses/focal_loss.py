"""Sigmoid focal loss (Lin et al.), as the original's `FocalLoss(use_sigmoid=True)`."""
from mindspore import nn, ops

from ...registry import LOSSES, ConfigError


def sigmoid_focal_loss(logits, labels, gamma=2.0, alpha=0.25, avg_factor=None):
    """Focal loss summed over all elements and divided by `avg_factor` (the mean if it is None).

    The original calls a CUDA kernel (`mmdet.ops.sigmoid_focal_loss`, no CPU version) whose
    element loss equals its python `py_sigmoid_focal_loss`: class k's column is positive for
    label k + 1, weighted alpha * (1 - p)^gamma; every other column of a label >= 0 is negative,
    weighted (1 - alpha) * p^gamma; both times binary cross-entropy with logits. (The CUDA kernel
    clamps log(p) at log(FLT_MIN) for logits below about -87; this does not.)

    Args:
        logits: (N, C) raw class scores.
        labels: (N,) int, 0 = background, k in 1..C = class of column k - 1.
        avg_factor: divisor of the summed loss (float or scalar Tensor).

    Returns:
        scalar Tensor.
    """
    num_classes = logits.shape[1]
    class_ids = ops.arange(1, num_classes + 1, dtype=labels.dtype).reshape(1, -1)
    targets = (labels.reshape(-1, 1) == class_ids).astype(logits.dtype)  # (N, C) one-hot, no bg column
    probs = ops.sigmoid(logits)
    one_minus_pt = (1 - probs) * targets + probs * (1 - targets)
    focal_weight = (alpha * targets + (1 - alpha) * (1 - targets)) * ops.pow(one_minus_pt, gamma)
    loss = ops.binary_cross_entropy_with_logits(logits, targets, reduction="none") * focal_weight
    if avg_factor is None:
        return loss.mean()
    return loss.sum() / avg_factor


@LOSSES.register_module()
class FocalLoss(nn.Cell):
    """``loss_weight`` × `sigmoid_focal_loss`; ``construct(logits, labels, avg_factor)``."""

    def __init__(self, use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0):
        super().__init__()
        if not use_sigmoid:
            raise ConfigError("FocalLoss use_sigmoid=False (softmax focal loss) is not "
                              "supported: SOLO's category branch is trained with sigmoids")
        self.gamma = float(gamma)
        self.alpha = float(alpha)
        self.loss_weight = float(loss_weight)

    def construct(self, logits, labels, avg_factor):
        return self.loss_weight * sigmoid_focal_loss(logits, labels, self.gamma, self.alpha,
                                                     avg_factor)
