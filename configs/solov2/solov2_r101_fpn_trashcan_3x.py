# Fine-tune the COCO SOLOv2 R101 on TrashCan (underwater trash, 22 classes; instance_version).
# Data: https://conservancy.umn.edu/items/6dd6a960-c44a-4510-a679-efb8c82ebfb7, unpacked so that
# data/trashcan/instance_version/ holds instances_{train,val}_trashcan.json and train/, val/.
# Start from the converted COCO model: --load-from SOLOv2_R101_3x.ckpt (the class layer is re-learnt).
_base_ = './solov2_r101_fpn_8gpu_3x.py'
classes = (
    'rov', 'plant', 'animal_fish', 'animal_starfish', 'animal_shells', 'animal_crab',
    'animal_eel', 'animal_etc', 'trash_clothing', 'trash_pipe', 'trash_bottle', 'trash_bag',
    'trash_snack_wrapper', 'trash_can', 'trash_cup', 'trash_container', 'trash_unknown_instance',
    'trash_branch', 'trash_wreckage', 'trash_tarp', 'trash_rope', 'trash_net')
model = dict(bbox_head=dict(num_classes=23))  # 22 classes + background
data_root = 'data/trashcan/instance_version/'
data = dict(
    train=dict(
        ann_file=data_root + 'instances_train_trashcan.json',
        img_prefix=data_root + 'train/',
        classes=classes),
    val=dict(
        ann_file=data_root + 'instances_val_trashcan.json',
        img_prefix=data_root + 'val/',
        classes=classes),
    test=dict(
        ann_file=data_root + 'instances_val_trashcan.json',
        img_prefix=data_root + 'val/',
        classes=classes))
log_config = dict(interval=5)
# COCO AP on data.val after every epoch; best_segm_mAP.ckpt keeps the best epoch.
evaluation = dict(interval=1, metric=['segm', 'bbox'])
work_dir = './work_dirs/solov2_r101_fpn_trashcan_3x'
