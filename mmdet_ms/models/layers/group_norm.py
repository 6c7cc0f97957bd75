"""GroupNorm with faster forms for training and for compiled inference.

MindSpore 2.8's CPU GroupNorm kernel is slow: 76 ms on a 128×200×304 map in a compiled graph
(torch: 2.4 ms), and SOLOv2's heads run ~50 of them per image. At inference the same result can be
had from fast kernels: the group statistics as matrix products with a ones vector, the
normalisation and affine as one inference-mode BatchNorm over the N*C channels (per-channel mean
and variance = those of the channel's group). 26 ms on that map; 2.1 ms instead of 9 ms on a
512×40×40 head map. Its results differ from the kernel's by ~1e-6 (float32 rounding).

Op by op (PyNative) the ~15 small ops of that form cost more than they save on the head's small
maps, so it is switched on only where the network is compiled: ``use_compiled_inference_form``.

Compiled training uses ``GroupNormTrainingForm``: two BatchNorm kernels and their backward
kernels. Compiled, forward + backward (``tools/benchmark_group_norm.py``, medians of 7, busy
machine): 2×128×200×200 271 ms instead of the kernel's 364 (forward alone 44 / 108),
2×128×100×100 86 / 108, 2×512×40×40 61 / 78, 2×512×12×12 19 / 24. Op by op it is slower on
the heads' small maps (12×12: 65 / 23 ms), and an op-by-op quick-start step ran ~2× slower with
it (steps of both taken in turn), so it too is switched on only where the network is compiled:
``use_compiled_training_form``, which the compiled train step applies. Tried and dropped: the
same formula in reductions and element-wise ops, or statistics by matrix products, left to
autodiff (slower than the kernel: broadcast gradients); a hand-written ``bprop`` with one pass
fewer (faster alone on big maps, but its ~40 small kernels a norm made the compiled quick-start
step slower than the kernel's, 2.3 s against 1.95 s, and compiling it took 65 s against 21 s).
"""
import mindspore as ms
import mindspore.nn as nn
import mindspore.ops as ops


class GroupNormTrainingForm(nn.Cell):
    """Group normalisation of a float32 (N, C, H, W) map with per-channel ``gamma``, ``beta``
    given as inputs, from two BatchNorm kernels that MindSpore differentiates itself.

    A training-mode BatchNorm over the N*G groups as channels — x viewed as
    (1, N*G, C/G*H, W) — normalises each group by its own (biased) mean and variance; its
    moving statistics are throw-away tensors. An inference-mode BatchNorm over the N*C channels
    (mean 0, variance 1 - eps) then applies ``gamma`` and ``beta``. Their gradients are
    BatchNorm's backward kernels: forward and backward are each two passes of fast kernels over
    the map and a few tiny ops.
    """

    def __init__(self, num_groups, eps):
        super().__init__()
        self.num_groups = num_groups
        self.eps = eps
        self.normalize = ops.BatchNorm(is_training=True, epsilon=eps)
        self.affine = ops.BatchNorm(is_training=False, epsilon=eps)

    def construct(self, x, gamma, beta):
        n, channels, height, width = x.shape
        groups = n * self.num_groups
        # The kernel updates its moving statistics in place. Compiled, equal constants are one
        # buffer: moving statistics of ones and zeros overwrote the scale and the shift (those of
        # the norms after it too) once the backward pass was in the same graph. So they are NaN,
        # a value no other constant holds; nothing reads them.
        scratch_mean = ops.fill(x.dtype, (groups,), float("nan"))
        scratch_var = ops.fill(x.dtype, (groups,), float("nan"))
        xhat = self.normalize(x.reshape(1, groups, -1, width), ops.ones((groups,), x.dtype),
                              ops.zeros((groups,), x.dtype), scratch_mean,
                              scratch_var)[0]  # (1, N*G, C/G*H, W)
        unit_variance = ops.fill(x.dtype, (n * channels,), 1.0 - self.eps)
        out = self.affine(xhat.reshape(1, n * channels, height, width), ops.tile(gamma, (n,)),
                          ops.tile(beta, (n,)), ops.zeros((n * channels,), x.dtype),
                          unit_variance)[0]
        return out.reshape(n, channels, height, width)


class GroupNorm(nn.GroupNorm):
    """``nn.GroupNorm`` (same parameters ``gamma``, ``beta``), with the compiled training form
    (``GroupNormTrainingForm``) and the compiled inference form, each switched on by a flag.

    The training form normalises any float input (float16 too) in float32 and returns the
    input's type.
    """

    def __init__(self, num_groups, num_channels, eps=1e-5):
        super().__init__(num_groups, num_channels, eps=eps)
        self.compiled_inference_form = False
        # The engine's compiled train step sets this on every cell that has it.
        self.compiled_training_form = False
        self.batch_norm = ops.BatchNorm(is_training=False, epsilon=eps)
        self.training_form = GroupNormTrainingForm(num_groups, eps)

    def construct(self, x):
        if self.training and self.compiled_training_form:
            return self.training_form(x.astype(ms.float32), self.gamma, self.beta).astype(x.dtype)
        if self.training or not self.compiled_inference_form:
            return super().construct(x)
        return self._normalize_by_batch_norm(x)

    def _normalize_by_batch_norm(self, x):
        n, channels, height, width = x.shape
        groups = n * self.num_groups
        per_group = channels // self.num_groups
        rows = per_group * height  # rows of W values in one group
        count = rows * width
        ones_w = ops.ones((width, 1), x.dtype)
        ones_rows = ops.ones((rows, 1), x.dtype)
        flat = x.reshape(groups * rows, width)  # (N*G*rows, W)
        # Two-level sums (a row, then the rows) keep float32 rounding near torch's.
        mean = ops.matmul(ops.matmul(flat, ones_w).reshape(groups, rows), ones_rows) / count
        mean_sq = ops.matmul(ops.matmul(ops.square(flat), ones_w).reshape(groups, rows),
                             ones_rows) / count  # (N*G, 1)
        var = ops.relu(mean_sq - ops.square(mean))
        channel_mean = ops.tile(mean, (1, per_group)).reshape(-1)  # (N*C,)
        channel_var = ops.tile(var, (1, per_group)).reshape(-1)
        gamma = ops.tile(self.gamma.astype(x.dtype), (n,))
        beta = ops.tile(self.beta.astype(x.dtype), (n,))
        out = self.batch_norm(x.reshape(1, n * channels, height, width), gamma, beta,
                              channel_mean, channel_var)[0]
        return out.reshape(n, channels, height, width)


def use_compiled_training_form(network, enabled=True):
    """Switch every ``GroupNorm`` of ``network`` to (or back from) the compiled training form.
    Call before the network is compiled; the compiled train step (``CompiledTrainOutputs``)
    does it itself."""
    return _set_form(network, "compiled_training_form", enabled)


def use_compiled_inference_form(network, enabled=True):
    """Switch every ``GroupNorm`` of ``network`` to (or back from) the compiled inference form.
    Call before the network is compiled: a compiled graph keeps the form it was compiled with."""
    return _set_form(network, "compiled_inference_form", enabled)


def _set_form(network, flag, enabled):
    for _, cell in network.cells_and_names():
        if isinstance(cell, GroupNorm):
            setattr(cell, flag, enabled)
    return network
