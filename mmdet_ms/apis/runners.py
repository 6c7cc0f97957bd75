"""How the network part of a detector runs: op by op (PyNative) or compiled once per input shape.

A runner maps a normalized, padded batch (N, 3, H, W) float32 numpy array to the numpy arrays
post-processing reads: cate scores (N, ΣS², C), kernels (N, ΣS², E), mask feature (N, E, H/4, W/4).
Pre- and post-processing are the same numpy code whichever runner is used.
"""
import mindspore as ms

from ..models.layers import use_compiled_inference_form

RUN_MODES = ("pynative", "graph")


def outputs_to_numpy(outputs):
    """The network's (cate scores, kernels, mask feature) Tensors → numpy arrays."""
    return tuple(output.asnumpy() for output in outputs)


class PyNativeRunner:
    """``network(batch)`` op by op: any input shape, nothing to compile."""

    mode = "pynative"

    def __init__(self, network):
        self.network = network

    def __call__(self, batch):
        return outputs_to_numpy(self.network(ms.Tensor(batch)))


class GraphRunner:
    """``network.construct`` compiled with ``ms.jit``, the rest of the program staying PyNative.

    The first call at an input shape compiles a graph (R101: a few seconds); later calls at that
    shape reuse it, so a data set with a few distinct padded sizes compiles a few graphs.

    Inputs are deliberately NOT padded to a coarser set of sizes ("buckets"): SOLOv2's output
    depends on the padded size, not only on the image inside it (the head resizes the whole padded
    map to each S×S grid and the coordinate channels span the padded map), so extra zero padding
    changes scores and masks. Each exact 32-multiple padded shape gets its own graph instead.

    The network's GroupNorms are switched to their compiled inference form (``layers.group_norm``):
    faster in a graph, equal to the kernel's results within float32 rounding.
    """

    mode = "graph"

    def __init__(self, network):
        self.network = use_compiled_inference_form(network)
        self._compiled = ms.jit(network.construct)
        self.compiled_shapes = set()  # input shapes seen, hence graphs compiled

    def __call__(self, batch):
        self.compiled_shapes.add(tuple(batch.shape))
        return outputs_to_numpy(self._compiled(ms.Tensor(batch)))


def check_run_mode(mode):
    """``mode`` if it is one of RUN_MODES, else a ValueError naming them."""
    if mode not in RUN_MODES:
        raise ValueError(f"mode must be one of {', '.join(RUN_MODES)}, got '{mode}'")
    return mode


def build_runner(network, mode="pynative"):
    """The runner for ``mode``: 'pynative' or 'graph'."""
    if check_run_mode(mode) == "graph":
        return GraphRunner(network)
    return PyNativeRunner(network)
