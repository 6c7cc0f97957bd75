# SOLOv2-light at 512 with DCN v1 (unmodulated): the 3x3 convs of backbone stages 2-4 and the last
# of three convs in each head tower (SOLOv2LightHead); the mask-feature head stays plain.
_base_ = [
    '../_base_/models/solov2_light_r50_fpn.py',
    '../_base_/datasets/coco_instance_light_512.py',
    '../_base_/schedules/schedule_3x.py',
    '../_base_/default_runtime.py',
]
model = dict(
    pretrained='torchvision://resnet50',
    backbone=dict(
        depth=50,
        dcn=dict(type='DCN', deformable_groups=1, fallback_on_stride=False),
        stage_with_dcn=(False, True, True, True)),
    bbox_head=dict(
        type='SOLOv2LightHead',
        stacked_convs=3,
        use_dcn_in_tower=True,
        type_dcn='DCN',
        scale_ranges=((1, 64), (32, 128), (64, 256), (128, 512), (256, 2048))))
work_dir = './work_dirs/solov2_light_512_dcn_release_r50_fpn_8gpu_1x'
