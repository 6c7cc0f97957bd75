_base_ = [
    '../_base_/models/decoupled_solo_r50_fpn.py',
    '../_base_/datasets/coco_instance.py',
    '../_base_/schedules/schedule_1x.py',
    '../_base_/default_runtime.py',
]
model = dict(
    pretrained='torchvision://resnet50',
    backbone=dict(depth=50),
)
lr_config = dict(warmup_ratio=1.0 / 3)  # SOLO's warm-up starts at a third of the lr
work_dir = './work_dirs/decoupled_solo_release_r50_fpn_8gpu_1x'
