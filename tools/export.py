"""Export a SOLOv2 network as MindIR for deployment (MindSpore Lite, ``nn.GraphCell``).

    python tools/export.py --config configs/solov2/solov2_r101_fpn_8gpu_3x.py \
        --checkpoint SOLOv2_R101_3x.ckpt --out solov2_r101.mindir [--size 800 1344]

The file holds the network (image → cate scores, kernels, mask feature) for one fixed input size,
plus the class names and grid settings post-processing needs; run it with
``python test.py --config CFG --mindir FILE`` or ``init_mindir_detector(CFG, FILE)``.

``--size H W`` defaults to the largest landscape input of the config's test pipeline: its test
scale padded to multiples of 32, e.g. 800x1344 for (1333, 800). Smaller images are zero-padded up
to it, which changes their results against the exact-size network (README, "Deployment and
speed"). For exact results, export at the size your images pad to: ``--size-of IMAGE`` takes the
padded input size of IMAGE (e.g. 800x1088 for any 4:3 landscape photo at (1333, 800)).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import mmdet_ms  # noqa: E402,F401  (sets the environment first)
from mmdet_ms.apis import init_detector  # noqa: E402
from mmdet_ms.apis.inference import preprocess  # noqa: E402
from mmdet_ms.apis.mindir import default_export_size, export_mindir  # noqa: E402
from mmdet_ms.config import add_cfg_options_argument  # noqa: E402
from mmdet_ms.utils.device import add_device_argument  # noqa: E402
from mmdet_ms.utils.paths import check_output_file  # noqa: E402

USAGE_ERROR = 2


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="config file")
    parser.add_argument("--checkpoint", required=True,
                        help="MindSpore checkpoint (.ckpt), a model-zoo name (SOLOv2_R101_3x) or "
                             "an http(s) URL of an original .pth (init_detector fetches it)")
    parser.add_argument("--out", required=True, help="MindIR file to write (.mindir)")
    sizes = parser.add_mutually_exclusive_group()
    sizes.add_argument("--size", type=int, nargs=2, metavar=("H", "W"),
                       help="input height and width, multiples of 32 (default: the config's "
                            "test scale padded, e.g. 800 1344)")
    sizes.add_argument("--size-of", metavar="IMAGE",
                       help="the padded input size of this image under the test pipeline")
    parser.add_argument("--batch-size", type=int, default=1,
                        help="images per network call (default 1)")
    add_device_argument(parser)
    add_cfg_options_argument(parser)
    return parser.parse_args(argv)


def export_size(args, model):
    """(H, W) from --size, --size-of or the config."""
    if args.size:
        return tuple(args.size)
    if args.size_of:
        if not os.path.isfile(args.size_of):
            raise FileNotFoundError(f"--size-of: image file not found: {args.size_of}")
        return preprocess(model, args.size_of)[0].shape[2:]
    return default_export_size(model.cfg)


def main(argv=None):
    args = parse_args(argv)
    try:
        if not os.path.isfile(args.config):
            raise FileNotFoundError(f"config file not found: {args.config}")
        if args.batch_size < 1:
            raise ValueError(f"--batch-size must be at least 1, got {args.batch_size}")
        if not args.out.endswith(".mindir"):
            raise ValueError(f"--out {args.out}: a MindIR file name must end with .mindir")
        check_output_file("--out", args.out, [("config file", args.config),
                                              ("checkpoint", args.checkpoint)])
        model = init_detector(args.config, args.checkpoint, args.device_target, args.cfg_options)
        size = export_size(args, model)
        export_mindir(model, args.out, size, args.batch_size)
    except (FileNotFoundError, ValueError) as err:  # ConfigError, CheckpointError are ValueErrors
        print(f"export.py: error: {err}", file=sys.stderr)
        return USAGE_ERROR
    print(f"wrote {args.out}: input ({args.batch_size}, 3, {size[0]}, {size[1]}), "
          f"{len(model.CLASSES)} classes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
