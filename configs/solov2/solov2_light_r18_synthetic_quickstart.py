# Quick start: see training work end to end on a laptop CPU in minutes.
#   python tools/make_synthetic_coco.py --out data/synthetic
#   python train.py --config configs/solov2/solov2_light_r18_synthetic_quickstart.py
#   python valuation.py --config configs/solov2/solov2_light_r18_synthetic_quickstart.py \
#       --checkpoint work_dirs/solov2_light_r18_synthetic_quickstart/latest.ckpt
# A light SOLOv2 on a half-width ResNet-18 (base_channels=32) with narrowed neck and heads, trained
# from scratch on 320 px images of three shape classes (circle, rectangle, triangle). On 2 CPU
# cores: ~0.82 s an iteration, ~14.5 min in all; segm AP 0.34 on the validation split
# (tools/benchmark_quickstart.py; the README says what it learns and what it does not).
# lr 0.02 needs the 100-iteration warmup: with 20 the mask branch of a run on 8 images collapsed
# (dice loss stuck at 1).
_base_ = './solov2_light_448_r18_fpn_8gpu_3x.py'
model = dict(
    pretrained=None,
    backbone=dict(frozen_stages=-1, norm_eval=False, base_channels=32),
    neck=dict(in_channels=[32, 64, 128, 256], out_channels=64),
    bbox_head=dict(
        num_classes=4,
        in_channels=64,
        seg_feat_channels=64,
        stacked_convs=2,
        scale_ranges=((1, 48), (24, 96), (48, 192), (96, 384), (192, 768)),
        num_grids=[24, 20, 16, 12, 8],
        ins_out_channels=64),
    mask_feat_head=dict(in_channels=64, out_channels=64, num_classes=64))
img_norm_cfg = dict(
    mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', img_scale=(320, 320), keep_ratio=True),
    dict(type='RandomFlip', flip_ratio=0.5),
    dict(type='Normalize', **img_norm_cfg),
    dict(type='Pad', size_divisor=32),
    dict(type='DefaultFormatBundle'),
    dict(type='Collect', keys=['img', 'gt_bboxes', 'gt_labels', 'gt_masks']),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='MultiScaleFlipAug',
        img_scale=(320, 320),
        flip=False,
        transforms=[
            dict(type='Resize', keep_ratio=True),
            dict(type='RandomFlip'),
            dict(type='Normalize', **img_norm_cfg),
            dict(type='Pad', size_divisor=32),
            dict(type='ImageToTensor', keys=['img']),
            dict(type='Collect', keys=['img']),
        ])
]
data_root = 'data/synthetic/'
data = dict(
    imgs_per_gpu=4,
    workers_per_gpu=1,
    train=dict(
        ann_file=data_root + 'annotations/instances_train.json',
        img_prefix=data_root + 'train/',
        pipeline=train_pipeline),
    val=dict(
        ann_file=data_root + 'annotations/instances_val.json',
        img_prefix=data_root + 'val/',
        pipeline=test_pipeline),
    test=dict(
        ann_file=data_root + 'annotations/instances_val.json',
        img_prefix=data_root + 'val/',
        pipeline=test_pipeline))
optimizer = dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0001)
auto_scale_lr = dict(enable=False, base_batch_size=16)
lr_config = dict(policy='step', warmup='linear', warmup_iters=100, warmup_ratio=0.1, step=[16, 19])
total_epochs = 20
log_config = dict(interval=10)
evaluation = dict(interval=5, metric=['segm', 'bbox'])
work_dir = './work_dirs/solov2_light_r18_synthetic_quickstart'
