"""Detect instances in every image of a folder; save drawn copies and ``results.json``.

    python run.py configs/solov2/solov2_r101_fpn_8gpu_3x.py ./SOLOv2_R101_3x.ckpt ./coco/test \
        --out ./outfile

Images: .jpg .jpeg .png .bmp (any case), sorted; ``--recursive`` descends into sub-folders.
``OUT/<relative name>`` is the drawn image; ``OUT/results.json`` is a list of records
``{file_name, category_id, category_name, score, bbox [x, y, w, h], segmentation (RLE)}`` for
the instances scoring at least ``--score-thr``. ``category_id`` is the id in the config's test
annotation file when that file exists and names the model's classes, otherwise label + 1.
An unreadable file is reported and skipped.

The network is compiled once per padded input size (fast when the images share a few sizes;
``--mode pynative`` runs it op by op); ``--batch-size N`` feeds the network up to N images of
the same padded size at once.
"""
import mmdet_ms  # noqa: F401  (sets environment variables before MindSpore loads)

import argparse
import os
import sys

from mmdet_ms.apis import init_detector
from mmdet_ms.apis.runners import RUN_MODES
from mmdet_ms.config import Config, add_cfg_options_argument
from mmdet_ms.datasets import build_dataset
from mmdet_ms.hub import resolve_checkpoint
from mmdet_ms.apis.loops import RESULTS_FILE_NAME, folder_category_ids, run_folder
from mmdet_ms.utils.device import DEVICE_CHOICES
from mmdet_ms.utils.paths import check_output_dir, check_output_file

USAGE_ERROR = 2


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="SOLOv2: detect instances in a folder of images")
    parser.add_argument("config", help="config file")
    parser.add_argument("checkpoint", help="MindSpore checkpoint (.ckpt), a model-zoo name "
                                           "(SOLOv2_R101_3x) or an http(s) URL of an original .pth")
    parser.add_argument("image_dir", help="folder of images")
    parser.add_argument("--out", default="./out_put", help="output folder (default ./out_put)")
    parser.add_argument("--score-thr", type=float, default=0.3,
                        help="lowest score drawn and saved (default 0.3)")
    parser.add_argument("--recursive", action="store_true", help="also read sub-folders")
    parser.add_argument("--device_target", choices=DEVICE_CHOICES, default=None,
                        help="device (default: the best available)")
    parser.add_argument("--mode", choices=RUN_MODES, default="graph",
                        help="graph (default): compile the network once per padded image size, "
                             "then run it faster; pynative: op by op, nothing to compile")
    parser.add_argument("--batch-size", type=int, default=1,
                        help="images per network call, grouped by padded size (default 1)")
    add_cfg_options_argument(parser)
    return parser.parse_args(argv)


def _check_paths(args):
    for what, path, exists in (("config file", args.config, os.path.isfile),
                               ("checkpoint", args.checkpoint, os.path.isfile),
                               ("image folder", args.image_dir, os.path.isdir)):
        if not exists(path):
            raise FileNotFoundError(f"{what} not found: {path}")
    check_output_dir("--out", args.out, inputs=[("image folder", args.image_dir)])
    check_output_file("--out", os.path.join(args.out, RESULTS_FILE_NAME))


def _test_dataset_or_none(cfg):
    """The config's test data set if its annotation file is here (for category ids), else None."""
    test_cfg = cfg.get("data", {}).get("test")
    if not test_cfg or not os.path.isfile(test_cfg.get("ann_file", "")):
        return None
    return build_dataset(test_cfg, dict(test_mode=True))


def main(argv=None):
    args = parse_args(argv)
    try:
        args.checkpoint = resolve_checkpoint(args.checkpoint, args.config)[0]
        _check_paths(args)
        cfg = Config.fromfile(args.config, args.cfg_options)
        model = init_detector(cfg, args.checkpoint, device_target=args.device_target,
                              mode=args.mode)
        class_names = tuple(model.CLASSES)
        category_ids = folder_category_ids(class_names, _test_dataset_or_none(cfg))
        summary = run_folder(model, args.image_dir, args.out, class_names, category_ids,
                             score_thr=args.score_thr, recursive=args.recursive,
                             batch_size=args.batch_size)
    except (FileNotFoundError, ValueError) as err:  # ConfigError is a ValueError
        print(f"error: {err}", file=sys.stderr)
        return USAGE_ERROR
    print(summary)
    print(f"drawn images and {os.path.join(args.out, 'results.json')} are in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
