# SOLOv2 with a ResNeXt-101 64x4d backbone and DCN v2 placed as in solov2_r101_dcn_fpn_8gpu_3x.
_base_ = './solov2_r101_dcn_fpn_8gpu_3x.py'
model = dict(
    pretrained='open-mmlab://resnext101_64x4d',
    backbone=dict(type='ResNeXt', groups=64, base_width=4))
work_dir = './work_dirs/solov2_release_x101_dcn_fpn_8gpu_3x'
