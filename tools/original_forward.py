"""The original SOLOv2 forward (mmdetection-1.0 SOLOv2, eval mode) written out in functional
torch over an original state dict: the independent reference that tests compare the port with,
and the PyTorch baseline of ``tools/benchmark.py --torch-baseline``; likewise its test-time
post-processing (``get_seg_single`` with ``matrix_nms``), and its training outputs
(``torch_original_train_outputs``, differentiable, for ``tools/benchmark.py --train``; targets
and losses in ``tools/original_solov2_loss.py``).

It follows the original modules layer by layer (ResNet with ``style='pytorch'`` bottlenecks, FPN
with nearest upsampling and max-pool P6, SOLOv2 head with coordinate channels and points NMS,
mask feature head); parameters are read by their original names.
"""
import numpy as np
import torch
import torch.nn.functional as F


def torch_conv(state, x, prefix, stride=1, padding=0):
    return F.conv2d(x, state[f"{prefix}.weight"], state.get(f"{prefix}.bias"), stride, padding)


def torch_batch_norm(state, x, prefix):
    return F.batch_norm(x, state[f"{prefix}.running_mean"], state[f"{prefix}.running_var"],
                        state[f"{prefix}.weight"], state[f"{prefix}.bias"], False, 0.0, 1e-5)


def torch_conv_gn_relu(state, x, prefix, padding):
    """mmdet 1.0 ConvModule(conv, GN(32), ReLU) as the heads build it."""
    x = torch_conv(state, x, f"{prefix}.conv", padding=padding)
    return F.relu(torch_group_norm(state, x, f"{prefix}.gn"))


def torch_group_norm(state, x, prefix):
    return F.group_norm(x, 32, state[f"{prefix}.weight"], state[f"{prefix}.bias"], 1e-5)


def count_children(state, prefix):
    return len({name[len(prefix) + 1:].split(".")[0] for name in state if name.startswith(prefix + ".")})


def torch_res_block(state, x, prefix, stride):
    """BasicBlock or (style='pytorch') Bottleneck, told apart by the presence of conv3."""
    identity = x
    if f"{prefix}.downsample.0.weight" in state:
        identity = torch_batch_norm(state, torch_conv(state, x, f"{prefix}.downsample.0", stride),
                                    f"{prefix}.downsample.1")
    if f"{prefix}.conv3.weight" in state:
        out = F.relu(torch_batch_norm(state, torch_conv(state, x, f"{prefix}.conv1"), f"{prefix}.bn1"))
        out = F.relu(torch_batch_norm(state, torch_conv(state, out, f"{prefix}.conv2", stride, 1),
                                      f"{prefix}.bn2"))
        out = torch_batch_norm(state, torch_conv(state, out, f"{prefix}.conv3"), f"{prefix}.bn3")
    else:
        out = F.relu(torch_batch_norm(state, torch_conv(state, x, f"{prefix}.conv1", stride, 1),
                                      f"{prefix}.bn1"))
        out = torch_batch_norm(state, torch_conv(state, out, f"{prefix}.conv2", 1, 1), f"{prefix}.bn2")
    return F.relu(out + identity)


def torch_resnet(state, x):
    x = F.relu(torch_batch_norm(state, torch_conv(state, x, "backbone.conv1", 2, 3), "backbone.bn1"))
    x = F.max_pool2d(x, 3, 2, 1)
    outs = []
    for stage in range(1, 5):
        prefix = f"backbone.layer{stage}"
        for block in range(count_children(state, prefix)):
            x = torch_res_block(state, x, f"{prefix}.{block}", 2 if stage > 1 and block == 0 else 1)
        outs.append(x)
    return outs


def torch_fpn(state, feats, num_outs=5):
    laterals = [torch_conv(state, f, f"neck.lateral_convs.{i}.conv") for i, f in enumerate(feats)]
    for i in range(len(laterals) - 1, 0, -1):
        laterals[i - 1] = laterals[i - 1] + F.interpolate(laterals[i], scale_factor=2, mode="nearest")
    outs = [torch_conv(state, lateral, f"neck.fpn_convs.{i}.conv", padding=1)
            for i, lateral in enumerate(laterals)]
    while len(outs) < num_outs:
        outs.append(F.max_pool2d(outs[-1], 1, stride=2))
    return outs


def torch_with_coords(x):
    y_range = torch.linspace(-1, 1, x.shape[-2])
    x_range = torch.linspace(-1, 1, x.shape[-1])
    y, xx = torch.meshgrid(y_range, x_range, indexing="ij")
    size = [x.shape[0], 1, -1, -1]
    return torch.cat([x, xx.expand(size), y.expand(size)], 1)


def torch_mask_feat_head(state, inputs):
    prefix = "mask_feat_head.convs_all_levels"
    fused = torch_conv_gn_relu(state, inputs[0], f"{prefix}.0.conv0", 1)
    for level in range(1, len(inputs)):
        x = torch_with_coords(inputs[level]) if level == 3 else inputs[level]
        for j in range(level):
            x = torch_conv_gn_relu(state, x, f"{prefix}.{level}.conv{j}", 1)
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        fused = fused + x
    return torch_conv_gn_relu(state, fused, "mask_feat_head.conv_pred.0", 0)


def torch_points_nms(heat):
    window_max = F.max_pool2d(heat, (2, 2), stride=1, padding=1)
    return heat * (window_max[:, :, :-1, :-1] == heat).float()


def torch_solov2_head(state, feats, num_grids, eval=True):
    """Per level: raw cate logits (N, C, S, S), eval scores (N, S, S, C; none unless ``eval``),
    kernels (N, E, S, S)."""
    level_inputs = (F.interpolate(feats[0], scale_factor=0.5, mode="bilinear"),
                    feats[1], feats[2], feats[3],
                    F.interpolate(feats[4], size=feats[3].shape[-2:], mode="bilinear"))
    stacked = count_children(state, "bbox_head.kernel_convs")
    logits, scores, kernels = [], [], []
    for x, grid in zip(level_inputs, num_grids):
        kernel_feat = F.interpolate(torch_with_coords(x), size=grid, mode="bilinear")
        cate_feat = kernel_feat[:, :-2]
        for i in range(stacked):
            kernel_feat = torch_conv_gn_relu(state, kernel_feat, f"bbox_head.kernel_convs.{i}", 1)
            cate_feat = torch_conv_gn_relu(state, cate_feat, f"bbox_head.cate_convs.{i}", 1)
        kernels.append(torch_conv(state, kernel_feat, "bbox_head.solo_kernel", padding=1))
        logits.append(torch_conv(state, cate_feat, "bbox_head.solo_cate", padding=1))
        if eval:
            scores.append(torch_points_nms(logits[-1].sigmoid()).permute(0, 2, 3, 1))
    return logits, scores, kernels


def torch_original_train_outputs(state, img, num_grids):
    """The original's ``forward_train`` up to its loss: per level raw cate logits (N, C, S, S)
    and kernels (N, E, S, S), the mask feature (N, E, H/4, W/4), from ``img`` (N, 3, H, W)
    tensor. Differentiable with respect to the tensors of ``state`` that require grad; the
    BatchNorms use their running statistics, as the original trains with ``norm_eval=True``."""
    feats = torch_fpn(state, torch_resnet(state, img))
    logits, _, kernels = torch_solov2_head(state, feats, num_grids, eval=False)
    return logits, kernels, torch_mask_feat_head(state, feats[:4])


@torch.no_grad()
def torch_original_forward(state, img, num_grids):
    feats = torch_fpn(state, torch_resnet(state, torch.from_numpy(img)))
    logits, scores, kernels = torch_solov2_head(state, feats, num_grids)
    mask_feat = torch_mask_feat_head(state, feats[:4])
    return dict(
        logits=[t.numpy() for t in logits],
        scores=np.concatenate([s.numpy().reshape(len(img), -1, s.shape[-1]) for s in scores], 1),
        kernels=np.concatenate([k.numpy().reshape(len(img), k.shape[1], -1).transpose(0, 2, 1)
                                for k in kernels], 1),
        mask_feat=mask_feat.numpy())


def torch_matrix_nms(seg_masks, cate_labels, cate_scores, kernel, sigma, sum_masks):
    """The original's matrix_nms (mmdet/core/post_processing/matrix_nms.py), operation for operation."""
    n_samples = len(cate_labels)
    seg_masks = seg_masks.reshape(n_samples, -1).float()
    inter_matrix = torch.mm(seg_masks, seg_masks.transpose(1, 0))
    sum_masks_x = sum_masks.expand(n_samples, n_samples)
    union_matrix = sum_masks_x + sum_masks_x.transpose(1, 0) - inter_matrix
    iou_matrix = (inter_matrix / union_matrix).triu(diagonal=1)
    cate_labels_x = cate_labels.expand(n_samples, n_samples)
    label_matrix = (cate_labels_x == cate_labels_x.transpose(1, 0)).float().triu(diagonal=1)
    compensate_iou, _ = (iou_matrix * label_matrix).max(0)
    compensate_iou = compensate_iou.expand(n_samples, n_samples).transpose(1, 0)
    decay_iou = iou_matrix * label_matrix
    if kernel == "gaussian":
        decay_matrix = torch.exp(-1 * sigma * (decay_iou ** 2))
        compensate_matrix = torch.exp(-1 * sigma * (compensate_iou ** 2))
        decay_coefficient, _ = (decay_matrix / compensate_matrix).min(0)
    else:
        decay_coefficient, _ = ((1 - decay_iou) / (1 - compensate_iou)).min(0)
    return cate_scores * decay_coefficient


@torch.no_grad()
def torch_original_get_seg_single(cate_preds, kernel_preds, mask_feat, num_grids, strides,
                                  img_shape, ori_shape, cfg):
    """The original SOLOv2Head.get_seg_single on one image's numpy outputs, step for step:
    (masks, labels, scores) as numpy arrays, None when nothing survives."""
    cate_preds, kernel_preds = torch.from_numpy(cate_preds), torch.from_numpy(kernel_preds)
    seg_preds = torch.from_numpy(mask_feat)[None]
    h, w = img_shape
    upsampled_size_out = (mask_feat.shape[1] * 4, mask_feat.shape[2] * 4)
    inds = cate_preds > cfg.score_thr
    cate_scores = cate_preds[inds]
    if len(cate_scores) == 0:
        return None
    inds = inds.nonzero()
    cate_labels = inds[:, 1]
    kernel_preds = kernel_preds[inds[:, 0]]
    size_trans = cate_labels.new_tensor(num_grids).pow(2).cumsum(0)
    cell_strides = kernel_preds.new_ones(size_trans[-1])
    cell_strides[:size_trans[0]] *= strides[0]
    for level in range(1, len(num_grids)):
        cell_strides[size_trans[level - 1]:size_trans[level]] *= strides[level]
    cell_strides = cell_strides[inds[:, 0]]
    num_kernels, channels = kernel_preds.shape
    seg_preds = F.conv2d(seg_preds, kernel_preds.view(num_kernels, channels, 1, 1), stride=1)
    seg_preds = seg_preds.squeeze(0).sigmoid()
    seg_masks = seg_preds > cfg.mask_thr
    sum_masks = seg_masks.sum((1, 2)).float()
    keep = sum_masks > cell_strides
    if keep.sum() == 0:
        return None
    seg_masks, seg_preds, sum_masks = seg_masks[keep], seg_preds[keep], sum_masks[keep]
    cate_scores, cate_labels = cate_scores[keep], cate_labels[keep]
    cate_scores *= (seg_preds * seg_masks.float()).sum((1, 2)) / sum_masks
    sort_inds = torch.argsort(cate_scores, descending=True)[:cfg.nms_pre]
    seg_masks, seg_preds = seg_masks[sort_inds], seg_preds[sort_inds]
    sum_masks, cate_scores, cate_labels = (sum_masks[sort_inds], cate_scores[sort_inds],
                                           cate_labels[sort_inds])
    cate_scores = torch_matrix_nms(seg_masks, cate_labels, cate_scores, cfg.kernel, cfg.sigma,
                                   sum_masks)
    keep = cate_scores >= cfg.update_thr
    if keep.sum() == 0:
        return None
    seg_preds, cate_scores, cate_labels = seg_preds[keep], cate_scores[keep], cate_labels[keep]
    sort_inds = torch.argsort(cate_scores, descending=True)[:cfg.max_per_img]
    seg_preds, cate_scores = seg_preds[sort_inds], cate_scores[sort_inds]
    cate_labels = cate_labels[sort_inds]
    seg_preds = F.interpolate(seg_preds.unsqueeze(0), size=upsampled_size_out, mode="bilinear",
                              align_corners=False)[:, :, :h, :w]
    seg_masks = F.interpolate(seg_preds, size=ori_shape, mode="bilinear",
                              align_corners=False).squeeze(0)
    return (seg_masks > cfg.mask_thr).numpy(), cate_labels.numpy(), cate_scores.numpy()
