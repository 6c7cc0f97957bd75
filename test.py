"""Segment one image and save a picture of the result.

    python test.py CONFIG CHECKPOINT [--dataroot demo.jpg] [--out demo_result.jpg]
    python test.py --config CONFIG --checkpoint CHECKPOINT [...]
"""
import argparse
import os
import sys
import time

import mmdet_ms  # noqa: F401  (environment before MindSpore loads)
from mmdet_ms.apis import inference_detector, init_detector
from mmdet_ms.config import add_cfg_options_argument
from mmdet_ms.datasets.transforms import ImageReadError, read_image
from mmdet_ms.evaluation.results import instances_to_file_records, save_results
from mmdet_ms.registry import ConfigError
from mmdet_ms.utils.checkpoint import CheckpointError
from mmdet_ms.utils.device import add_device_argument
from mmdet_ms.utils.visualization import draw_instances, format_detections_table, write_image


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config_pos", nargs="?", metavar="CONFIG", help="config file")
    parser.add_argument("checkpoint_pos", nargs="?", metavar="CHECKPOINT", help="checkpoint (.ckpt)")
    parser.add_argument("--config", help="config file (same as CONFIG)")
    parser.add_argument("--checkpoint", help="checkpoint (.ckpt; same as CHECKPOINT)")
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
    args.config = args.config or args.config_pos
    args.checkpoint = args.checkpoint or args.checkpoint_pos
    if not args.config or not args.checkpoint:
        parser.error("give a config and a checkpoint (positionally or with --config/--checkpoint)")
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        image = read_image(args.dataroot)
        model = init_detector(args.config, args.checkpoint, args.device_target, args.cfg_options)
        start = time.perf_counter()
        result = inference_detector(model, image)
        seconds = time.perf_counter() - start
    except (ImageReadError, CheckpointError, ConfigError, FileNotFoundError) as err:
        print(f"test.py: error: {err}", file=sys.stderr)
        return 2
    print(f"{args.dataroot}: {len(result)} instances in {seconds:.2f} s (image read excluded)")
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
