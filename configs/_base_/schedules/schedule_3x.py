_base_ = './schedule_1x.py'
lr_config = dict(step=[27, 33])
total_epochs = 36
