checkpoint_config = dict(interval=1)
log_config = dict(
    interval=50,
    hooks=[dict(type='TextLoggerHook')])
dist_params = dict(backend='nccl')  # the original's; MindSpore picks HCCL/NCCL/mccl by device
log_level = 'INFO'
load_from = None
resume_from = None
workflow = [('train', 1)]
# COCO AP on data.val during training, e.g. dict(interval=1, metric=['segm', 'bbox']): see
# the TrashCan config. The original trains without (its train.py --validate turns it on).
evaluation = None
# Hooks of your own, registered in HOOKS by a module that custom_imports names, e.g.
# custom_imports = dict(imports=['my_hooks']); custom_hooks = [dict(type='MyHook', priority='NORMAL')]
custom_hooks = []
