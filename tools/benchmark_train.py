"""Time one training iteration of a config, stage by stage, beside the original in PyTorch
(``python tools/benchmark.py --train ...`` runs this):

    python tools/benchmark.py --train --config configs/solov2/solov2_r101_fpn_8gpu_3x.py \
        [--data synthetic --img-size 800 800 --batch 2 | --data config] [--runs 5] [--warmup 2] \
        [--checkpoint X.ckpt | --torch-baseline ORIGINAL.pth] [--no-norms] [--json OUT.json]

The MindSpore side is built as ``train.py`` builds it (``build_detector``, ``build_train_step``
at the config's ``optimizer.lr`` unscaled, ``build_train_dataloader``), in fresh processes: one
for the step (targets, gradients, optimizer, step, step+data: the step's own graphs) and one for
its parts (forward, fwd+bwd, losses: on the step's cells, compiled as the step compiles them),
as R101's graphs do not fit in 24 GB together. Every stage is synchronised
by reading its results on the host (``float`` / ``asnumpy``) before the clock stops. After
``--warmup`` calls of the process's first stage (step, or fwd+bwd; graph mode compiles here),
and one untimed call of each stage, ``--runs`` rounds of these stages, each on the same batch
(the loader's first), give medians:

  targets       ``step.targets(batch)``: what the step does for the targets: building them on
                the host or, where the loader's workers built them (``batch["targets"]``),
                only taking them as Tensors (their building is then in "data wait").
  forward       the network's training outputs (``train_outputs``), compiled if the step is.
  fwd+bwd       forward and the gradient of every trainable parameter, with a cotangent of ones
                on each output (the backward pass of the network costs the same whatever the
                cotangent).
  losses        the losses' forward and backward on fixed network outputs (their gradient with
                respect to those outputs), compiled if the step is.
  gradients     ``step.gradients(batch)``: targets + forward + losses + backward, values read.
  optimizer     ``step.apply_gradients(grads)``: gradient clip and update (+ reduction).
  step          ``gradients`` then ``apply_gradients``: one iteration, data excluded.
  step+data     the next batch from the loader (workers and prefetch as configured) then one
                step on it: one iteration as ``train.py`` runs it; "data wait" its fetch alone.
                A new batch can have a new positive-slot count, so a compiled step may compile
                again here: take several ``--runs``.

Unless ``--no-norms``, a third fresh process builds the same network with every BatchNorm and
GroupNorm replaced by the identity and times its forward and fwd+bwd the same way. The breakdown
of the step is then, per framework:

  conv fwd      forward without norms: convolutions, with the cheap element-wise work beside
                them (ReLU, upsampling, additions, coordinate channels);
  conv bwd      fwd+bwd − forward, both without norms;
  norms         fwd+bwd − fwd+bwd without norms (norm forward and backward);
  losses        losses (forward and backward);
  targets, optimizer  as measured;
  rest          step − (targets + fwd+bwd + losses + optimizer): what joins the parts (host
                syncs, gradient accumulation, launches); negative where the step overlaps them.

"outside" is the share of one iteration (step+data) spent outside the compiled network and
losses: (step+data − fwd+bwd − losses) / (step+data); it holds targets, data wait, optimizer and
host syncs.

``--torch-baseline ORIGINAL.pth`` also runs, in this process, the original's training step on the
same batch and the same weights (MindSpore loads that checkpoint, converted into a temporary
.ckpt, unless ``--checkpoint`` is given): the functional transcription of its forward
(``tools/original_forward.torch_original_train_outputs``), its targets and losses
(``tools/original_solov2_loss.py``), backward, ``clip_grad_norm_`` (the config's
``optimizer_config.grad_clip``) and ``torch.optim.SGD`` (the config's lr, momentum and weight
decay), with the stem and stages up to ``frozen_stages`` frozen and BN in eval mode, as the
original's configs train, denormals flushed to zero (see ``measure_torch``). Its stages are
timed as above (no loader: step+data is step) and norms are removed by making the
transcription's batch and group norms the identity; then the MindSpore/torch ratio of each
median.

``--data synthetic`` (default) writes ``--batch × (warmup + runs + 1)`` images of the shapes
set (``mmdet_ms.datasets.synthetic``) into a temporary folder and resizes them to exactly
``--img-size W H`` (the train pipeline's ``Resize`` set to that size, ``keep_ratio=False``);
``data.imgs_per_gpu`` becomes ``--batch``. ``--data config`` uses ``data.train`` as configured.
Peak resident memory is per process (getrusage): the step's after its warm-up (build,
compilation, steps) and at its end, the parts' at their end; the torch figure is this
process's, which also wrote the data. The load average is printed before and after: on a
shared machine, compare runs taken at a similar load (the torch step suffers most from a busy
machine).
"""
import argparse
import contextlib
import json
import multiprocessing
import os
import platform
import resource
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import mmdet_ms  # noqa: E402,F401  (sets the environment first)
from mmdet_ms.config import Config, add_cfg_options_argument  # noqa: E402
from mmdet_ms.utils.device import add_device_argument  # noqa: E402

USAGE_ERROR = 2
MS_STAGES = ("targets", "forward", "fwd+bwd", "losses", "gradients", "optimizer", "step",
             "step+data", "data wait")
TORCH_STAGES = MS_STAGES[:-2]
NORM_FREE_STAGES = ("forward", "fwd+bwd")
BREAKDOWN = ("conv fwd", "conv bwd", "norms", "losses", "targets", "optimizer", "rest", "step")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="benchmark.py --train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="config file")
    parser.add_argument("--checkpoint", help="MindSpore checkpoint (.ckpt); default: random "
                        "weights, or those of --torch-baseline")
    parser.add_argument("--data", choices=("synthetic", "config"), default="synthetic",
                        help="synthetic images (default) or the config's data.train")
    parser.add_argument("--img-size", type=int, nargs=2, default=(800, 800), metavar=("W", "H"),
                        help="synthetic image size (default 800 800)")
    parser.add_argument("--batch", type=int, default=2, help="synthetic images a batch (default 2)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per stage (default 5)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    parser.add_argument("--no-norms", action="store_true",
                        help="skip the runs without norms (no conv/norms split)")
    parser.add_argument("--torch-baseline", metavar="ORIGINAL.pth",
                        help="also time the original's training step in PyTorch with this "
                             "checkpoint")
    parser.add_argument("--json", metavar="OUT", help="also write the figures to this JSON file")
    add_device_argument(parser)
    add_cfg_options_argument(parser)
    args = parser.parse_args(argv)
    if args.runs < 1 or args.warmup < 0:
        parser.error("--runs must be at least 1 and --warmup at least 0")
    if args.batch < 1 or min(args.img_size) < 64:
        parser.error("--batch must be at least 1 and --img-size at least 64 64")
    for what, path in (("config", args.config), ("checkpoint", args.checkpoint),
                       ("PyTorch checkpoint", args.torch_baseline)):
        if path and not os.path.isfile(path):
            parser.error(f"{what} file not found: {path}")
    if args.json and not os.path.isdir(os.path.dirname(os.path.abspath(args.json))):
        parser.error(f"--json: folder of {args.json} does not exist")
    if args.torch_baseline:
        problem = _torch_baseline_problem(Config.fromfile(args.config, args.cfg_options).model)
        if problem:
            parser.error(f"--torch-baseline: {problem}")
    return args


def _torch_baseline_problem(model):
    """Why the torch transcription cannot train ``model`` (None if it can)."""
    if model.type != "SOLOv2":
        return f"the transcription is of SOLOv2 only, not {model.type}"
    if (model.backbone.get("type") == "ResNeXt" or model.backbone.get("dcn") is not None
            or model.bbox_head.get("use_dcn_in_tower")
            or model.get("mask_feat_head", {}).get("conv_cfg") is not None):
        return "tools/original_forward.py has no deformable or grouped convolutions (DCN / ResNeXt)"
    if model.backbone.get("norm_eval") is False:
        return "the transcription keeps BN in eval mode; this config trains it (norm_eval=False)"
    return None


def training_config(args, data_dir, write_images):
    """The config, with ``--data synthetic``'s images in ``data_dir`` (written there first if
    ``write_images``)."""
    from mmdet_ms.datasets.synthetic import make_synthetic_coco
    cfg = Config.fromfile(args.config, args.cfg_options)
    if args.data == "synthetic":
        train = cfg.data.train
        train.ann_file = os.path.join(data_dir, "annotations", "instances_train.json")
        train.img_prefix = os.path.join(data_dir, "train") + os.sep
        if write_images:
            count = args.batch * (args.warmup + args.runs + 1)
            make_synthetic_coco(data_dir, count, 0, max(args.img_size))
        resizes = [step for step in train.pipeline if step["type"] == "Resize"]
        if len(resizes) != 1:
            raise ValueError(f"{args.config}: data.train.pipeline has {len(resizes)} Resize steps; "
                             "--data synthetic needs one (use --data config)")
        resizes[0].update(img_scale=tuple(args.img_size), keep_ratio=False, multiscale_mode="value")
        cfg.data.imgs_per_gpu = args.batch
    return cfg


def _seconds(function):
    started = time.perf_counter()
    value = function()
    return time.perf_counter() - started, value


def _timed_rounds(stages, warmup_steps, runs):
    """``warmup_steps`` untimed calls of the first stage (the one that compiles the most), one
    untimed call of each stage, then ``runs`` rounds of all: {stage: median seconds}, the first
    call's seconds, and the peak resident memory after the warm-up calls (MiB; before the other
    stages compile their own graphs)."""
    warm_up = next(iter(stages.values()))
    first, _ = _seconds(warm_up)
    for _ in range(max(warmup_steps - 1, 0)):
        warm_up()
    warm_peak = _peak_rss_mib()
    for function in stages.values():
        function()
    times = {name: [] for name in stages}
    for _ in range(runs):
        for name, function in stages.items():
            times[name].append(_seconds(function)[0])
    return {name: statistics.median(values) for name, values in times.items()}, first, warm_peak


def _peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _read(value):
    """Host copy of (the first tensor of) ``value``: waits for the device to compute it."""
    import mindspore as ms
    while isinstance(value, (tuple, list)) and value:
        value = value[0]
    if isinstance(value, ms.Tensor):
        value.asnumpy()


def replace_norms_by_identity(network):
    """Every BatchNorm2d / GroupNorm cell of ``network`` → ``nn.Identity``; returns the count."""
    import mindspore.nn as nn
    norm_types = (nn.BatchNorm2d, nn.GroupNorm)
    count = 0
    for _, cell in list(network.cells_and_names()):
        for name, child in list(cell.name_cells().items()):
            if isinstance(child, norm_types):
                if isinstance(cell, nn.SequentialCell):
                    cell[int(name)] = nn.Identity()
                else:
                    setattr(cell, name, nn.Identity())
                count += 1
    return count


class _MindSporeParts:
    """The network's forward, fwd+bwd and the losses' fwd+bwd, on the step's own cells (compiled
    if the step is), differentiated as the step differentiates them."""

    def __init__(self, step):
        import mindspore as ms
        import mindspore.ops as ops

        def output_sum(img):
            total = 0
            for value in step.outputs(img):
                total = total + ops.sum(value)
            return total

        def loss_total(*tensors):
            return step.loss_cell(*tensors)[0]

        self.outputs = step.outputs
        self.network_grad = ms.grad(output_sum, None, step.optimizer.parameters)
        self._loss_total = loss_total
        self._losses_grad = None

    def losses_grad(self, outputs, targets):
        """(total loss, its gradients with respect to ``outputs``)."""
        import mindspore as ms
        if self._losses_grad is None:
            self._losses_grad = ms.value_and_grad(self._loss_total, tuple(range(len(outputs))))
        return self._losses_grad(*outputs, *targets)


def _build_network(args, cfg, converted_ckpt):
    from mmdet_ms.models import build_detector
    from mmdet_ms.utils.checkpoint import load_checkpoint
    network = build_detector(cfg.model, cfg.get("train_cfg"), cfg.get("test_cfg"))
    if args.checkpoint or converted_ckpt:
        load_checkpoint(network, args.checkpoint or converted_ckpt)
    network.set_train(True)
    return network


def measure_mindspore(args, data_dir, converted_ckpt, group="step"):
    """The MindSpore figures of one group of stages (run in a child process, each group in its
    own: their graphs do not fit in memory together), {stage: median seconds}, first call,
    peak RSS, input shape and, for "step", the loader's first batch (for the torch baseline).

    group: "step" (the step and what it is made of: targets, gradients, optimizer, step+data),
    "parts" (forward, fwd+bwd, losses), "norm-free" (forward and fwd+bwd of the network with
    its norms replaced by the identity)."""
    import mindspore as ms
    from mmdet_ms.apis.train import build_train_dataloader, build_train_step
    from mmdet_ms.datasets import build_dataset
    from mmdet_ms.utils.device import set_device

    set_device(args.device_target)
    ms.set_seed(0)
    cfg = training_config(args, data_dir, write_images=False)
    network = _build_network(args, cfg, converted_ckpt)
    norms = replace_norms_by_identity(network) if group == "norm-free" else 0
    step = build_train_step(cfg, network, cfg.optimizer.lr)
    loader = build_train_dataloader(cfg, build_dataset(cfg.data.train), network, seed=0)
    try:
        result = _measure_group(args, step, loader, group)
    finally:
        if hasattr(loader, "close"):
            loader.close()
    result["norms_replaced"] = norms
    return result


def _measure_group(args, step, loader, group):
    batches = _endless(loader)
    batch = next(batches)
    data_waits = []
    stages = (_step_stages(step, batch, batches, data_waits) if group == "step"
              else _part_stages(step, batch, with_losses=group == "parts"))
    medians, first_call, warm_peak = _timed_rounds(stages, args.warmup, args.runs)
    result = dict(medians=medians, first_call=first_call, warm_peak_rss_mib=warm_peak,
                  peak_rss_mib=_peak_rss_mib(), compiled=bool(step.jit_step),
                  input_shape=list(batch["img"].shape))
    if group == "step":
        medians["data wait"] = statistics.median(data_waits[-args.runs:])
        result["batch"] = {key: batch[key] for key in ("img", "gt_bboxes", "gt_labels", "gt_masks")}
    return result


def _step_stages(step, batch, batches, data_waits):
    """The step's stages, "step" first (the warm-up); each next batch's fetch time goes to
    ``data_waits``."""
    state = {}

    def run_step(one_batch):
        values, grads = step.gradients(one_batch)
        _read(step.apply_gradients(grads))
        return {name: float(value) for name, value in values.items()}

    def gradients():
        values, state["grads"] = step.gradients(batch)
        for value in values.values():
            float(value)

    def step_with_data():
        fetched, one_batch = _seconds(lambda: next(batches))
        data_waits.append(fetched)
        run_step(one_batch)

    return {"step": lambda: run_step(batch), "targets": lambda: step.targets(batch),
            "gradients": gradients,
            "optimizer": lambda: _read(step.apply_gradients(state["grads"])),
            "step+data": step_with_data}


def _part_stages(step, batch, with_losses):
    """forward, fwd+bwd ("fwd+bwd" first: the warm-up) and, ``with_losses``, the losses."""
    import mindspore as ms
    parts = _MindSporeParts(step)
    img = ms.Tensor(batch["img"])
    stages = {"fwd+bwd": lambda: _read(parts.network_grad(img)),
              "forward": lambda: _read(parts.outputs(img))}
    if with_losses:
        targets = step.targets(batch)
        outputs = parts.outputs(img)
        stages["losses"] = lambda: _read(parts.losses_grad(outputs, targets))
    return stages


def _endless(loader):
    """The loader's batches, epoch after epoch."""
    epoch = 0
    while True:
        yield from loader
        epoch += 1
        loader.set_epoch(epoch)


@contextlib.contextmanager
def _torch_norms_as_identity():
    """The transcription's batch and group norms → the identity (restored on exit)."""
    from tools import original_forward
    saved = original_forward.torch_batch_norm, original_forward.torch_group_norm
    original_forward.torch_batch_norm = original_forward.torch_group_norm = (
        lambda state, x, prefix: x)
    try:
        yield
    finally:
        original_forward.torch_batch_norm, original_forward.torch_group_norm = saved


def measure_torch(args, cfg, batch):
    """The original's training step in PyTorch on ``batch``, stage by stage as
    `measure_mindspore`; in this (parent) process, which runs no MindSpore operation.

    Denormal floats are flushed to zero: after a few updates of the random weights, torch's CPU
    losses met denormals and some steps took 105 s instead of 9 s (R101, 640×640), a baseline
    that would flatter MindSpore, whose step showed no such slowdown.
    """
    import torch

    torch.set_flush_denormal(True)

    from mmdet_ms.utils.checkpoint import read_torch_checkpoint
    from tools.original_forward import torch_original_train_outputs
    from tools.original_solov2_loss import (torch_sgd_step, torch_solov2_loss,
                                            torch_solov2_targets, trainable_state)

    head = cfg.model.bbox_head
    loss_args = _torch_loss_args(head)
    state = trainable_state(read_torch_checkpoint(args.torch_baseline)[0],
                            cfg.model.backbone.get("frozen_stages", 1))
    params = [value for value in state.values() if value.requires_grad]
    optimizer = torch.optim.SGD(params, lr=cfg.optimizer.lr, momentum=cfg.optimizer.momentum,
                                weight_decay=cfg.optimizer.weight_decay)
    grad_clip = (cfg.get("optimizer_config") or {}).get("grad_clip")
    img = torch.from_numpy(batch["img"])
    mask_feat_size = (img.shape[2] // 4, img.shape[3] // 4)

    def targets():
        return torch_solov2_targets(head, batch["gt_bboxes"], batch["gt_labels"],
                                    batch["gt_masks"], mask_feat_size)

    def forward():
        logits, kernels, mask_feat = torch_original_train_outputs(state, img, head.num_grids)
        return [*logits, *kernels, mask_feat]

    def network_backward():
        optimizer.zero_grad(set_to_none=True)
        outputs = forward()
        torch.autograd.backward(outputs, [torch.ones_like(value) for value in outputs])

    fixed_targets = targets()
    with torch.no_grad():
        fixed_outputs = forward()

    def losses_backward():
        outputs = [value.detach().requires_grad_() for value in fixed_outputs]
        levels = len(head.num_grids)
        loss_ins, loss_cate = torch_solov2_loss(outputs[:levels], outputs[levels:2 * levels],
                                                outputs[-1], fixed_targets, **loss_args)
        (loss_ins + loss_cate).backward()

    def gradients():
        optimizer.zero_grad(set_to_none=True)
        outputs = forward()
        levels = len(head.num_grids)
        loss_ins, loss_cate = torch_solov2_loss(outputs[:levels], outputs[levels:2 * levels],
                                                outputs[-1], targets(), **loss_args)
        total = loss_ins + loss_cate
        total.backward()
        return total.item()

    def update():
        if grad_clip:
            torch_sgd_step(optimizer, params, float(grad_clip["max_norm"]))
        else:
            optimizer.step()

    def step():
        gradients()
        update()

    stages = {"step": step, "targets": targets, "forward": forward,
              "fwd+bwd": network_backward, "losses": losses_backward,
              "gradients": gradients, "optimizer": update}
    medians, first_call, warm_peak = _timed_rounds(stages, args.warmup, args.runs)
    medians["step+data"] = medians["step"]
    result = dict(medians=medians, first_call=first_call, warm_peak_rss_mib=warm_peak,
                  threads=torch.get_num_threads())
    if not args.no_norms:
        with _torch_norms_as_identity():
            norm_free, _, _ = _timed_rounds({"fwd+bwd": network_backward, "forward": forward},
                                            1, args.runs)
        result["without_norms"] = {name: norm_free[name] for name in NORM_FREE_STAGES}
    result["peak_rss_mib"] = _peak_rss_mib()
    return result


def _torch_loss_args(head):
    return dict(ins_loss_weight=head.loss_ins.get("loss_weight", 3.0),
                gamma=head.loss_cate.get("gamma", 2.0), alpha=head.loss_cate.get("alpha", 0.25),
                cate_loss_weight=head.loss_cate.get("loss_weight", 1.0))


def breakdown(medians, without_norms):
    """The step's parts (see the module docstring); conv/norms only with ``without_norms``."""
    parts = {"losses": medians["losses"], "targets": medians["targets"],
             "optimizer": medians["optimizer"], "step": medians["step"],
             "rest": medians["step"] - medians["targets"] - medians["fwd+bwd"]
             - medians["losses"] - medians["optimizer"]}
    if without_norms:
        parts["conv fwd"] = without_norms["forward"]
        parts["conv bwd"] = without_norms["fwd+bwd"] - without_norms["forward"]
        parts["norms"] = medians["fwd+bwd"] - without_norms["fwd+bwd"]
    return {name: parts[name] for name in BREAKDOWN if name in parts}


def outside_share(medians):
    """Share of one iteration outside the compiled network and losses (module docstring)."""
    whole = medians["step+data"]
    return (whole - medians["fwd+bwd"] - medians["losses"]) / whole


def _load():
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def format_report(figures):
    ms_row, torch_row = figures["mindspore"], figures.get("torch")
    lines = [f"{'stage':<11} {'MindSpore s':>11}" + (f" {'torch s':>9} {'MS/torch':>8}"
                                                     if torch_row else "")]
    for stage in MS_STAGES:
        line = f"{stage:<11} {ms_row['medians'][stage]:>11.3f}"
        if torch_row and stage in torch_row["medians"]:
            line += f" {torch_row['medians'][stage]:>9.3f} {figures['ratios'][stage]:>8.2f}"
        lines.append(line)
    lines.append("breakdown of the step (s, share of step):")
    for part in ms_row["breakdown"]:
        value = ms_row["breakdown"][part]
        line = f"  {part:<9} {value:>8.3f} {value / ms_row['medians']['step']:>6.1%}"
        if torch_row and part in torch_row["breakdown"]:
            other = torch_row["breakdown"][part]
            line += f"   torch {other:>8.3f} {other / torch_row['medians']['step']:>6.1%}"
        lines.append(line)
    lines.append(f"outside the compiled network and losses: {ms_row['outside_share']:.1%} of "
                 f"step+data (MindSpore)")
    lines.append(f"first step {ms_row['first_call']:.2f} s (compiles); peak RSS after the "
                 f"warm-up / of the whole measurement: MindSpore step "
                 f"{ms_row['warm_peak_rss_mib']:.0f} / {ms_row['peak_rss_mib']:.0f} MiB"
                 + (f", parts {ms_row['parts_peak_rss_mib']:.0f} MiB"
                    if "parts_peak_rss_mib" in ms_row else "")
                 + (f", torch {torch_row['warm_peak_rss_mib']:.0f} / "
                    f"{torch_row['peak_rss_mib']:.0f} MiB" if torch_row else ""))
    return "\n".join(lines)


def _child_main(connection, function, args):
    try:
        connection.send((True, function(*args)))
    except Exception as err:  # noqa: BLE001  (re-raised in the parent)
        connection.send((False, err))
    finally:
        connection.close()


def _measure_in_child(function, *args):
    """``function(*args)`` in a fresh (spawned) process; its exception is raised here. Not a
    ``Pool``: its daemonic worker could not start the loader's workers."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child_main, args=(sender, function, args))
    child.start()
    sender.close()
    # Polled: where the child is killed (out of memory, say), its loader workers can outlive it
    # and hold the pipe open, so recv() would wait for ever.
    while not receiver.poll(1.0):
        if not child.is_alive():
            child.join()
            raise RuntimeError(f"the measuring process died (exit code {child.exitcode}; -9: "
                               "killed, e.g. for lack of memory)")
    succeeded, value = receiver.recv()
    child.join()
    if not succeeded:
        raise value
    return value


def _converted_checkpoint(args, folder):
    """The --torch-baseline weights as a .ckpt for the MindSpore side (None: not needed)."""
    if not args.torch_baseline or args.checkpoint:
        return None
    from mmdet_ms.apis.convert import convert
    path = os.path.join(folder, "baseline.ckpt")
    convert(args.torch_baseline, path, config=args.config, cfg_options=args.cfg_options)
    return path


def run(args):
    import mindspore as ms
    figures = dict(config=args.config, data=args.data, runs=args.runs, warmup=args.warmup,
                   mindspore_version=ms.__version__,
                   processor=platform.processor() or platform.machine(), cpus=os.cpu_count(),
                   load_average_before=_load())
    with tempfile.TemporaryDirectory(prefix="benchmark_train_") as folder:
        cfg = training_config(args, folder, write_images=True)
        converted = _converted_checkpoint(args, folder)
        print(f"mindspore, the step: measuring (load average {_load()})", flush=True)
        ms_row = _measure_in_child(measure_mindspore, args, folder, converted, "step")
        batch = ms_row.pop("batch")
        print(f"mindspore, its parts: measuring (load average {_load()})", flush=True)
        parts = _measure_in_child(measure_mindspore, args, folder, converted, "parts")
        ms_row["medians"].update(parts["medians"])
        ms_row["parts_peak_rss_mib"] = parts["peak_rss_mib"]
        without_norms = None
        if not args.no_norms:
            print(f"mindspore without norms: measuring (load average {_load()})", flush=True)
            figures["mindspore_without_norms"] = _measure_in_child(
                measure_mindspore, args, folder, converted, "norm-free")
            without_norms = figures["mindspore_without_norms"]["medians"]
        ms_row["breakdown"] = breakdown(ms_row["medians"], without_norms)
        ms_row["outside_share"] = outside_share(ms_row["medians"])
        figures["input_shape"] = ms_row["input_shape"]
        figures["mindspore"] = ms_row
        if args.torch_baseline:
            print(f"torch: measuring (load average {_load()})", flush=True)
            torch_row = measure_torch(args, cfg, batch)
            torch_row["breakdown"] = breakdown(torch_row["medians"],
                                               torch_row.get("without_norms"))
            figures["torch"] = torch_row
            figures["ratios"] = {stage: ms_row["medians"][stage] / torch_row["medians"][stage]
                                 for stage in torch_row["medians"]}
    figures["load_average_after"] = _load()
    return figures


def main(argv=None):
    args = parse_args(argv)
    print(f"{args.config}: training, {args.runs} runs after {args.warmup} warm-up steps; "
          f"{args.data} data; {os.cpu_count()} CPUs", flush=True)
    try:
        figures = run(args)
    except (FileNotFoundError, ValueError) as err:  # ConfigError, CheckpointError are ValueErrors
        print(f"benchmark.py --train: error: {err}", file=sys.stderr)
        return USAGE_ERROR
    print(f"input {tuple(figures['input_shape'])}; load average {figures['load_average_before']} "
          f"before, {figures['load_average_after']} after")
    print(format_report(figures))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(figures, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
