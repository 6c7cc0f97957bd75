# SOLO v1 on the quick-start data (tools/make_synthetic_coco.py), as the SOLOv2 quick start:
#   python train.py --config configs/solo/solo_r18_synthetic_quickstart.py
# A half-width ResNet-18 (base_channels=32) with narrowed neck and head, trained from scratch on
# 320 px images of three shape classes. Not a model of the original's zoo.
# The data, schedule and runtime of the SOLOv2 quick start; the model replaced.
_base_ = '../solov2/solov2_light_r18_synthetic_quickstart.py'
model = dict(
    _delete_=True,
    type='SOLO',
    pretrained=None,
    backbone=dict(
        type='ResNet',
        depth=18,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_eval=False,
        base_channels=32,
        style='pytorch'),
    neck=dict(
        type='FPN',
        in_channels=[32, 64, 128, 256],
        out_channels=64,
        start_level=0,
        num_outs=5),
    bbox_head=dict(
        type='SOLOHead',
        num_classes=4,
        in_channels=64,
        stacked_convs=2,
        seg_feat_channels=64,
        strides=[8, 8, 16, 32, 32],
        scale_ranges=((1, 48), (24, 96), (48, 192), (96, 384), (192, 768)),
        sigma=0.2,
        num_grids=[24, 20, 16, 12, 8],
        cate_down_pos=0,
        loss_ins=dict(type='DiceLoss', use_sigmoid=True, loss_weight=3.0),
        loss_cate=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                       loss_weight=1.0)))
work_dir = './work_dirs/solo_r18_synthetic_quickstart'
