# Decoupled SOLO with a ResNet-50 body: the mask of cell (i, j) is X_j * Y_i.
_base_ = './solo_r50_fpn.py'
model = dict(bbox_head=dict(type='DecoupledSOLOHead'))
