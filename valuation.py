"""COCO mask and box AP of a SOLOv2 checkpoint on the config's test data set.

    python valuation.py --config configs/solov2/solov2_r101_fpn_8gpu_3x.py \
        --checkpoint ./SOLOv2_R101_3x.ckpt [--eval segm bbox] [--out results.json] [--show]
    python valuation.py CONFIG CHECKPOINT ...              (the original test.py's form)
    python valuation.py --results results.json --ann instances_val.json   (no model run)

Runs the model over ``data.test`` (``--ann``/``--img-dir`` replace its ``ann_file`` and
``img_prefix``), prints pycocotools' 12 numbers and a per-class AP table for each type.
``--results`` re-scores a file written by ``--out`` against every image of the annotation file.
"""
import mmdet_ms  # noqa: F401  (sets environment variables before MindSpore loads)

import argparse
import os
import sys

from mmdet_ms.apis.runners import RUN_MODES
from mmdet_ms.config import Config, add_cfg_options_argument
from mmdet_ms.evaluation import check_iou_types, evaluate_coco, load_coco_gt, load_results
from mmdet_ms.evaluation.coco_eval import REFUSED_IOU_TYPES, SUPPORTED_IOU_TYPES
from mmdet_ms.evaluation.results import check_coco_records, check_results_suffix, save_results
from mmdet_ms.hub import resolve_checkpoint
from mmdet_ms.utils.device import DEVICE_CHOICES
from mmdet_ms.utils.paths import check_output_dir, check_output_file

USAGE_ERROR = 2
DEFAULT_SHOW_DIR = "./valuation_show"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="SOLOv2: COCO evaluation of a checkpoint")
    parser.add_argument("config_arg", nargs="?", metavar="CONFIG", help="config file")
    parser.add_argument("checkpoint_arg", nargs="?", metavar="CHECKPOINT",
                        help="MindSpore checkpoint (.ckpt), a model-zoo name "
                             "(SOLOv2_R101_3x) or an http(s) URL of an original .pth")
    parser.add_argument("--config", help="config file (or give it first, as CONFIG)")
    parser.add_argument("--checkpoint", help="checkpoint (or give it second, as CHECKPOINT)")
    parser.add_argument("--ann", help="annotation file, instead of the config's data.test.ann_file")
    parser.add_argument("--img-dir", help="image folder, instead of data.test.img_prefix")
    parser.add_argument("--eval", nargs="+", default=list(SUPPORTED_IOU_TYPES),
                        choices=SUPPORTED_IOU_TYPES + REFUSED_IOU_TYPES, metavar="TYPE",
                        help="what to evaluate: segm and/or bbox (default: both)")
    parser.add_argument("--out", help="write the results here (.json: COCO results, or .pkl)")
    parser.add_argument("--results", help="evaluate this results file instead of running a model")
    parser.add_argument("--show", action="store_true", help="save drawn images to --show-dir")
    parser.add_argument("--show-dir",
                        help=f"where --show saves images (default {DEFAULT_SHOW_DIR})")
    parser.add_argument("--score-thr", type=float, default=0.3,
                        help="lowest score drawn by --show (all results are evaluated)")
    parser.add_argument("--device_target", choices=DEVICE_CHOICES, default=None,
                        help="device (default: the best available)")
    parser.add_argument("--mode", choices=RUN_MODES, default="graph",
                        help="graph (default): compile the network once per padded image size, "
                             "then run it faster; pynative: op by op, nothing to compile")
    add_cfg_options_argument(parser)
    args = parser.parse_args(argv)
    args.config = _one_of(parser, "config", args.config_arg, args.config)
    args.checkpoint = _one_of(parser, "checkpoint", args.checkpoint_arg, args.checkpoint)
    if args.show_dir:
        args.show = True
    elif args.show:
        args.show_dir = DEFAULT_SHOW_DIR
    return args


def _one_of(parser, name, positional, option):
    if positional and option and positional != option:
        parser.error(f"two different {name}s given: '{positional}' and --{name} '{option}'")
    return positional or option


def _check_mode(args):
    """Raise ValueError for combinations that cannot work, before anything heavy runs."""
    check_iou_types(args.eval)
    if args.results:
        if args.out or args.show:
            raise ValueError("--out and --show need a model run; --results only re-scores a file")
        if not (args.ann or args.config):
            raise ValueError("--results needs the ground truth: give --ann or a config")
        return
    if args.out:
        check_results_suffix(args.out)
    if args.checkpoint:  # a zoo name or URL is fetched here; a zoo name brings its config
        args.checkpoint, args.config = resolve_checkpoint(args.checkpoint, args.config)
    if not args.config or not args.checkpoint:
        raise ValueError("give a config and a checkpoint (or --results FILE to re-score a file)")
    for what, path in (("config file", args.config), ("checkpoint", args.checkpoint)):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{what} not found: {path}")
    inputs = [("config file", args.config), ("checkpoint", args.checkpoint)]
    if args.out:
        check_output_file("--out", args.out, inputs)
    if args.show:
        check_output_dir("--show-dir", args.show_dir, inputs)


def _load_config(args):
    cfg = Config.fromfile(args.config, args.cfg_options)
    if args.ann:
        cfg.data.test.ann_file = args.ann
    if args.img_dir:
        cfg.data.test.img_prefix = args.img_dir
    return cfg


def rescore(args):
    """Metrics of a saved results file against the annotation file, over all its images."""
    ann_file = args.ann or _load_config(args).data.test.ann_file
    coco_gt = load_coco_gt(ann_file)
    records = load_results(args.results)
    check_coco_records(records, args.results)
    return evaluate_coco(coco_gt, records, iou_types=args.eval)


def run_and_evaluate(args):
    """Run the checkpoint over the test data set, save/draw what was asked, and evaluate."""
    # Imported here: they load MindSpore, which --results does not need.
    from mmdet_ms.apis import init_detector
    from mmdet_ms.apis.loops import run_dataset
    from mmdet_ms.datasets import build_dataset, check_num_classes

    cfg = _load_config(args)
    if args.out:
        check_output_file("--out", args.out, [("annotation file", cfg.data.test.ann_file)])
    if args.show:
        check_output_dir("--show-dir", args.show_dir,
                         [("image folder", cfg.data.test.get("img_prefix") or ".")])
    dataset = build_dataset(cfg.data.test, dict(test_mode=True))
    check_num_classes(cfg.model.bbox_head.num_classes, dataset.CLASSES)
    model = init_detector(cfg, args.checkpoint, device_target=args.device_target,
                          mode=args.mode)
    if tuple(model.CLASSES) != tuple(dataset.CLASSES):
        print(f"WARNING: the model's class names differ from {cfg.data.test.ann_file}'s; "
              f"results are labelled with the data set's", file=sys.stderr)
    records = run_dataset(model, dataset, show_dir=args.show_dir if args.show else None,
                          score_thr=args.score_thr)
    if args.out:
        save_results(records, args.out)
        print(f"results written to {args.out}")
    if args.show:
        print(f"drawn images written to {args.show_dir}")
    return evaluate_coco(dataset.coco, records, iou_types=args.eval, img_ids=dataset.img_ids)


def main(argv=None):
    args = parse_args(argv)
    try:
        _check_mode(args)
        metrics = rescore(args) if args.results else run_and_evaluate(args)
    except (FileNotFoundError, ValueError) as err:  # ConfigError is a ValueError
        print(f"error: {err}", file=sys.stderr)
        return USAGE_ERROR
    print(" | ".join(f"{iou_type} AP {metrics[iou_type]['AP']:.3f}" for iou_type in args.eval))
    return 0


if __name__ == "__main__":
    sys.exit(main())
