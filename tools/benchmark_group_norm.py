"""Time GroupNorm in training: MindSpore's kernel (``nn.GroupNorm``), this port's training form
(``mmdet_ms.models.layers.GroupNorm`` in training mode) and torch's ``F.group_norm``, forward
and forward + backward (gradients for the input, gamma and beta), alone and inside a small
conv3x3 + GN + ReLU stack.

Prints medians (and minima) in ms over ``--runs`` timed calls after ``--warmup`` calls; the
variants take turns within each run, so a busy machine slows them alike. ``--mode graph``
compiles each MindSpore network with ``ms.jit`` and differentiates it from PyNative, as the
train step does; ``--mode pynative`` runs it op by op.

    python tools/benchmark_group_norm.py --shapes 2,128,200,200 2,512,40,40 --runs 5
"""
import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("GLOG_v", "3")

import mindspore as ms  # noqa: E402
import mindspore.nn as nn  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from mmdet_ms.models.layers import GroupNorm, use_compiled_training_form  # noqa: E402
from mmdet_ms.utils.device import set_device  # noqa: E402

DEFAULT_SHAPES = ("2,128,200,200", "2,128,100,100", "2,512,40,40", "2,512,12,12")


def parse_shape(text):
    """'N,C,H,W' → a tuple of 4 positive ints (argparse type)."""
    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 4 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"expected N,C,H,W (positive ints), got '{text}'")
    return shape


class Compiled(nn.Cell):
    """``cell`` compiled into one graph, as ``CompiledTrainOutputs`` compiles the network."""

    def __init__(self, cell):
        super().__init__(auto_prefix=False)
        self.cell = cell

    @ms.jit
    def construct(self, x):
        return self.cell(x)


def ms_norm(kind, groups, channels):
    """'kernel': MindSpore's nn.GroupNorm; 'form': this port's GroupNorm in its training form
    (also op by op, where it is not the default)."""
    if kind == "kernel":
        return nn.GroupNorm(groups, channels)
    return use_compiled_training_form(GroupNorm(groups, channels))


def ms_stack(kind, groups, channels, depth):
    """``depth`` × (conv3x3 → norm → ReLU); ``kind`` 'none' leaves the norm out."""
    layers = []
    for _ in range(depth):
        layers.append(nn.Conv2d(channels, channels, 3, pad_mode="pad", padding=1, has_bias=False))
        if kind != "none":
            layers.append(ms_norm(kind, groups, channels))
        layers.append(nn.ReLU())
    return nn.SequentialCell(layers)


def ms_callables(cell, x, mode):
    """(forward, forward + backward) of ``cell`` on ``x``, each waiting for its results."""
    cell.set_train(True)
    run = Compiled(cell) if mode == "graph" else cell
    grad_fn = ms.value_and_grad(lambda inputs: run(inputs).astype(ms.float32).sum(), 0,
                                cell.trainable_params())

    def forward():
        run(x).asnumpy()

    def forward_backward():
        _, (dx, weight_grads) = grad_fn(x)
        dx.asnumpy()
        for grad in weight_grads:
            grad.asnumpy()
    return forward, forward_backward


def torch_callables(model, x):
    x = x.clone().requires_grad_(True)

    def forward():
        with torch.no_grad():
            model(x)

    def forward_backward():
        model(x).float().sum().backward()
    return forward, forward_backward


def torch_norm(groups, channels):
    weight = torch.ones(channels, requires_grad=True)
    bias = torch.zeros(channels, requires_grad=True)
    return lambda x: F.group_norm(x.float(), groups, weight, bias, 1e-5).to(x.dtype)


def torch_stack(with_norm, groups, channels, depth):
    layers = []
    for _ in range(depth):
        layers.append(torch.nn.Conv2d(channels, channels, 3, padding=1, bias=False))
        if with_norm:
            layers.append(torch.nn.GroupNorm(groups, channels))
        layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def time_round_robin(callables, runs, warmup):
    """{name: [seconds]} with the callables taking turns, ``warmup`` untimed calls first."""
    for fn in callables.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in callables}
    for _ in range(runs):
        for name, fn in callables.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def benchmark_shape(shape, args):
    """Rows (label, {variant: (fwd times, fwd+bwd times)}) for one shape."""
    n, channels, height, width = shape
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal(shape).astype(np.float32)
    ms_dtype = ms.float16 if args.dtype == "float16" else ms.float32
    x_ms = ms.Tensor(x_np).astype(ms_dtype)
    # torch's CPU group_norm has no float16 kernel: it normalises a float32 copy.
    x_torch = torch.from_numpy(x_np).to(torch.float16 if args.dtype == "float16" else torch.float32)
    variants = {}
    if not args.stack_only:
        for kind in ("kernel", "form"):
            variants[f"ms {kind}"] = ms_callables(ms_norm(kind, args.groups, channels), x_ms,
                                                 args.mode)
        variants["torch"] = torch_callables(torch_norm(args.groups, channels), x_torch)
    if args.stack_depth:
        x_stack = ms.Tensor(x_np)  # convolutions in float32
        for kind in ("none", "kernel", "form"):
            cell = ms_stack(kind, args.groups, channels, args.stack_depth)
            variants[f"stack ms {kind}"] = ms_callables(cell, x_stack, args.mode)
        for with_norm in (False, True):
            model = torch_stack(with_norm, args.groups, channels, args.stack_depth)
            variants[f"stack torch {'gn' if with_norm else 'none'}"] = torch_callables(
                model, torch.from_numpy(x_np))
    forward = time_round_robin({k: v[0] for k, v in variants.items()}, args.runs, args.warmup)
    both = time_round_robin({k: v[1] for k, v in variants.items()}, args.runs, args.warmup)
    return {name: (forward[name], both[name]) for name in variants}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", nargs="+", type=parse_shape,
                        default=[parse_shape(s) for s in DEFAULT_SHAPES], help="N,C,H,W ...")
    parser.add_argument("--groups", type=int, default=32)
    parser.add_argument("--mode", choices=("graph", "pynative"), default="graph")
    parser.add_argument("--dtype", choices=("float32", "float16"), default="float32",
                        help="input type of the norms alone (the stacks run in float32)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--stack-depth", type=int, default=2,
                        help="conv+GN+ReLU blocks in the stack (0: no stack)")
    parser.add_argument("--stack-only", action="store_true", help="skip the norms alone")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.warmup < 0 or args.stack_depth < 0:
        parser.error("--runs must be >= 1, --warmup and --stack-depth >= 0")
    for shape in args.shapes:
        if shape[1] % args.groups:
            parser.error(f"--shapes: {shape[1]} channels are not a multiple of "
                         f"--groups {args.groups}")
    if args.stack_only and not args.stack_depth:
        parser.error("--stack-only needs --stack-depth >= 1")
    torch.set_num_threads(args.threads)
    set_device("CPU", mode="pynative")
    print(f"mode {args.mode}, {args.dtype}, groups {args.groups}, {args.runs} runs after "
          f"{args.warmup} warm-up; load average before: {os.getloadavg()}")
    print(f"{'shape':<20} {'variant':<18} {'fwd median':>11} {'fwd min':>8} "
          f"{'fwd+bwd median':>15} {'fwd+bwd min':>12}  (ms)")
    for shape in args.shapes:
        for name, (forward, both) in benchmark_shape(shape, args).items():
            print(f"{str(shape):<20} {name:<18} {statistics.median(forward) * 1e3:>11.1f} "
                  f"{min(forward) * 1e3:>8.1f} {statistics.median(both) * 1e3:>15.1f} "
                  f"{min(both) * 1e3:>12.1f}", flush=True)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
