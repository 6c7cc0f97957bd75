"""What every detector's training interface shares (see `SOLOv2`): the op-by-op losses of a
batch from its own ``train_targets``, ``train_outputs`` and ``loss``."""
import mindspore as ms


def losses_of_batch(detector, img, img_metas, gt_bboxes, gt_labels, gt_masks):
    """{loss name: scalar Tensor} of a batch, op by op (mmdet's ``forward_train``). ``img`` a
    (B, 3, H, W) Tensor or array; ``gt_*`` per image, labels 0-based, masks (n, H, W) at the
    padded size."""
    img = img if isinstance(img, ms.Tensor) else ms.Tensor(img)
    batch = dict(img=img, img_metas=img_metas, gt_bboxes=gt_bboxes, gt_labels=gt_labels,
                 gt_masks=gt_masks)
    targets = [ms.Tensor(array) for array in detector.train_targets(batch)]
    return dict(zip(detector.loss_names, detector.loss(*detector.train_outputs(img), *targets)))
