"""GroupNorm with a faster form for compiled inference.

MindSpore 2.8's CPU GroupNorm kernel is slow: 76 ms on a 128×200×304 map in a compiled graph
(torch: 2.4 ms), and SOLOv2's heads run ~50 of them per image. At inference the same result can be
had from fast kernels: the group statistics as matrix products with a ones vector, the
normalisation and affine as one inference-mode BatchNorm over the N*C channels (per-channel mean
and variance = those of the channel's group). 26 ms on that map; 2.1 ms instead of 9 ms on a
512×40×40 head map. Its results differ from the kernel's by ~1e-6 (float32 rounding).

Op by op (PyNative) the ~15 small ops of that form cost more than they save on the head's small
maps, so it is switched on only where the network is compiled: ``use_compiled_inference_form``.
Training always uses the kernel (BatchNorm's inference mode has no gradient for the statistics).
"""
import mindspore.nn as nn
import mindspore.ops as ops


class GroupNorm(nn.GroupNorm):
    """``nn.GroupNorm`` (same parameters, same training), with the compiled inference form."""

    def __init__(self, num_groups, num_channels, eps=1e-5):
        super().__init__(num_groups, num_channels, eps=eps)
        self.compiled_inference_form = False
        self.batch_norm = ops.BatchNorm(is_training=False, epsilon=eps)

    def construct(self, x):
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


def use_compiled_inference_form(network, enabled=True):
    """Switch every ``GroupNorm`` of ``network`` to (or back from) the compiled inference form.
    Call before the network is compiled: a compiled graph keeps the form it was compiled with."""
    for _, cell in network.cells_and_names():
        if isinstance(cell, GroupNorm):
            cell.compiled_inference_form = enabled
    return network
