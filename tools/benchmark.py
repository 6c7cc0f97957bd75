"""Time SOLOv2 inference on one image in each run mode and report peak memory.

    python tools/benchmark.py --config configs/solov2/solov2_r101_fpn_8gpu_3x.py \
        --checkpoint SOLOv2_R101_3x.ckpt --image demo.jpg [--runs 5] [--warmup 2] \
        [--mode pynative graph] [--mindir solov2_r101.mindir] [--torch-baseline SOLOv2_R101_3x.pth]

For each mode, in a fresh process (so that memory figures are that mode's own): build the model,
run the whole image ``--warmup`` times (graph mode compiles here), then ``--runs`` times each of
  forward  the network alone (input tensor in → numpy outputs, the device synchronised),
  post     post-processing alone (numpy: masks, Matrix NMS, resize to the original size),
  whole    read the file + preprocess + forward + post-process (``inference_detector``);
and print their medians, the first forward call (graph: compilation included), the peak resident
memory of the process (getrusage) and the peak numpy memory of one post-processing (tracemalloc),
then the ratio of each mode's medians to PyNative's. ``--torch-baseline ORIGINAL.pth`` also times,
in the same run and on the same image, the original SOLOv2 in PyTorch with the original checkpoint
(the functional transcription of its forward and post-processing in ``tools/original_forward.py``,
which the tests check the port against; the same preprocessing), and prints each mode's medians
over it. The machine's load average is printed beside the figures: on a shared machine, compare
runs taken at a similar load.

Without --checkpoint the weights are random: timings of the network hold, but post-processing
time depends on how many candidates pass the score threshold.

``--train`` times one training iteration instead, stage by stage, beside the original's training
step in PyTorch with ``--torch-baseline``: see ``tools/benchmark_train.py`` (its options follow
``--train``; ``python tools/benchmark.py --train --help``).
"""
import argparse
import multiprocessing
import os
import platform
import resource
import statistics
import sys
import time
import tracemalloc

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import mmdet_ms  # noqa: E402,F401  (sets the environment first)
from mmdet_ms.config import add_cfg_options_argument  # noqa: E402
from mmdet_ms.utils.device import add_device_argument  # noqa: E402

MODES = ("pynative", "graph", "mindir")
USAGE_ERROR = 2
TIMED_STAGES = ("forward", "post", "whole")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="config file")
    parser.add_argument("--checkpoint", help="MindSpore checkpoint (.ckpt); default: random weights")
    parser.add_argument("--image", default="demo.jpg", help="image file (default demo.jpg)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per stage (default 5)")
    parser.add_argument("--warmup", type=int, default=2,
                        help="untimed whole-image runs first (default 2)")
    parser.add_argument("--mode", nargs="+", choices=MODES, default=["pynative", "graph"],
                        help="modes to measure, in this order (default: pynative graph); "
                             "mindir needs --mindir")
    parser.add_argument("--mindir", help="MindIR file from tools/export.py, for --mode mindir")
    parser.add_argument("--torch-baseline", metavar="ORIGINAL.pth",
                        help="also time the original forward in PyTorch with this checkpoint "
                             "(the one --checkpoint was converted from)")
    add_device_argument(parser)
    add_cfg_options_argument(parser)
    args = parser.parse_args(argv)
    if args.runs < 1 or args.warmup < 0:
        parser.error("--runs must be at least 1 and --warmup at least 0")
    if "mindir" in args.mode and not args.mindir:
        parser.error("--mode mindir needs --mindir FILE")
    for what, path in (("config", args.config), ("image", args.image),
                       ("checkpoint", args.checkpoint), ("MindIR", args.mindir),
                       ("PyTorch checkpoint", args.torch_baseline)):
        if path and not os.path.isfile(path):
            parser.error(f"{what} file not found: {path}")
    if args.torch_baseline and _uses_dcn_or_resnext(args):
        parser.error("--torch-baseline: tools/original_forward.py has no deformable or grouped "
                     "convolutions, so it cannot time this config (DCN / ResNeXt)")
    return args


def _uses_dcn_or_resnext(args):
    from mmdet_ms.config import Config
    model = Config.fromfile(args.config, args.cfg_options).model
    return (model.backbone.get("type") == "ResNeXt" or model.backbone.get("dcn") is not None
            or model.bbox_head.get("use_dcn_in_tower")
            or model.get("mask_feat_head", {}).get("conv_cfg") is not None)


def _seconds(function):
    """(seconds, return value) of one call."""
    started = time.perf_counter()
    value = function()
    return time.perf_counter() - started, value


def _peak_numpy_bytes(function):
    """Peak bytes allocated by Python and numpy during one call (tracemalloc)."""
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _build(args, mode):
    from mmdet_ms.apis import init_detector, init_mindir_detector
    if mode == "mindir":
        return init_mindir_detector(args.config, args.mindir, args.device_target, args.cfg_options)
    return init_detector(args.config, args.checkpoint, args.device_target, args.cfg_options,
                         mode=mode)


def _time_stages(args, batch, forward, post, whole):
    """Time one runner: the first ``forward(batch)``, ``--warmup`` calls of ``whole()``, then
    ``--runs`` rounds of forward, ``post(outputs)`` and whole. Returns (first forward seconds,
    {stage: median seconds}, the last outputs, the last post-processing result)."""
    first_forward, outputs = _seconds(lambda: forward(batch))
    for _ in range(args.warmup):
        whole()
    times = {stage: [] for stage in TIMED_STAGES}
    for _ in range(args.runs):
        seconds, outputs = _seconds(lambda: forward(batch))
        times["forward"].append(seconds)
        seconds, result = _seconds(lambda: post(outputs))
        times["post"].append(seconds)
        times["whole"].append(_seconds(whole)[0])
    medians = {stage: statistics.median(values) for stage, values in times.items()}
    return first_forward, medians, outputs, result


def measure_mode(args, mode):
    """The figures of one mode (run in a child process): medians in seconds, memory in MiB."""
    from mmdet_ms.apis import inference_detector
    from mmdet_ms.apis.inference import preprocess

    build_seconds, model = _seconds(lambda: _build(args, mode))
    batch, img_meta = preprocess(model, args.image)
    first_forward, medians, outputs, results = _time_stages(
        args, batch, forward=model.network_runner,
        post=lambda outputs: model.postprocess(*outputs, [img_meta]),
        whole=lambda: inference_detector(model, args.image))
    post_numpy_peak = _peak_numpy_bytes(lambda: model.postprocess(*outputs, [img_meta]))
    return dict(
        mode=mode, build=build_seconds, first_forward=first_forward, **medians,
        peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        post_numpy_peak_mib=post_numpy_peak / 2 ** 20,
        instances=len(results[0]), input_shape=tuple(batch.shape))


def measure_torch(args):
    """The original SOLOv2 in PyTorch, timed as ``measure_mode`` times a mode: the functional
    transcription of its forward and its ``get_seg_single`` (tools/original_forward.py), on the
    port's preprocessing of the image. Run in this (parent) process, which runs no MindSpore
    operation: in a multiprocessing child torch ran ~2x slower."""
    import torch

    from mmdet_ms.apis.inference import build_test_pipeline, prepare_input
    from mmdet_ms.config import Config
    from mmdet_ms.utils.checkpoint import read_torch_checkpoint
    from tools.original_forward import torch_original_forward, torch_original_get_seg_single

    cfg = Config.fromfile(args.config, args.cfg_options)
    pipeline = build_test_pipeline(cfg)
    head = cfg.model.bbox_head
    build_seconds, state = _seconds(lambda: {name: torch.from_numpy(value) for name, value
                                             in read_torch_checkpoint(args.torch_baseline)[0].items()})

    def post(outputs, img_meta):
        return torch_original_get_seg_single(
            outputs["scores"][0], outputs["kernels"][0], outputs["mask_feat"][0], head.num_grids,
            head.strides, img_meta["img_shape"][:2], img_meta["ori_shape"][:2], cfg.test_cfg)

    def forward(batch):
        return torch_original_forward(state, batch, head.num_grids)

    def whole():
        batch, img_meta = prepare_input(pipeline, args.image)
        return post(forward(batch), img_meta)

    batch, img_meta = prepare_input(pipeline, args.image)
    first_forward, medians, _, result = _time_stages(
        args, batch, forward=forward, post=lambda outputs: post(outputs, img_meta), whole=whole)
    return dict(mode="torch", build=build_seconds, first_forward=first_forward, **medians,
                peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                post_numpy_peak_mib=float("nan"), instances=len(result[1]) if result else 0,
                input_shape=tuple(batch.shape))


def _measure_in_child(function, *args):
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        return pool.apply(function, args)


def format_table(rows):
    """The figures as a text table, then each mode's medians over PyNative's."""
    header = (f"{'mode':<9} {'forward s':>9} {'post s':>7} {'whole s':>8} {'1st fwd s':>9} "
              f"{'build s':>7} {'peak RSS MiB':>12} {'post numpy MiB':>14} {'instances':>9}")
    lines = [header]
    for row in rows:
        lines.append(f"{row['mode']:<9} {row['forward']:>9.3f} {row['post']:>7.3f} "
                     f"{row['whole']:>8.3f} {row['first_forward']:>9.2f} {row['build']:>7.2f} "
                     f"{row['peak_rss_mib']:>12.0f} {row['post_numpy_peak_mib']:>14.1f} "
                     f"{row['instances']:>9}")
    base = next((row for row in rows if row["mode"] == "pynative"), None)
    torch_row = next((row for row in rows if row["mode"] == "torch"), None)
    for row in rows:
        if base is not None and row is not base and row is not torch_row:
            ratios = ", ".join(f"{stage} {row[stage] / base[stage]:.2f}" for stage in TIMED_STAGES)
            lines.append(f"{row['mode']}/pynative: {ratios}")
        if torch_row is not None and row is not torch_row:
            ratios = ", ".join(f"{stage} {row[stage] / torch_row[stage]:.2f}" for stage in TIMED_STAGES)
            lines.append(f"{row['mode']}/torch: {ratios}")
    return "\n".join(lines)


def _load():
    return "load average " + " ".join(f"{value:.2f}" for value in os.getloadavg())


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--train" in argv:
        from tools.benchmark_train import main as train_main
        return train_main([arg for arg in argv if arg != "--train"])
    args = parse_args(argv)
    import mindspore as ms
    print(f"{args.config} on {args.image}; {args.runs} runs after {args.warmup} warm-up; "
          f"MindSpore {ms.__version__}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs")
    rows = []
    try:
        for mode in args.mode:
            print(f"{mode}: measuring ({_load()})", flush=True)
            rows.append(_measure_in_child(measure_mode, args, mode))
        if args.torch_baseline:
            print(f"torch: measuring ({_load()})", flush=True)
            rows.append(measure_torch(args))
    except (FileNotFoundError, ValueError) as err:  # ConfigError, CheckpointError are ValueErrors
        print(f"benchmark.py: error: {err}", file=sys.stderr)
        return USAGE_ERROR
    print(f"input {rows[0]['input_shape']}; {_load()}")
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
