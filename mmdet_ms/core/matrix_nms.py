"""Matrix NMS (SOLOv2): decay every mask's score by its overlap with higher-scored masks."""
import numpy as np

MATRIX_NMS_KERNELS = ("gaussian", "linear")


def matrix_nms(seg_masks, cate_labels, cate_scores, kernel="gaussian", sigma=2.0, sum_masks=None):
    """Scores after Matrix NMS, computed as the original SOLO code does, in float32.

    Args:
        seg_masks: (n, h, w) binary masks, sorted by score, highest first.
        cate_labels: (n,) class of each mask; only masks of the same class suppress each other.
        cate_scores: (n,) scores, descending.
        kernel: 'gaussian' (decay ``exp(-sigma * iou**2) / exp(-sigma * comp**2)``; the original
            multiplies by ``sigma`` where the paper divides) or 'linear' (``(1 - iou) / (1 - comp)``).
        sigma: the gaussian kernel's factor.
        sum_masks: (n,) pixel count of each mask; computed from ``seg_masks`` when None.

    Returns:
        (n,) float32 updated scores, in the input order.
    """
    if kernel not in MATRIX_NMS_KERNELS:
        raise ValueError(f"matrix_nms: kernel must be one of {MATRIX_NMS_KERNELS}, got '{kernel}'")
    num_masks = len(cate_labels)
    if num_masks == 0:
        return np.zeros((0,), dtype=np.float32)
    flat_masks = np.asarray(seg_masks).reshape(num_masks, -1).astype(np.float32)  # (n, h*w)
    if sum_masks is None:
        sum_masks = flat_masks.sum(axis=1)
    sum_masks = np.asarray(sum_masks, dtype=np.float32)
    cate_labels = np.asarray(cate_labels)
    cate_scores = np.asarray(cate_scores, dtype=np.float32)

    decay_iou = _same_class_iou_upper(flat_masks, sum_masks, cate_labels)  # (n, n), [i, j]: i above j
    # compensation of row i: how much i itself was overlapped by a higher-scored mask.
    compensate_iou = decay_iou.max(axis=0)[:, None]  # (n, 1), broadcast along row i
    if kernel == "gaussian":
        decay_matrix = np.exp(np.float32(-sigma) * decay_iou ** 2)
        compensate_matrix = np.exp(np.float32(-sigma) * compensate_iou ** 2)
        decay_coefficient = (decay_matrix / compensate_matrix).min(axis=0)
    else:
        # A duplicate mask (comp == 1) divides by zero here exactly as the original does.
        with np.errstate(divide="ignore", invalid="ignore"):
            decay_coefficient = ((1 - decay_iou) / (1 - compensate_iou)).min(axis=0)
    return (cate_scores * decay_coefficient).astype(np.float32)


def _same_class_iou_upper(flat_masks, sum_masks, cate_labels):
    """(n, n) IoU of mask i with mask j for i < j of the same class, 0 elsewhere."""
    inter_matrix = flat_masks @ flat_masks.T  # (n, n)
    union_matrix = sum_masks[None, :] + sum_masks[:, None] - inter_matrix
    with np.errstate(divide="ignore", invalid="ignore"):
        iou_matrix = np.triu(inter_matrix / union_matrix, k=1)
    same_class = np.triu(cate_labels[None, :] == cate_labels[:, None], k=1)
    return iou_matrix * same_class.astype(np.float32)
