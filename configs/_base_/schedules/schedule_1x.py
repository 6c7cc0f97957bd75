# lr 0.01 is for a total batch of 16 (8 cards x 2 images); training scales it to the real batch.
optimizer = dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001)
optimizer_config = dict(grad_clip=dict(max_norm=35, norm_type=2))
lr_config = dict(
    policy='step',
    warmup='linear',
    warmup_iters=500,
    warmup_ratio=0.01,
    step=[9, 11])
total_epochs = 12
# The lr above is for this total batch; training scales it to cards × imgs_per_gpu.
auto_scale_lr = dict(enable=True, base_batch_size=16)
