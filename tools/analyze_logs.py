"""Learning curves and training time from the JSON training log (``work_dir/<time>.log.json``),
as mmdetection's tools/analyze_logs.py.

    python tools/analyze_logs.py plot_curve LOG.json --keys loss_ins loss_cate --out curve.png
    python tools/analyze_logs.py plot_curve LOG.json --keys segm_mAP bbox_mAP --out ap.png
    python tools/analyze_logs.py cal_train_time LOG.json
"""
import argparse
import json
import os
import sys

USAGE_ERROR = 2


class LogError(ValueError):
    """A log file that cannot be read or lacks what was asked for."""


def load_json_log(path):
    """{mode: {epoch: {key: [values in log order]}}} of a JSON log's ``train`` and ``val``
    entries (the header line, config and seed, is skipped)."""
    if not os.path.isfile(path):
        raise LogError(f"{path}: no such file")
    log = {"train": {}, "val": {}}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as err:
                raise LogError(f"{path}:{number}: not a JSON line ({err.msg})") from err
            if entry.get("mode") not in log:
                continue
            epoch = log[entry["mode"]].setdefault(entry["epoch"], {})
            for key, value in entry.items():
                epoch.setdefault(key, []).append(value)
    if not log["train"] and not log["val"]:
        raise LogError(f"{path}: no train or val entries")
    return log


def known_keys(log):
    return sorted({key for epochs in log.values() for entries in epochs.values()
                   for key in entries} - {"mode", "epoch", "iter"})


def curve(log, key):
    """(x in epochs, y) of ``key``: a training value at each logged iteration (x fractional:
    epoch - 1 + iter / iterations of the epoch), else an evaluation metric at each evaluation
    (x = the epoch evaluated)."""
    mode = "train" if any(key in entries for entries in log["train"].values()) else "val"
    xs, ys = [], []
    for epoch, entries in sorted(log[mode].items()):
        values = entries.get(key, [])
        if mode == "train":
            per_epoch = max(entries["iter"])
            xs += [epoch - 1 + it / per_epoch for it in entries["iter"]]
        else:
            xs += [epoch] * len(values)
        ys += values
    return xs, ys


def plot_curve(args):
    import matplotlib
    matplotlib.use(args.backend or "Agg")
    import matplotlib.pyplot as plt

    logs = [load_json_log(path) for path in args.json_logs]
    legends = args.legend or [f"{os.path.basename(path)} {key}" if len(logs) > 1 else key
                              for path in args.json_logs for key in args.keys]
    if len(legends) != len(logs) * len(args.keys):
        raise LogError(f"--legend needs {len(logs) * len(args.keys)} names (logs × keys), got "
                       f"{len(legends)}")
    figure, axis = plt.subplots(figsize=(7, 4.5))
    names = iter(legends)
    for path, log in zip(args.json_logs, logs):
        for key in args.keys:
            xs, ys = curve(log, key)
            if not ys:
                raise LogError(f"{path}: no '{key}' in the log; it has "
                               f"{', '.join(known_keys(log))}")
            marker = "-" if any(key in e for e in log["train"].values()) else "o-"
            axis.plot(xs, ys, marker, label=next(names), linewidth=1.2)
    axis.set_xlabel("epoch")
    axis.set_title(args.title or os.path.basename(args.json_logs[0]))
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    if args.out:
        figure.savefig(args.out, dpi=120)
        print(f"curve written to {args.out}")
    else:
        plt.show()
    plt.close(figure)


def cal_train_time(args):
    for path in args.json_logs:
        log = load_json_log(path)
        epoch_means = {epoch: sum(entries["time"]) / len(entries["time"])
                       for epoch, entries in log["train"].items() if entries.get("time")}
        if not epoch_means:
            raise LogError(f"{path}: no train entries with 'time'")
        slowest = max(epoch_means, key=epoch_means.get)
        fastest = min(epoch_means, key=epoch_means.get)
        overall = sum(epoch_means.values()) / len(epoch_means)
        print(f"-----Analyze train time of {path}-----")
        print(f"slowest epoch {slowest}, average time is {epoch_means[slowest]:.4f} s/iter")
        print(f"fastest epoch {fastest}, average time is {epoch_means[fastest]:.4f} s/iter")
        print(f"average iter time: {overall:.4f} s/iter")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="task", required=True)
    plot = commands.add_parser("plot_curve", help="plot values of JSON logs against epochs")
    plot.add_argument("json_logs", nargs="+", help="JSON training logs (<time>.log.json)")
    plot.add_argument("--keys", nargs="+", default=["loss"],
                      help="what to plot: loss names (loss_ins, loss_cate, loss), lr, time, or "
                           "evaluation metrics (segm_mAP, bbox_mAP_50, ...); default: loss")
    plot.add_argument("--title", help="title of the figure")
    plot.add_argument("--legend", nargs="+", help="a name per log and key")
    plot.add_argument("--backend", help="matplotlib backend (default: Agg, files only)")
    plot.add_argument("--out", help="image to write (e.g. curve.png); default: show it")
    timing = commands.add_parser("cal_train_time", help="time per iteration of each epoch")
    timing.add_argument("json_logs", nargs="+", help="JSON training logs")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        (plot_curve if args.task == "plot_curve" else cal_train_time)(args)
    except (LogError, OSError) as err:
        print(f"analyze_logs.py: error: {err}", file=sys.stderr)
        return USAGE_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())
