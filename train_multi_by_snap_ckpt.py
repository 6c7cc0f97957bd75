"""train_multi.py that first resumes from the newest complete epoch checkpoint in the work dir.

    bash msrun_launcher.sh train_multi_by_snap_ckpt.py 8 8 127.0.0.1 9543 0 output/msrun_log False 3000

Model, optimizer state, epoch, iteration (hence the lr schedule's position) and the data order
continue from the checkpoint; a partial or corrupt checkpoint file is skipped with a warning; with
none, training starts from scratch and says so.
"""
import sys

import train


def main(argv=None):
    args = train.build_parser(__doc__).parse_args(argv)
    return train.run(args, distributed=True, auto_resume=True)


if __name__ == "__main__":
    sys.exit(main())
