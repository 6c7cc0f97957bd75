_base_ = [
    '../_base_/models/solov2_light_r50_fpn.py',
    '../_base_/datasets/coco_instance_light_448.py',
    '../_base_/schedules/schedule_3x.py',
    '../_base_/default_runtime.py',
]
model = dict(
    pretrained='torchvision://resnet18',
    backbone=dict(depth=18),
    neck=dict(in_channels=[64, 128, 256, 512]),
)
work_dir = './work_dirs/solov2_light_release_r18_fpn_8gpu_3x'
