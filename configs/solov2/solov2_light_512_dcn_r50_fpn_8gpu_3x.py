# Model-zoo config with deformable convolutions (light head at 512): refused by this port.
_base_ = './solov2_light_448_r50_fpn_8gpu_3x.py'
model = dict(
    backbone=dict(
        dcn=dict(type='DCNv2', deformable_groups=1, fallback_on_stride=False),
        stage_with_dcn=(False, True, True, True)),
    bbox_head=dict(use_dcn_in_tower=True, type_dcn='DCNv2'),
    mask_feat_head=dict(conv_cfg=dict(type='DCNv2')))
work_dir = './work_dirs/solov2_light_release_r50_dcn_fpn_8gpu_3x'
