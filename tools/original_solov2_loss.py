"""The original SOLOv2 training targets and losses (``solov2_target_single`` and ``loss`` of
``SOLOv2Head``, WXinlong/SOLO) written out in plain torch, and its optimisation step (SGD after
``clip_grad_norm_``): the PyTorch baseline of ``tools/benchmark.py --train``, checked against
the original's losses on ``../shared/parity/r101_seed0_coffee_loss.npz``.

Step for step as the original (float32 torch), with the liberty of ``original_solo_loss.py``: an
image without objects has no positive instead of failing. Labels 1..C, 0 = background.
"""
import torch
import torch.nn.functional as F

from tools.original_solo_loss import (_flat_cate, imrescale, torch_center_of_mass,
                                      torch_dice_loss, torch_focal_loss)

MASK_OUTPUT_STRIDE = 4  # the mask feature's stride: ground-truth masks are rescaled by 1/4


def torch_solov2_target_single(gt_bboxes, gt_labels, gt_masks, mask_feat_size, strides,
                               scale_ranges, num_grids, sigma):
    """``SOLOv2Head.solov2_target_single``: per level ins_label (n_pos, H/4, W/4) uint8,
    cate_label (S, S) int64, ins_ind_label (S²,) bool, grid_order (list of the positives' cells).

    gt_bboxes (n, 4) float32 tensor, gt_labels (n,) int64 tensor (1-based), gt_masks (n, H, W)
    uint8 numpy at the padded size, mask_feat_size the mask feature's (H/4, W/4).
    """
    gt_areas = torch.sqrt((gt_bboxes[:, 2] - gt_bboxes[:, 0]) * (gt_bboxes[:, 3] - gt_bboxes[:, 1]))
    upsampled_size = (mask_feat_size[0] * 4, mask_feat_size[1] * 4)
    ins_label_list, cate_label_list, ins_ind_label_list, grid_order_list = [], [], [], []
    for (lower, upper), _, num_grid in zip(scale_ranges, strides, num_grids):
        cate_label = torch.zeros([num_grid, num_grid], dtype=torch.int64)
        ins_ind_label = torch.zeros([num_grid ** 2], dtype=torch.bool)
        ins_labels, grid_order = [], []
        hit_indices = ((gt_areas >= lower) & (gt_areas <= upper)).nonzero().flatten()
        if len(hit_indices):
            boxes, labels = gt_bboxes[hit_indices], gt_labels[hit_indices]
            masks = gt_masks[hit_indices.numpy(), ...]
            half_ws = 0.5 * (boxes[:, 2] - boxes[:, 0]) * sigma
            half_hs = 0.5 * (boxes[:, 3] - boxes[:, 1]) * sigma
            masks_pt = torch.from_numpy(masks)
            center_ws, center_hs = torch_center_of_mass(masks_pt)
            valid_mask_flags = masks_pt.sum(dim=-1).sum(dim=-1) > 0
            for seg_mask, label, half_h, half_w, center_h, center_w, valid in zip(
                    masks, labels, half_hs, half_ws, center_hs, center_ws, valid_mask_flags):
                if not valid:
                    continue
                cell = 1. / num_grid
                coord_w = int((center_w / upsampled_size[1]) // cell)
                coord_h = int((center_h / upsampled_size[0]) // cell)
                top_box = max(0, int(((center_h - half_h) / upsampled_size[0]) // cell))
                down_box = min(num_grid - 1,
                               int(((center_h + half_h) / upsampled_size[0]) // cell))
                left_box = max(0, int(((center_w - half_w) / upsampled_size[1]) // cell))
                right_box = min(num_grid - 1,
                                int(((center_w + half_w) / upsampled_size[1]) // cell))
                top, down = max(top_box, coord_h - 1), min(down_box, coord_h + 1)
                left, right = max(coord_w - 1, left_box), min(right_box, coord_w + 1)
                cate_label[top:(down + 1), left:(right + 1)] = label
                seg_mask = torch.from_numpy(imrescale(seg_mask, 1. / MASK_OUTPUT_STRIDE))
                for i in range(top, down + 1):
                    for j in range(left, right + 1):
                        ins_label = torch.zeros([mask_feat_size[0], mask_feat_size[1]],
                                                dtype=torch.uint8)
                        ins_label[:seg_mask.shape[0], :seg_mask.shape[1]] = seg_mask
                        ins_labels.append(ins_label)
                        ins_ind_label[int(i * num_grid + j)] = True
                        grid_order.append(int(i * num_grid + j))
        ins_label_list.append(torch.stack(ins_labels, 0) if ins_labels else
                              torch.zeros([0, mask_feat_size[0], mask_feat_size[1]],
                                          dtype=torch.uint8))
        cate_label_list.append(cate_label)
        ins_ind_label_list.append(ins_ind_label)
        grid_order_list.append(grid_order)
    return ins_label_list, cate_label_list, ins_ind_label_list, grid_order_list


def torch_solov2_targets(head, gt_bboxes, gt_labels, gt_masks, mask_feat_size):
    """`torch_solov2_target_single` of each image of a collated batch (the port's 0-based numpy
    labels and boxes), with ``head`` the config's ``bbox_head``."""
    targets = []
    for boxes, labels, masks in zip(gt_bboxes, gt_labels, gt_masks):
        boxes = torch.from_numpy(boxes.astype("float32").reshape(-1, 4))
        labels = torch.from_numpy(labels.astype("int64") + 1)
        targets.append(torch_solov2_target_single(
            boxes, labels, masks, mask_feat_size, head.strides, head.scale_ranges,
            head.num_grids, head.get("sigma", 0.2)))
    return targets


def torch_solov2_loss(cate_preds, kernel_preds, ins_pred, targets, ins_loss_weight=3.0,
                      gamma=2.0, alpha=0.25, cate_loss_weight=1.0):
    """``SOLOv2Head.loss`` on the raw outputs (per level cate logits (N, C, S, S) and kernels
    (N, E, S, S), mask feature (N, E, H, W)) and the per-image `torch_solov2_target_single`
    results. Returns (loss_ins, loss_cate)."""
    ins_label_list, cate_label_list, ins_ind_label_list, grid_order_list = zip(*targets)
    ins_labels = [torch.cat(list(level_labels), 0) for level_labels in zip(*ins_label_list)]
    height, width = ins_pred.shape[-2:]
    mask_preds = []
    for level_kernels, level_orders in zip(kernel_preds, zip(*grid_order_list)):
        level_masks = []
        for img, (kernels, order) in enumerate(zip(level_kernels, level_orders)):
            if not order:
                continue
            # (E, S, S) → (E, S²) → the positives' (E, n) → (n, E, 1, 1) dynamic 1x1 kernels
            kernels = kernels.view(kernels.shape[0], -1)[:, order]
            kernels = kernels.permute(1, 0).view(len(order), -1, 1, 1)
            level_masks.append(F.conv2d(ins_pred[img][None], kernels).view(-1, height, width))
        mask_preds.append(torch.cat(level_masks, 0) if level_masks else None)
    num_ins = torch.cat([torch.cat([ind.flatten() for ind in level_inds])
                         for level_inds in zip(*ins_ind_label_list)]).sum()
    loss_ins = torch.cat([torch_dice_loss(torch.sigmoid(pred), target)
                          for pred, target in zip(mask_preds, ins_labels) if pred is not None])
    loss_ins = loss_ins.mean() * ins_loss_weight
    flat_preds, flat_labels = _flat_cate(cate_preds, cate_label_list, cate_preds[0].shape[1])
    loss_cate = cate_loss_weight * torch_focal_loss(flat_preds, flat_labels, gamma, alpha,
                                                    num_ins + 1)
    return loss_ins, loss_cate


def trainable_state(state, frozen_stages=1):
    """The original state dict as leaf tensors, those the original trains requiring grad: all
    weights and biases but the BN running statistics and, with ``frozen_stages`` ≥ 0, the stem
    (conv1, bn1) and ``layer1..layer{frozen_stages}`` (the original's ``_freeze_stages``)."""
    frozen = ["backbone.conv1.", "backbone.bn1."] if frozen_stages >= 0 else []
    frozen += [f"backbone.layer{i}." for i in range(1, frozen_stages + 1)]
    leaves = {}
    for name, value in state.items():
        value = torch.as_tensor(value).clone()
        trains = (value.is_floating_point() and name.endswith((".weight", ".bias"))
                  and not name.startswith(tuple(frozen)))
        leaves[name] = value.requires_grad_(trains)
    return leaves


def torch_sgd_step(optimizer, params, max_norm=35.0):
    """The original's optimizer hook: ``clip_grad_norm_(max_norm)`` then the SGD update; returns
    the total gradient norm before clipping."""
    total_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
    optimizer.step()
    return total_norm
