# SOLOv2 R101 with deformable convolutions (DCN v2): the 3x3 convs of backbone stages 2-4, every
# conv of both head towers and every conv of the mask-feature head.
_base_ = './solov2_r101_fpn_8gpu_3x.py'
model = dict(
    backbone=dict(
        dcn=dict(type='DCNv2', deformable_groups=1, fallback_on_stride=False),
        stage_with_dcn=(False, True, True, True)),
    bbox_head=dict(use_dcn_in_tower=True, type_dcn='DCNv2'),
    mask_feat_head=dict(conv_cfg=dict(type='DCNv2')))
work_dir = './work_dirs/solov2_release_r101_dcn_fpn_8gpu_3x'
