"""SOLOv2's training losses from the head's outputs and the targets of `mmdet_ms.core.targets`.

The losses of `SOLOv2Head.loss` in the original, on targets packed into arrays of fixed shapes
(`pack_targets`): the positive cells of each image are padded to a common count and masked out of
the mean. Fixed shapes let the losses and their backward pass run as a compiled graph (see
`engine.train_step`), which a plain loop over a varying number of positives does not allow; the
padded entries add nothing to the losses and nothing to the gradients.
"""
from collections import namedtuple

import mindspore as ms
import numpy as np
from mindspore import nn, ops

from ...core.targets import MASK_FEAT_STRIDE, solov2_targets_single
from ..losses import DiceLoss, FocalLoss

PackedTargets = namedtuple("PackedTargets", ["cate_labels", "num_pos", "pos_cells", "pos_valid",
                                             "mask_targets"])
PackedTargets.__doc__ = """A batch's targets in fixed shapes, B images, P positive slots per image.

cate_labels: (Σ_l B*S_l²,) int32, 0 = background; cells level-major, then image, then row-major
    (the order of the original's flattened category predictions).
num_pos: () float32, the number of positive cells of the batch (the focal loss divides by it + 1).
pos_cells: (B, P) int32, the cell of each positive among the image's Σ_l S_l² cells (levels
    concatenated, row-major within a level); duplicates possible, as in the original.
pos_valid: (B, P) float32, 1 for a positive, 0 for padding.
mask_targets: (B, P, Hf, Wf) uint8, the mask each positive must predict (zeros for padding).
"""

MIN_POSITIVE_SLOTS = 16


def positive_slots(count, round_to_power_of_two=True):
    """Slots P for ``count`` positives: the next power of two (>= 16), so that a compiled step
    sees only a few distinct shapes; ``count`` itself (at least 1) otherwise."""
    if not round_to_power_of_two:
        return max(count, 1)
    return max(MIN_POSITIVE_SLOTS, 1 << max(count - 1, 0).bit_length())


def pack_targets(targets_per_image, round_to_power_of_two=True):
    """Per-image lists of `LevelTargets` (one per level) → `PackedTargets` of numpy arrays."""
    num_levels = len(targets_per_image[0])
    level_cells = [image_target.cate_labels.size for image_target in targets_per_image[0]]
    level_offsets = np.cumsum([0] + level_cells[:-1])
    feat_size = targets_per_image[0][0].ins_labels.shape[1:]
    cate_labels = np.concatenate([image_targets[level].cate_labels.reshape(-1)
                                  for level in range(num_levels)
                                  for image_targets in targets_per_image]).astype(np.int32)
    cells = [np.concatenate([level_targets.grid_order + offset
                             for level_targets, offset in zip(image_targets, level_offsets)])
             for image_targets in targets_per_image]
    slots = positive_slots(max(len(image_cells) for image_cells in cells), round_to_power_of_two)
    batch = len(targets_per_image)
    pos_cells = np.zeros((batch, slots), np.int32)
    pos_valid = np.zeros((batch, slots), np.float32)
    mask_targets = np.zeros((batch, slots) + tuple(feat_size), np.uint8)
    for img, (image_targets, image_cells) in enumerate(zip(targets_per_image, cells)):
        count = len(image_cells)
        pos_cells[img, :count] = image_cells
        pos_valid[img, :count] = 1
        if count:
            mask_targets[img, :count] = np.concatenate([t.ins_labels for t in image_targets])
    num_pos = sum(int(t.ins_ind_labels.sum()) for image_targets in targets_per_image
                  for t in image_targets)
    return PackedTargets(cate_labels, np.float32(num_pos), pos_cells, pos_valid, mask_targets)


class SOLOv2TargetAssigner:
    """Collated batch → its `PackedTargets` as a plain tuple of numpy arrays.

    numpy only and holding only the head's config values, so that it pickles to the data-loading
    workers and builds the targets there (``SOLOv2.target_assigner``). ``static_shapes``:
    positives padded to a power of two per image (`positive_slots`), so that a compiled loss
    meets few distinct shapes; otherwise to the batch's largest count.
    """

    def __init__(self, scale_ranges, num_grids, sigma, static_shapes=False):
        self.scale_ranges = tuple(tuple(scale_range) for scale_range in scale_ranges)
        self.num_grids = tuple(num_grids)
        self.sigma = sigma
        self.static_shapes = bool(static_shapes)

    def per_image(self, batch):
        """Per image, per level `LevelTargets` (the original's ``solov2_target_single``), masks
        at the mask feature's size (the padded batch's / 4)."""
        height, width = batch["img"].shape[2:]
        mask_feat_size = (height // MASK_FEAT_STRIDE, width // MASK_FEAT_STRIDE)
        return [solov2_targets_single(boxes, labels, masks, mask_feat_size, self.scale_ranges,
                                      self.num_grids, self.sigma)
                for boxes, labels, masks in zip(batch["gt_bboxes"], batch["gt_labels"],
                                                batch["gt_masks"])]

    def __call__(self, batch):
        return tuple(pack_targets(self.per_image(batch), self.static_shapes))


def as_tensors(targets):
    """`PackedTargets` of numpy arrays → of Tensors (the form `solov2_loss` takes)."""
    return PackedTargets(*(ms.Tensor(array) for array in targets))


class SOLOv2Loss(nn.Cell):
    """The losses of a batch from flat Tensor arguments: the L cate logits, the L kernels, the
    mask feature, then the `PackedTargets` fields → (loss_ins, loss_cate).

    Flat arguments, because a compiled cell takes a tuple argument as a constant (and a
    namedtuple argument silently got zero gradients). The two loss modules come from the head's
    ``loss_ins``/``loss_cate`` configs (``LOSSES``).
    """

    def __init__(self, num_levels, num_classes_out, loss_ins, loss_cate):
        super().__init__()
        self.num_levels = num_levels
        self.num_classes_out = num_classes_out
        self.loss_ins = loss_ins
        self.loss_cate = loss_cate

    def construct(self, *tensors):
        levels = self.num_levels
        return _solov2_losses(list(tensors[:levels]), list(tensors[levels:2 * levels]),
                              tensors[2 * levels], tensors[2 * levels + 1:], self.num_classes_out,
                              self.loss_ins, self.loss_cate)


def solov2_loss(cate_preds, kernel_preds, mask_feat, targets, num_classes_out, loss_ins=None,
                loss_cate=None):
    """Mask (dice) and category (focal) losses of a batch.

    Args:
        cate_preds: list over levels of (B, C, S, S) raw category logits, C = num_classes_out.
        kernel_preds: list over levels of (B, E, S, S) dynamic kernels.
        mask_feat: (B, E, Hf, Wf) mask feature.
        targets: `PackedTargets` of Tensors (`as_tensors(pack_targets(...))`), or a plain tuple
            of them in that order (what a compiled graph takes: namedtuples do not enter graphs).
        num_classes_out: C, the number of category channels (the original's num_classes - 1).
        loss_ins, loss_cate: a `DiceLoss` and a `FocalLoss` module (None: the original's
            defaults, dice × 3 and focal γ=2, α=0.25; PyNative only, as they are built here).

    Returns:
        (loss_ins, loss_cate) scalar Tensors.
    """
    loss_ins = loss_ins if loss_ins is not None else DiceLoss(loss_weight=3.0)
    loss_cate = loss_cate if loss_cate is not None else FocalLoss(gamma=2.0, alpha=0.25)
    return _solov2_losses(cate_preds, kernel_preds, mask_feat, targets, num_classes_out, loss_ins,
                          loss_cate)


def _solov2_losses(cate_preds, kernel_preds, mask_feat, targets, num_classes_out, loss_ins,
                   loss_cate):
    cate_labels, num_pos, pos_cells, pos_valid, mask_targets = targets
    _check_shapes(cate_preds, kernel_preds, mask_feat, cate_labels, mask_targets, num_classes_out)
    mask_probs = _mask_probabilities(kernel_preds, mask_feat, pos_cells)  # (B*P, Hf, Wf)
    feat_h, feat_w = mask_feat.shape[2:]
    ins = loss_ins(mask_probs, mask_targets.reshape(-1, feat_h, feat_w), pos_valid.reshape(-1))
    cate = loss_cate(_flat_category_logits(cate_preds, num_classes_out), cate_labels, num_pos + 1)
    return ins, cate


def _check_shapes(cate_preds, kernel_preds, mask_feat, cate_labels, mask_targets, num_classes_out):
    batch, channels, feat_h, feat_w = mask_feat.shape
    if len(kernel_preds) != len(cate_preds):
        raise ValueError(f"cate_preds has {len(cate_preds)} levels but kernel_preds has {len(kernel_preds)}")
    for level, (cate_pred, kernel_pred) in enumerate(zip(cate_preds, kernel_preds)):
        if cate_pred.shape[1] != num_classes_out:
            raise ValueError(f"cate_preds[{level}] has {cate_pred.shape[1]} channels, "
                             f"expected num_classes_out={num_classes_out}")
        if kernel_pred.shape[1] != channels:
            raise ValueError(f"kernel_preds[{level}] has {kernel_pred.shape[1]} channels but "
                             f"mask_feat has {channels}")
    num_cells = sum(cate_pred.shape[0] * cate_pred.shape[2] * cate_pred.shape[3] for cate_pred in cate_preds)
    if tuple(cate_labels.shape) != (num_cells,):
        raise ValueError(f"cate_labels has shape {tuple(cate_labels.shape)}, the head "
                         f"has {num_cells} cells in the batch")
    mask_shape = tuple(mask_targets.shape)
    if len(mask_shape) != 4 or mask_shape[0] != batch or mask_shape[2:] != (feat_h, feat_w):
        raise ValueError(f"mask_targets has shape {mask_shape}, expected "
                         f"({batch}, P, {feat_h}, {feat_w})")


def _mask_probabilities(kernel_preds, mask_feat, pos_cells):
    """(B*P, Hf, Wf) mask probabilities of every positive slot of every image (padding included;
    the dice loss weights it 0). Averaged over every positive of every level and image, duplicated
    cells included, as the original does.

    The dynamic masks are the 1x1 convolution of the mask feature by the kernels at the positive
    cells, written as one batched matmul.
    """
    batch, channels, feat_h, feat_w = mask_feat.shape
    kernels = ops.cat([kernel_pred.reshape(batch, channels, -1) for kernel_pred in kernel_preds],
                      axis=2)  # (B, E, Σ S²)
    num_cells, slots = kernels.shape[2], pos_cells.shape[1]
    flat_cells = pos_cells + ops.arange(batch, dtype=pos_cells.dtype).reshape(-1, 1) * num_cells
    pos_kernels = ops.gather(kernels.transpose(0, 2, 1).reshape(batch * num_cells, channels),
                             flat_cells.reshape(-1), 0).reshape(batch, slots, channels)  # (B, P, E)
    mask_logits = ops.bmm(pos_kernels, mask_feat.reshape(batch, channels, -1))  # (B, P, Hf*Wf)
    return ops.sigmoid(mask_logits.reshape(batch * slots, feat_h, feat_w))


def _flat_category_logits(cate_preds, num_classes_out):
    """(Σ_l B*S_l*S_l, C) logits; the focal loss sums them over all cells and classes and divides
    by (number of positive cells + 1). Cells are ordered as in the original: level-major, then
    image, then row-major cell."""
    return ops.cat([cate_pred.transpose(0, 2, 3, 1).reshape(-1, num_classes_out)
                    for cate_pred in cate_preds])
