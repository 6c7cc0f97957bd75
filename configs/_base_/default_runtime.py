checkpoint_config = dict(interval=1)
log_config = dict(
    interval=50,
    hooks=[dict(type='TextLoggerHook')])
dist_params = dict(backend='nccl')  # the original's; MindSpore picks HCCL/NCCL/mccl by device
log_level = 'INFO'
load_from = None
resume_from = None
workflow = [('train', 1)]
