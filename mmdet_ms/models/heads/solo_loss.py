"""SOLO v1 and Decoupled SOLO training losses (the original heads' ``loss``) on targets packed
into fixed shapes, as `solov2_loss` does for SOLOv2: each level's positives padded to a common
count per image and weighted 0, so that the losses (and their backward) can run compiled.

Mask loss: dice on the positives' mask probabilities (SOLO v1: the cell's own channel; Decoupled
SOLO: sigmoid(X_j) * sigmoid(Y_i) for cell (i, j)), averaged over every positive of every level
and image, times ``loss_ins['loss_weight']`` (the original reads only that key of ``loss_ins``).
Category loss: the ``loss_cate`` module (focal) over all cells, divided by (positives + 1).
"""
from collections import namedtuple

import numpy as np
from mindspore import nn, ops

from ...core.solo_targets import solo_targets_single
from ..losses import dice_loss
from .solov2_loss import _flat_category_logits, positive_slots

class PackedSOLOTargets(namedtuple("PackedSOLOTargets", ["cate_labels", "num_pos", "pos_cells",
                                                           "pos_valid", "mask_targets"])):
    """A batch's targets in fixed shapes, B images, L levels.

    cate_labels: (Σ_l B*S_l²,) int32, 0 = background; level-major, then image, then row-major.
    num_pos: () float32, the number of positive cells of the batch.
    pos_cells: L arrays (B, P_l) int32, each positive's cell within its level (ascending).
    pos_valid: L arrays (B, P_l) float32, 1 for a positive, 0 for padding.
    mask_targets: L arrays (B, P_l, H_l, W_l) uint8, each positive's mask at its level's size.
    """

    def flat(self):
        """The arrays in the order `SOLOLoss` takes them after the network outputs."""
        return (self.cate_labels, self.num_pos, *self.pos_cells, *self.pos_valid,
                *self.mask_targets)


def pack_solo_targets(targets_per_image, mask_sizes, round_to_power_of_two=True):
    """Per-image lists of `LevelTargets` (from `solo_targets_single`) → `PackedSOLOTargets` of
    numpy arrays; ``mask_sizes`` the levels' (H_l, W_l)."""
    num_levels = len(mask_sizes)
    batch = len(targets_per_image)
    cate_labels = np.concatenate([image_targets[level].cate_labels.reshape(-1)
                                  for level in range(num_levels)
                                  for image_targets in targets_per_image]).astype(np.int32)
    pos_cells, pos_valid, mask_targets = [], [], []
    for level, mask_size in enumerate(mask_sizes):
        counts = [len(image_targets[level].grid_order) for image_targets in targets_per_image]
        slots = positive_slots(max(counts), round_to_power_of_two)
        cells = np.zeros((batch, slots), np.int32)
        valid = np.zeros((batch, slots), np.float32)
        masks = np.zeros((batch, slots) + tuple(mask_size), np.uint8)
        for img, (image_targets, count) in enumerate(zip(targets_per_image, counts)):
            cells[img, :count] = image_targets[level].grid_order
            valid[img, :count] = 1
            masks[img, :count] = image_targets[level].ins_labels
        pos_cells.append(cells)
        pos_valid.append(valid)
        mask_targets.append(masks)
    num_pos = sum(int(t.ins_ind_labels.sum()) for image_targets in targets_per_image
                  for t in image_targets)
    return PackedSOLOTargets(cate_labels, np.float32(num_pos), tuple(pos_cells), tuple(pos_valid),
                             tuple(mask_targets))


def solo_mask_sizes(pad_height, pad_width):
    """(H_l, W_l) of each level's mask predictions for a padded input of that size: twice
    each level input's size (ResNet/FPN maps are ceil-halved from the input)."""
    sizes, height, width = [], pad_height, pad_width
    for _ in range(5):  # P1 (stride 2) .. P5 (stride 32)
        height, width = -(-height // 2), -(-width // 2)
        sizes.append((height, width))
    p2, p3, p4, p5 = sizes[1:5]
    level_inputs = ((p2[0] // 2, p2[1] // 2), p3, p4, p5, p5)
    return tuple((2 * h, 2 * w) for h, w in level_inputs)


class SOLOTargetAssigner:
    """Collated batch → the flat packed targets (`PackedSOLOTargets.flat`), numpy arrays.

    numpy only and holding only the head's config values, so that it pickles to the data-loading
    workers and builds the targets there (``SOLO.target_assigner``). ``static_shapes``: each
    level's positives padded to a power of two, so that a compiled loss meets few distinct
    shapes; otherwise to the batch's largest count.
    """

    def __init__(self, strides, scale_ranges, num_grids, sigma, static_shapes=False):
        self.strides = tuple(strides)
        self.scale_ranges = tuple(tuple(scale_range) for scale_range in scale_ranges)
        self.num_grids = tuple(num_grids)
        self.sigma = sigma
        self.static_shapes = bool(static_shapes)

    def per_image(self, batch):
        """Per image, the levels' `targets.LevelTargets` (`solo_targets_single`)."""
        mask_sizes = solo_mask_sizes(*batch["img"].shape[2:])
        return [solo_targets_single(boxes, labels, masks, mask_sizes, self.strides,
                                    self.scale_ranges, self.num_grids, self.sigma)
                for boxes, labels, masks in zip(batch["gt_bboxes"], batch["gt_labels"],
                                                batch["gt_masks"])]

    def __call__(self, batch):
        mask_sizes = solo_mask_sizes(*batch["img"].shape[2:])
        return pack_solo_targets(self.per_image(batch), mask_sizes, self.static_shapes).flat()


def _gather_channels(maps, channels):
    """maps (B, K, H, W), channels (B, P) int → (B*P, H, W): channel ``channels[b, p]`` of
    image b."""
    batch, num_maps, height, width = maps.shape
    flat_channels = channels + ops.arange(batch, dtype=channels.dtype).reshape(-1, 1) * num_maps
    return ops.gather(maps.reshape(batch * num_maps, height, width), flat_channels.reshape(-1), 0)


class SOLOLoss(nn.Cell):
    """(loss_ins, loss_cate) of a batch from flat Tensor arguments: the head's raw outputs
    (SOLO v1: L mask logits (B, S², H_l, W_l), then L cate logits; Decoupled: L X logits, L Y
    logits (B, S, H_l, W_l), then L cate logits), then ``PackedSOLOTargets.flat()``.

    Args:
        num_grids: the levels' S.
        num_classes_out: C, the category channels.
        ins_loss_weight: the dice loss's weight.
        loss_cate: a `FocalLoss` module.
        decoupled: the masks are X * Y products (Decoupled SOLO).
    """

    def __init__(self, num_grids, num_classes_out, ins_loss_weight, loss_cate, decoupled):
        super().__init__()
        self.num_grids = tuple(num_grids)
        self.num_classes_out = num_classes_out
        self.ins_loss_weight = float(ins_loss_weight)
        self.loss_cate = loss_cate
        self.decoupled = decoupled

    def construct(self, *tensors):
        levels = len(self.num_grids)
        num_mask_outputs = 2 * levels if self.decoupled else levels
        mask_outputs = tensors[:num_mask_outputs]
        cate_preds = list(tensors[num_mask_outputs:num_mask_outputs + levels])
        targets = tensors[num_mask_outputs + levels:]
        cate_labels, num_pos = targets[0], targets[1]
        pos_cells = targets[2:2 + levels]
        pos_valid = targets[2 + levels:2 + 2 * levels]
        mask_targets = targets[2 + 2 * levels:2 + 3 * levels]
        dice_sum, count = 0.0, 0.0
        for level in range(levels):
            probs = self._mask_probabilities(mask_outputs, level, pos_cells[level])
            height, width = probs.shape[1:]
            valid = pos_valid[level].reshape(-1)
            dice = dice_loss(probs, mask_targets[level].reshape(-1, height, width))  # (B*P_l,)
            dice_sum = dice_sum + (dice * valid).sum()
            count = count + valid.sum()
        # Without any positive the original crashes on an empty concatenation; here it is 0.
        loss_ins = self.ins_loss_weight * dice_sum / ops.maximum(count, 1.0)
        loss_cate = self.loss_cate(_flat_category_logits(cate_preds, self.num_classes_out),
                                   cate_labels, num_pos + 1)
        return loss_ins, loss_cate

    def _mask_probabilities(self, mask_outputs, level, cells):
        """(B*P, H_l, W_l) mask probabilities of a level's positive slots (padding included)."""
        if not self.decoupled:
            return ops.sigmoid(_gather_channels(mask_outputs[level], cells))
        num_grid = self.num_grids[level]
        rows, cols = cells // num_grid, cells % num_grid
        x_probs = ops.sigmoid(_gather_channels(mask_outputs[level], cols))
        y_probs = ops.sigmoid(_gather_channels(mask_outputs[len(self.num_grids) + level], rows))
        return x_probs * y_probs
