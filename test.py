"""Segment one image and save a picture of the result.

    python test.py CONFIG CHECKPOINT [--dataroot demo.jpg] [--out demo_result.jpg]
    python test.py SOLOv2_R101_3x [...]          (a model-zoo name: fetched, converted, cached)
    python test.py --config CONFIG --checkpoint CHECKPOINT [--mode graph] [...]
    python test.py --config CONFIG --mindir MODEL.mindir [...]   (from tools/export.py)
"""
import argparse
import os
import sys
import time

import mmdet_ms  # noqa: F401  (environment before MindSpore loads)
from mmdet_ms.apis import inference_detector, init_detector, init_mindir_detector
from mmdet_ms.apis.inference import preprocess
from mmdet_ms.apis.runners import RUN_MODES
from mmdet_ms.config import add_cfg_options_argument
from mmdet_ms.datasets.transforms import ImageReadError, read_image
from mmdet_ms.evaluation.results import (check_results_suffix, instances_to_file_records,
                                         save_results)
from mmdet_ms.registry import ConfigError
from mmdet_ms.utils.checkpoint import CheckpointError
from mmdet_ms.utils.device import add_device_argument
from mmdet_ms.utils.paths import check_output_file, check_output_image
from mmdet_ms.utils.visualization import draw_instances, format_detections_table, write_image


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config_pos", nargs="?", metavar="CONFIG", help="config file")
    parser.add_argument("checkpoint_pos", nargs="?", metavar="CHECKPOINT",
                        help="checkpoint: a .ckpt, a model-zoo name (SOLOv2_R101_3x) or an "
                             "http(s) URL of an original .pth (downloaded and converted once)")
    parser.add_argument("--config", help="config file (same as CONFIG)")
    parser.add_argument("--checkpoint", help="checkpoint (same as CHECKPOINT)")
    parser.add_argument("--mode", choices=RUN_MODES, default="pynative",
                        help="pynative (default) or graph: compile the network for the image's "
                             "size first (seconds), then run it faster")
    parser.add_argument("--mindir", metavar="FILE",
                        help="run an exported network (tools/export.py) instead of a checkpoint")
    parser.add_argument("--dataroot", default="demo.jpg", help="image to segment (default: demo.jpg)")
    parser.add_argument("--out", default="demo_result.jpg",
                        help="picture of the result (default: demo_result.jpg)")
    parser.add_argument("--score-thr", type=float, default=0.3,
                        help="draw and list instances scoring at least this (default: 0.3)")
    parser.add_argument("--json", metavar="FILE",
                        help="also write all instances as COCO-style results with RLE masks")
    add_device_argument(parser)
    add_cfg_options_argument(parser)
    args = parser.parse_args(argv)
    if args.config_pos and not (args.checkpoint_pos or args.checkpoint or args.mindir
                                or args.config_pos.endswith(".py")):
        args.config_pos, args.checkpoint_pos = None, args.config_pos  # a checkpoint alone
    args.config = args.config or args.config_pos
    args.checkpoint = args.checkpoint or args.checkpoint_pos
    if not (args.checkpoint or args.mindir) or (args.mindir and not args.config):
        parser.error("give a config and a checkpoint (positionally or with --config/--checkpoint; "
                     "a model-zoo name brings its config) or a config and --mindir")
    if args.checkpoint and args.mindir:
        parser.error("give a checkpoint or --mindir, not both")
    return args


def build_model(args):
    """The detector from the checkpoint (in ``args.mode``) or from the MindIR file."""
    if args.mindir:
        return init_mindir_detector(args.config, args.mindir, args.device_target,
                                    args.cfg_options)
    return init_detector(args.config, args.checkpoint, args.device_target, args.cfg_options,
                         mode=args.mode)


def mindir_padding_note(model, image):
    """A note when the image was padded beyond its own size to fit the MindIR, else None."""
    own_size = preprocess(model, image)[0].shape[2:]
    exported_size = model.network_runner.input_shape[2:]
    if own_size == exported_size:
        return None
    return (f"note: input padded from {own_size[0]}x{own_size[1]} to the MindIR's "
            f"{exported_size[0]}x{exported_size[1]}; results can differ from the checkpoint's "
            "at the exact size (README: Deployment and speed)")


def check_outputs(args):
    """--out and --json must be writable and none of the inputs (nor each other)."""
    inputs = [("input image (--dataroot)", args.dataroot), ("config file", args.config),
              ("checkpoint", args.checkpoint), ("MindIR file", args.mindir)]
    check_output_image("--out", args.out, inputs)
    if args.json:
        check_results_suffix(args.json)
        check_output_file("--json", args.json, inputs + [("picture (--out)", args.out)])


def main(argv=None):
    args = parse_args(argv)
    try:
        check_outputs(args)
        image = read_image(args.dataroot)
        model = build_model(args)
        start = time.perf_counter()
        result = inference_detector(model, image)
        seconds = time.perf_counter() - start
        note = args.mindir and mindir_padding_note(model, image)
    except (ImageReadError, CheckpointError, ConfigError, FileNotFoundError, ValueError) as err:
        print(f"test.py: error: {err}", file=sys.stderr)
        return 2
    compiled = " (graph compilation included)" if args.mode == "graph" and not args.mindir else ""
    print(f"{args.dataroot}: {len(result)} instances in {seconds:.2f} s (image read excluded)"
          f"{compiled}")
    if note:
        print(note)
    print(format_detections_table(result, model.CLASSES, args.score_thr))
    write_image(args.out, draw_instances(image, result, model.CLASSES, args.score_thr))
    print(f"picture: {args.out}")
    if args.json:
        label2cat = list(range(1, len(model.CLASSES) + 1))
        save_results(instances_to_file_records(result, os.path.basename(args.dataroot),
                                               model.CLASSES, label2cat), args.json)
        print(f"results: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
