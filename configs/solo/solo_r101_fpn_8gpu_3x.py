_base_ = [
    '../_base_/models/solo_r50_fpn.py',
    '../_base_/datasets/coco_instance_ms.py',
    '../_base_/schedules/schedule_3x.py',
    '../_base_/default_runtime.py',
]
model = dict(
    pretrained='torchvision://resnet101',
    backbone=dict(depth=101),
)
lr_config = dict(warmup_ratio=1.0 / 3)  # SOLO's warm-up starts at a third of the lr
work_dir = './work_dirs/solo_release_r101_fpn_8gpu_3x'
