# Model-zoo config with deformable convolutions: this port refuses it with a clear message
# (MindSpore has no DCNv2 kernel on every target). Kept so its name gives that message.
_base_ = './solov2_r101_fpn_8gpu_3x.py'
model = dict(
    backbone=dict(
        dcn=dict(type='DCNv2', deformable_groups=1, fallback_on_stride=False),
        stage_with_dcn=(False, True, True, True)),
    bbox_head=dict(use_dcn_in_tower=True, type_dcn='DCNv2'),
    mask_feat_head=dict(conv_cfg=dict(type='DCNv2')))
work_dir = './work_dirs/solov2_release_r101_dcn_fpn_8gpu_3x'
