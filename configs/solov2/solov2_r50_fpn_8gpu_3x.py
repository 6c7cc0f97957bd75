_base_ = [
    '../_base_/models/solov2_r50_fpn.py',
    '../_base_/datasets/coco_instance_ms.py',
    '../_base_/schedules/schedule_3x.py',
    '../_base_/default_runtime.py',
]
model = dict(
    pretrained='torchvision://resnet50',
    backbone=dict(depth=50),
)
work_dir = './work_dirs/solov2_release_r50_fpn_8gpu_3x'
