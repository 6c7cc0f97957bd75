"""SOLOv2's training losses from the head's outputs and the targets of `mmdet_ms.core.targets`.

Follows `SOLOv2Head.loss` of the original: a plain Python loop over levels and images (PyNative),
since the number of positive cells changes with every batch.
"""
import mindspore as ms
import numpy as np
from mindspore import ops

from ..losses import dice_loss, sigmoid_focal_loss


def solov2_loss(cate_preds, kernel_preds, mask_feat, targets_per_image, num_classes_out,
                ins_loss_weight=3.0, cate_loss_weight=1.0, focal_gamma=2.0, focal_alpha=0.25):
    """Mask (dice) and category (focal) losses of a batch.

    Args:
        cate_preds: list over levels of (B, C, S, S) raw category logits, C = num_classes_out.
        kernel_preds: list over levels of (B, E, S, S) dynamic kernels.
        mask_feat: (B, E, Hf, Wf) mask feature.
        targets_per_image: list over the B images of the list over levels of `LevelTargets`.
        num_classes_out: C, the number of category channels (the original's num_classes - 1).

    Returns:
        (loss_ins, loss_cate) scalar Tensors.
    """
    _check_inputs(cate_preds, kernel_preds, mask_feat, targets_per_image, num_classes_out)
    loss_ins = ins_loss_weight * _mask_loss(kernel_preds, mask_feat, targets_per_image)
    loss_cate = cate_loss_weight * _category_loss(cate_preds, targets_per_image, num_classes_out,
                                                  focal_gamma, focal_alpha)
    return loss_ins, loss_cate


def _check_inputs(cate_preds, kernel_preds, mask_feat, targets_per_image, num_classes_out):
    num_levels, batch = len(cate_preds), mask_feat.shape[0]
    if len(kernel_preds) != num_levels:
        raise ValueError(f"cate_preds has {num_levels} levels but kernel_preds has {len(kernel_preds)}")
    if len(targets_per_image) != batch:
        raise ValueError(f"targets_per_image has {len(targets_per_image)} images but mask_feat has {batch}")
    for img, image_targets in enumerate(targets_per_image):
        if len(image_targets) != num_levels:
            raise ValueError(f"targets of image {img} have {len(image_targets)} levels, the head {num_levels}")
    for level, cate_pred in enumerate(cate_preds):
        if cate_pred.shape[1] != num_classes_out:
            raise ValueError(f"cate_preds[{level}] has {cate_pred.shape[1]} channels, "
                             f"expected num_classes_out={num_classes_out}")
        if kernel_preds[level].shape[1] != mask_feat.shape[1]:
            raise ValueError(f"kernel_preds[{level}] has {kernel_preds[level].shape[1]} channels but "
                             f"mask_feat has {mask_feat.shape[1]}")


def _as_numpy(array):
    return array.asnumpy() if isinstance(array, ms.Tensor) else np.asarray(array)


def _dynamic_masks(kernel_pred, mask_feat, grid_order):
    """Mask logits of one image's positive cells: the 1x1 convolution of the mask feature by
    the kernels at `grid_order`, written as a matmul.

    kernel_pred: (E, S, S); mask_feat: (E, Hf, Wf); grid_order: (n_pos,) → (n_pos, Hf, Wf).
    """
    channels, feat_h, feat_w = mask_feat.shape
    kernels = ops.gather(kernel_pred.reshape(channels, -1), ms.Tensor(grid_order, ms.int32), 1)  # (E, n_pos)
    masks = ops.matmul(kernels.transpose(1, 0), mask_feat.reshape(channels, -1))  # (n_pos, Hf*Wf)
    return masks.reshape(-1, feat_h, feat_w)


def _mask_loss(kernel_preds, mask_feat, targets_per_image):
    """Dice loss averaged over every target of every level and image (duplicated cells included)."""
    dice_per_level = []
    for level, kernel_pred in enumerate(kernel_preds):
        mask_logits, mask_targets = [], []
        for img, image_targets in enumerate(targets_per_image):
            grid_order = _as_numpy(image_targets[level].grid_order)
            if grid_order.size == 0:
                continue
            mask_logits.append(_dynamic_masks(kernel_pred[img], mask_feat[img], grid_order))
            mask_targets.append(_as_numpy(image_targets[level].ins_labels))
        if mask_logits:
            targets = ms.Tensor(np.concatenate(mask_targets), ms.float32)
            dice_per_level.append(dice_loss(ops.sigmoid(ops.cat(mask_logits)), targets))
    if not dice_per_level:
        # The original crashes on an empty cat here. A zero still tied to the mask feature and
        # the kernels keeps the loss differentiable (zero gradients) for a batch without positives.
        return 0.0 * (mask_feat.sum() + sum(kernel_pred.sum() for kernel_pred in kernel_preds))
    return ops.cat(dice_per_level).mean()


def _category_loss(cate_preds, targets_per_image, num_classes_out, gamma, alpha):
    """Focal loss over all cells and classes / (number of positive cells + 1).

    Cells are ordered as in the original: level-major, then image, then row-major cell.
    """
    flat_preds = ops.cat([cate_pred.transpose(0, 2, 3, 1).reshape(-1, num_classes_out)
                          for cate_pred in cate_preds])  # (sum_l B*S_l*S_l, C)
    flat_labels = np.concatenate([
        _as_numpy(image_targets[level].cate_labels).reshape(-1)
        for level in range(len(cate_preds)) for image_targets in targets_per_image])
    num_pos = sum(int(_as_numpy(level_targets.ins_ind_labels).sum())
                  for image_targets in targets_per_image for level_targets in image_targets)
    return sigmoid_focal_loss(flat_preds, ms.Tensor(flat_labels, ms.int32), gamma=gamma, alpha=alpha,
                              avg_factor=float(num_pos + 1))
