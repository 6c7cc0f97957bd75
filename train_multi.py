"""Data-parallel training on several cards, started by msrun (one process per card).

    bash msrun_launcher.sh "train_multi.py --config configs/solov2/solov2_r101_fpn_trashcan_3x.py" 8 8 127.0.0.1 9543 0 output/msrun_log False 3000

Each rank reads its own shard of the data; gradients are averaged over ranks (HCCL on Ascend,
NCCL on GPU, MindSpore's own backend on CPU); only rank 0 writes logs and checkpoints. The
config's lr is for ``auto_scale_lr.base_batch_size`` images and is scaled to cards × imgs_per_gpu.
Without --config it trains the TrashCan config.
"""
import sys

import train


def main(argv=None):
    args = train.build_parser(__doc__).parse_args(argv)
    return train.run(args, distributed=True)


if __name__ == "__main__":
    sys.exit(main())
