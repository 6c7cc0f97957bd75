checkpoint_config = dict(interval=1)
log_config = dict(
    interval=50,
    hooks=[dict(type='TextLoggerHook')])
dist_params = dict(backend='nccl')  # the original's; MindSpore picks HCCL/NCCL/mccl by device
log_level = 'INFO'
load_from = None
resume_from = None
workflow = [('train', 1)]
# The training step runs as compiled graphs (network, losses, update), one per batch canvas
# (data.train.pad_to) and positive-slot count; False runs it op by op, for debugging.
jit_train_step = True
# Mixed precision as mmdet's key: fp16 = dict(loss_scale=512.) (static) or
# dict(loss_scale='dynamic'); float16 convolutions, float32 weights, norms and losses.
fp16 = None
# COCO AP on data.val during training, e.g. dict(interval=1, metric=['segm', 'bbox']): see
# the TrashCan config. The original trains without (its train.py --validate turns it on).
evaluation = None
# Hooks of your own, registered in HOOKS by a module that custom_imports names, e.g.
# custom_imports = dict(imports=['my_hooks']); custom_hooks = [dict(type='MyHook', priority='NORMAL')]
custom_hooks = []
