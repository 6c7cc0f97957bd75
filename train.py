"""Train SOLOv2 on one card.

    python train.py --config configs/solov2/solov2_r101_fpn_trashcan_3x.py [--load-from COCO.ckpt]
"""
import argparse
import sys

import mmdet_ms  # noqa: F401  (environment before MindSpore loads)
from mmdet_ms.apis.train import train_detector
from mmdet_ms.config import Config, add_cfg_options_argument, check_train_cfg
from mmdet_ms.engine.distributed import launched_distributed
from mmdet_ms.engine.train_step import NonFiniteLossError
from mmdet_ms.utils.device import add_device_argument
from mmdet_ms.utils.paths import check_output_dir

DEFAULT_CONFIG = "configs/solov2/solov2_r101_fpn_trashcan_3x.py"


def build_parser(description=__doc__, default_config=DEFAULT_CONFIG):
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config_pos", nargs="?", metavar="CONFIG", help="config file")
    parser.add_argument("--config", help=f"config file (default: {default_config})")
    parser.add_argument("--work-dir", "--work_dir", dest="work_dir",
                        help="logs and checkpoints (default: the config's work_dir)")
    parser.add_argument("--load-from", "--load_from", dest="load_from",
                        help="start from these weights (.ckpt, a model-zoo name such as "
                             "SOLOv2_R101_3x or an http(s) URL of an original .pth; another "
                             "class count is fine)")
    parser.add_argument("--resume-from", "--resume_from", dest="resume_from",
                        help="continue a run from its training checkpoint (.ckpt)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--no-validate", "--no_validate", dest="validate", action="store_false",
                        help="skip the config's evaluation on data.val during training")
    add_device_argument(parser)
    add_cfg_options_argument(parser)
    parser.set_defaults(default_config=default_config)
    return parser


def run(args, distributed=False, auto_resume=False):
    """Shared by train.py, train_multi.py and train_multi_by_snap_ckpt.py; returns the exit code."""
    config = args.config or args.config_pos or args.default_config
    distributed = distributed or launched_distributed()  # e.g. train.py started by msrun
    try:
        cfg = Config.fromfile(config, args.cfg_options)
        check_train_cfg(cfg)
        if args.work_dir or cfg.get("work_dir"):
            check_output_dir("--work-dir", args.work_dir or cfg.get("work_dir"))
        train_detector(cfg, args.work_dir, args.load_from, args.resume_from, auto_resume,
                       args.seed, args.device_target, distributed, args.validate)
    except NonFiniteLossError as err:
        print(f"training stopped: {err}; the last good checkpoint is kept "
              "(latest.ckpt in the work dir)", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError) as err:
        # ConfigError, CheckpointError, ImageReadError, OutputPathError and an annotation file
        # that is not COCO are all ValueErrors
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def main(argv=None):
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
