"""Run the README's quick start end to end and report its wall time and mask AP.

    python tools/benchmark_quickstart.py [--out work_dirs/quickstart_benchmark] [--cfg-options ...]

The three steps, each as its own process with this Python, exactly as a user types them:
  1. tools/make_synthetic_coco.py  writes the synthetic shapes data set (OUT/data)
  2. train.py                      trains the quick-start config from scratch (OUT/work)
  3. valuation.py                  scores latest.ckpt on the validation split (segm and bbox)
then prints the seconds of each step, the total and the AP figures. Their logs are in OUT.
``--cfg-options`` goes to train.py and valuation.py alike (e.g. ``total_epochs=6``).
"""
import argparse
import os
import re
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join("configs", "solov2", "solov2_light_r18_synthetic_quickstart.py")
AP_LINE = re.compile(r"segm AP (?P<segm>[0-9.]+) \| bbox AP (?P<bbox>[0-9.]+)")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join("work_dirs", "quickstart_benchmark"),
                        help="folder for the data, the training run and the logs")
    parser.add_argument("--config", default=CONFIG, help=f"config to train (default {CONFIG})")
    parser.add_argument("--num-train", type=int, default=200, help="training images (default 200)")
    parser.add_argument("--num-val", type=int, default=50, help="validation images (default 50)")
    parser.add_argument("--size", type=int, default=320,
                        help="image side in pixels (default 320; the config's scale must match)")
    parser.add_argument("--device_target", default=None, help="device (default: best available)")
    parser.add_argument("--cfg-options", nargs="+", default=[], metavar="KEY=VALUE",
                        help="overrides for train.py and valuation.py")
    return parser.parse_args(argv)


def run_step(name, command, log_path):
    """Run ``command`` (its output to ``log_path``); returns its seconds, or exits on failure."""
    print(f"{name}: {' '.join(command)}", flush=True)
    started = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        code = subprocess.call(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - started
    if code != 0:
        sys.exit(f"benchmark_quickstart.py: {name} failed (exit {code}); see {log_path}")
    print(f"{name}: {seconds:.0f} s", flush=True)
    return seconds


def main(argv=None):
    args = parse_args(argv)
    out = os.path.abspath(args.out)
    data, work = os.path.join(out, "data"), os.path.join(out, "work")
    os.makedirs(out, exist_ok=True)
    device = ["--device_target", args.device_target] if args.device_target else []
    data_options = [f"data.{split}.{key}={os.path.join(data, *parts)}"
                    for split, folder, ann in (("train", "train", "instances_train.json"),
                                               ("val", "val", "instances_val.json"),
                                               ("test", "val", "instances_val.json"))
                    for key, parts in (("ann_file", ("annotations", ann)),
                                       ("img_prefix", (folder, "")))]
    options = ["--cfg-options", *data_options, *args.cfg_options]
    python = sys.executable
    seconds = {
        "data": run_step("data", [python, "tools/make_synthetic_coco.py", "--out", data,
                                  "--num-train", str(args.num_train),
                                  "--num-val", str(args.num_val), "--size", str(args.size)],
                         os.path.join(out, "make_data.log")),
        "train": run_step("train", [python, "train.py", "--config", args.config, "--work-dir",
                                    work, *device, *options], os.path.join(out, "train.log")),
        "evaluate": run_step("evaluate", [python, "valuation.py", "--config", args.config,
                                          "--checkpoint", os.path.join(work, "latest.ckpt"),
                                          *device, *options],
                             os.path.join(out, "valuation.log")),
    }
    with open(os.path.join(out, "valuation.log"), encoding="utf-8") as log:
        found = AP_LINE.findall(log.read())
    if not found:
        sys.exit(f"benchmark_quickstart.py: no AP line in {os.path.join(out, 'valuation.log')}")
    segm_ap, bbox_ap = (float(value) for value in found[-1])
    total = sum(seconds.values())
    print(f"\nquick start on {os.cpu_count()} CPUs, {args.num_train} training images: "
          + ", ".join(f"{step} {value:.0f} s" for step, value in seconds.items())
          + f"; total {total / 60:.1f} min")
    print(f"segm AP {segm_ap:.3f}, bbox AP {bbox_ap:.3f} on {args.num_val} validation images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
