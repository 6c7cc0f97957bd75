"""Convert an original SOLOv2 PyTorch checkpoint (WXinlong/SOLO) into a MindSpore checkpoint.

    python weight_convert.py SOLOv2_R101_3x.pth SOLOv2_R101_3x.ckpt [--config CFG]
"""
import argparse
import sys

import mmdet_ms  # noqa: F401  (environment before MindSpore loads)
from mmdet_ms.config import add_cfg_options_argument
from mmdet_ms.registry import ConfigError
from mmdet_ms.utils.checkpoint import CheckpointError
from mmdet_ms.utils.device import set_device
from mmdet_ms.utils.paths import OutputPathError
from mmdet_ms.apis.convert import convert


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", help="original checkpoint (.pth)")
    parser.add_argument("dst", help="MindSpore checkpoint to write (.ckpt)")
    parser.add_argument("--config", help="config the checkpoint belongs to (default: the model-zoo "
                                         "config matching its depth, head and class count)")
    parser.add_argument("--verbose", action="store_true", help="list every converted tensor")
    parser.add_argument("--unsafe-pickle", action="store_true",
                        help="also read a file that pickles objects besides tensors (some mmcv "
                             "checkpoints); this runs code from the file: only for files you trust")
    add_cfg_options_argument(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    set_device("CPU")
    try:
        config, count = convert(args.src, args.dst, args.config, args.cfg_options, args.verbose,
                                args.unsafe_pickle)
    except (CheckpointError, ConfigError, FileNotFoundError, OutputPathError) as err:
        print(f"weight_convert.py: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {args.dst}: {count} tensors for {config}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
