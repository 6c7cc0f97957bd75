"""The original SOLO v1 and Decoupled SOLO training targets and losses (``solo_target_single`` and
``loss`` of ``SOLOHead`` / ``DecoupledSOLOHead``, WXinlong/SOLO) written out in plain torch: the
independent reference the port's targets and losses are tested against.

They follow the original step for step (float32 torch arithmetic, ``mmcv.imrescale`` as
``cv2.resize`` bilinear at ``int(side * scale + 0.5)``), with one liberty: the original reads the
device from ``gt_labels_raw[0]`` and so fails on an image without objects; here such an image
simply has no positive. The focal loss is mmdet's ``py_sigmoid_focal_loss`` (the CUDA kernel's
formula), labels 1..C, 0 = background.
"""
import cv2
import numpy as np
import torch
import torch.nn.functional as F


def torch_center_of_mass(bitmasks):
    _, height, width = bitmasks.shape
    ys = torch.arange(0, height, dtype=torch.float32)
    xs = torch.arange(0, width, dtype=torch.float32)
    m00 = bitmasks.sum(dim=-1).sum(dim=-1).clamp(min=1e-6)
    m10 = (bitmasks * xs).sum(dim=-1).sum(dim=-1)
    m01 = (bitmasks * ys[:, None]).sum(dim=-1).sum(dim=-1)
    return m10 / m00, m01 / m00


def imrescale(mask, scale):
    """``mmcv.imrescale`` with a float scale: bilinear to ``int(side * scale + 0.5)``."""
    height, width = mask.shape
    return cv2.resize(mask, (int(width * scale + 0.5), int(height * scale + 0.5)),
                      interpolation=cv2.INTER_LINEAR)


def torch_solo_target_single(gt_bboxes, gt_labels, gt_masks, featmap_sizes, strides,
                             scale_ranges, num_grids, sigma):
    """``SOLOHead.solo_target_single``: per level ins_label (S², H_l, W_l) uint8, cate_label
    (S, S) int64, ins_ind_label (S²,) bool.

    gt_bboxes (n, 4) float32 tensor, gt_labels (n,) int64 tensor (1-based), gt_masks (n, H, W)
    uint8 numpy at the padded size, featmap_sizes the levels' mask prediction sizes.
    """
    gt_areas = torch.sqrt((gt_bboxes[:, 2] - gt_bboxes[:, 0]) * (gt_bboxes[:, 3] - gt_bboxes[:, 1]))
    ins_label_list, cate_label_list, ins_ind_label_list = [], [], []
    for (lower, upper), stride, featmap_size, num_grid in zip(scale_ranges, strides,
                                                              featmap_sizes, num_grids):
        ins_label = torch.zeros([num_grid ** 2, featmap_size[0], featmap_size[1]],
                                dtype=torch.uint8)
        cate_label = torch.zeros([num_grid, num_grid], dtype=torch.int64)
        ins_ind_label = torch.zeros([num_grid ** 2], dtype=torch.bool)
        hit_indices = ((gt_areas >= lower) & (gt_areas <= upper)).nonzero().flatten()
        if len(hit_indices) == 0:
            ins_label_list.append(ins_label)
            cate_label_list.append(cate_label)
            ins_ind_label_list.append(ins_ind_label)
            continue
        boxes, labels = gt_bboxes[hit_indices], gt_labels[hit_indices]
        masks = gt_masks[hit_indices.numpy(), ...]
        half_ws = 0.5 * (boxes[:, 2] - boxes[:, 0]) * sigma
        half_hs = 0.5 * (boxes[:, 3] - boxes[:, 1]) * sigma
        masks_pt = torch.from_numpy(masks)
        center_ws, center_hs = torch_center_of_mass(masks_pt)
        valid_mask_flags = masks_pt.sum(dim=-1).sum(dim=-1) > 0
        output_stride = stride / 2
        upsampled_size = (featmap_sizes[0][0] * 4, featmap_sizes[0][1] * 4)
        for seg_mask, label, half_h, half_w, center_h, center_w, valid in zip(
                masks, labels, half_hs, half_ws, center_hs, center_ws, valid_mask_flags):
            if not valid:
                continue
            coord_w = int((center_w / upsampled_size[1]) // (1. / num_grid))
            coord_h = int((center_h / upsampled_size[0]) // (1. / num_grid))
            top_box = max(0, int(((center_h - half_h) / upsampled_size[0]) // (1. / num_grid)))
            down_box = min(num_grid - 1,
                           int(((center_h + half_h) / upsampled_size[0]) // (1. / num_grid)))
            left_box = max(0, int(((center_w - half_w) / upsampled_size[1]) // (1. / num_grid)))
            right_box = min(num_grid - 1,
                            int(((center_w + half_w) / upsampled_size[1]) // (1. / num_grid)))
            top, down = max(top_box, coord_h - 1), min(down_box, coord_h + 1)
            left, right = max(coord_w - 1, left_box), min(right_box, coord_w + 1)
            cate_label[top:(down + 1), left:(right + 1)] = label
            seg_mask = torch.from_numpy(imrescale(seg_mask, 1. / output_stride))
            for i in range(top, down + 1):
                for j in range(left, right + 1):
                    cell = int(i * num_grid + j)
                    ins_label[cell, :seg_mask.shape[0], :seg_mask.shape[1]] = seg_mask
                    ins_ind_label[cell] = True
        ins_label_list.append(ins_label)
        cate_label_list.append(cate_label)
        ins_ind_label_list.append(ins_ind_label)
    return ins_label_list, cate_label_list, ins_ind_label_list


def torch_dice_loss(input, target):
    input = input.contiguous().view(input.size()[0], -1)
    target = target.contiguous().view(target.size()[0], -1).float()
    a = torch.sum(input * target, 1)
    b = torch.sum(input * input, 1) + 0.001
    c = torch.sum(target * target, 1) + 0.001
    return 1 - (2 * a) / (b + c)


def torch_focal_loss(pred, labels, gamma, alpha, avg_factor):
    """mmdet's sigmoid focal loss, summed and divided by ``avg_factor``; labels 0 = background."""
    target = F.one_hot(labels, pred.shape[1] + 1)[:, 1:].type_as(pred)
    pred_sigmoid = pred.sigmoid()
    pt = (1 - pred_sigmoid) * target + pred_sigmoid * (1 - target)
    focal_weight = (alpha * target + (1 - alpha) * (1 - target)) * pt.pow(gamma)
    loss = F.binary_cross_entropy_with_logits(pred, target, reduction="none") * focal_weight
    return loss.sum() / avg_factor


def _flat_cate(cate_preds, cate_label_list, cate_out_channels):
    cate_labels = torch.cat([torch.cat([img_labels.flatten() for img_labels in level_labels])
                             for level_labels in zip(*cate_label_list)])
    cate_preds = torch.cat([pred.permute(0, 2, 3, 1).reshape(-1, cate_out_channels)
                            for pred in cate_preds])
    return cate_preds, cate_labels


def torch_solo_loss(ins_preds, cate_preds, targets, ins_loss_weight=3.0, gamma=2.0, alpha=0.25,
                    cate_loss_weight=1.0):
    """``SOLOHead.loss`` on raw outputs (lists over levels of torch tensors) and the per-image
    results of `torch_solo_target_single`. Returns (loss_ins, loss_cate)."""
    ins_label_list, cate_label_list, ins_ind_label_list = zip(*targets)
    ins_labels = [torch.cat([labels[ind] for labels, ind in zip(level_labels, level_inds)], 0)
                  for level_labels, level_inds in zip(zip(*ins_label_list),
                                                      zip(*ins_ind_label_list))]
    ins_preds = [torch.cat([pred[ind] for pred, ind in zip(level_preds, level_inds)], 0)
                 for level_preds, level_inds in zip(ins_preds, zip(*ins_ind_label_list))]
    num_ins = torch.cat([torch.cat([ind.flatten() for ind in level_inds])
                         for level_inds in zip(*ins_ind_label_list)]).sum()
    loss_ins = torch.cat([torch_dice_loss(torch.sigmoid(pred), target)
                          for pred, target in zip(ins_preds, ins_labels) if pred.size()[0]])
    loss_ins = loss_ins.mean() * ins_loss_weight
    flat_preds, flat_labels = _flat_cate(cate_preds, cate_label_list, cate_preds[0].shape[1])
    loss_cate = cate_loss_weight * torch_focal_loss(flat_preds, flat_labels, gamma, alpha,
                                                    num_ins + 1)
    return loss_ins, loss_cate


def torch_decoupled_targets(solo_targets):
    """``DecoupledSOLOHead.solo_target_single``'s extra step on one image's SOLO targets: the
    positives' masks only and the positives' (row, col) from ``cate_label.nonzero()``. (Where no
    instance is in a level's range the original keeps one empty slot of all-False indicator
    instead: it selects no row either.)"""
    ins_label_list, cate_label_list, ins_ind_label_list = solo_targets
    return ([ins_label[ind] for ins_label, ind in zip(ins_label_list, ins_ind_label_list)],
            list(cate_label_list),
            [ind[ind] for ind in ins_ind_label_list],
            [cate_label.nonzero() for cate_label in cate_label_list])


def torch_decoupled_solo_loss(ins_preds_x, ins_preds_y, cate_preds, targets, ins_loss_weight=3.0,
                              gamma=2.0, alpha=0.25, cate_loss_weight=1.0):
    """``DecoupledSOLOHead.loss`` on raw outputs and the per-image results of
    `torch_decoupled_targets`. Returns (loss_ins, loss_cate)."""
    ins_label_list, cate_label_list, ins_ind_label_list, ins_xy_list = zip(*targets)
    ins_labels = [torch.cat([labels[ind] for labels, ind in zip(level_labels, level_inds)], 0)
                  for level_labels, level_inds in zip(zip(*ins_label_list),
                                                      zip(*ins_ind_label_list))]
    preds_x = [torch.cat([pred[xy[:, 1]] for pred, xy in zip(level_preds, level_xy)], 0)
               for level_preds, level_xy in zip(ins_preds_x, zip(*ins_xy_list))]
    preds_y = [torch.cat([pred[xy[:, 0]] for pred, xy in zip(level_preds, level_xy)], 0)
               for level_preds, level_xy in zip(ins_preds_y, zip(*ins_xy_list))]
    num_ins = 0.
    loss_ins = []
    for input_x, input_y, target in zip(preds_x, preds_y, ins_labels):
        if input_x.size(0) == 0:
            continue
        num_ins += input_x.size(0)
        loss_ins.append(torch_dice_loss(input_x.sigmoid() * input_y.sigmoid(), target))
    loss_ins = torch.cat(loss_ins).mean() * ins_loss_weight
    flat_preds, flat_labels = _flat_cate(cate_preds, cate_label_list, cate_preds[0].shape[1])
    loss_cate = cate_loss_weight * torch_focal_loss(flat_preds, flat_labels, gamma, alpha,
                                                    num_ins + 1)
    return loss_ins, loss_cate


def numpy_to_torch_gt(gt_bboxes, gt_labels):
    """0-based numpy labels and boxes → the original's 1-based int64 / float32 tensors."""
    return (torch.from_numpy(np.asarray(gt_bboxes, np.float32).reshape(-1, 4)),
            torch.from_numpy(np.asarray(gt_labels, np.int64) + 1))
