# SOLOv2-light: two stacked convs of 256 channels and a 128-channel mask feature.
_base_ = './solov2_r50_fpn.py'
model = dict(
    bbox_head=dict(
        stacked_convs=2,
        seg_feat_channels=256,
        scale_ranges=((1, 56), (28, 112), (56, 224), (112, 448), (224, 896)),
        ins_out_channels=128),
    mask_feat_head=dict(num_classes=128))
