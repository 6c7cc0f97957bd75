"""Write the synthetic shapes dataset (COCO format) used to try training in minutes on a CPU.

    python tools/make_synthetic_coco.py --out data/shapes [--num-train 200 --num-val 50 --size 320 --seed 0]
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import mmdet_ms  # noqa: E402,F401  (sets the environment first)
from mmdet_ms.datasets.synthetic import CATEGORIES, make_synthetic_coco  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--num-train", type=int, default=200, help="training images")
    parser.add_argument("--num-val", type=int, default=50, help="validation images")
    parser.add_argument("--size", type=int, default=320, help="image side in pixels")
    parser.add_argument("--seed", type=int, default=0, help="the same seed gives the same files")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    splits = make_synthetic_coco(args.out, args.num_train, args.num_val, args.size, args.seed)
    for split, (ann_file, img_prefix) in splits.items():
        print(f"{split}: ann_file={ann_file} img_prefix={img_prefix}")
    names = ", ".join(cat["name"] for cat in CATEGORIES)
    print(f"{len(CATEGORIES)} classes ({names}): set num_classes={len(CATEGORIES) + 1} in the model "
          f"config (the original's convention counts the background)")


if __name__ == "__main__":
    main()
