"""Deployment as MindIR: the network exported at one fixed input size, run back through
``nn.GraphCell`` between the config's own pre- and post-processing.

A MindIR graph has a static input shape, so every image is zero-padded (bottom/right) from its
32-multiple padded size up to the exported size. That extra padding changes SOLOv2's output a
little (see ``runners.GraphRunner``): results equal the Python network's on the same padded input,
and equal the exact-size path only for images whose padded size is the exported size.
"""
import json
import math
import os

import mindspore as ms
import mindspore.nn as nn
import numpy as np
from mindspore.train.mind_ir_pb2 import ModelProto

from ..core.solo_postprocess import batch_postprocess_of
from ..models.layers import use_compiled_inference_form
from ..registry import ConfigError
from ..utils.paths import apply_umask
from .runners import outputs_to_numpy

INFO_KEY = "solov2"  # the user_info entry holding what post-processing needs from the network


def _pipeline_steps(steps):
    """The test pipeline's steps, those nested in ``MultiScaleFlipAug`` included, in order."""
    for step in steps:
        yield step
        yield from _pipeline_steps(step.get("transforms", []))


def default_export_size(cfg):
    """(H, W): the largest landscape input the config's test pipeline produces.

    The test scale (long, short), e.g. (1333, 800), padded up to the ``Pad`` step's size divisor:
    (800, 1344). Landscape images of any aspect ratio fit; portrait ones need (1344, 800).
    """
    steps = list(_pipeline_steps(cfg.data.test.pipeline))
    scales = [step["img_scale"] for step in steps if "img_scale" in step]
    divisors = [step["size_divisor"] for step in steps
                if step.get("type") == "Pad" and step.get("size_divisor")]
    if not scales or not divisors:
        raise ConfigError("data.test.pipeline: needs an img_scale and a Pad with size_divisor to "
                          "choose the export size; give --size H W")
    scale = scales[0]
    scale_list = scale if isinstance(scale[0], (list, tuple)) else [scale]  # multi-scale test
    short = max(min(int(side) for side in one) for one in scale_list)
    long = max(max(int(side) for side in one) for one in scale_list)
    divisor = int(divisors[0])
    return math.ceil(short / divisor) * divisor, math.ceil(long / divisor) * divisor


def _store_info(info):
    """An ``ms.export`` custom_func that writes ``info`` as JSON into the MindIR's user_info."""
    def add_user_info(model_proto):
        entry = model_proto.user_info.add()
        entry.key = INFO_KEY
        entry.value = json.dumps(info)
    return add_user_info


def export_mindir(model, path, size, batch_size=1):
    """Write ``model``'s network (a SOLOv2 or SOLO cell in eval mode) as MindIR for input
    (batch_size, 3, H, W) with ``size`` = (H, W), both multiples of 32. Returns ``path``.
    ``model``'s GroupNorms are left in their compiled inference form, as in graph mode."""
    if not path.endswith(".mindir"):
        raise ValueError(f"{path}: a MindIR file name must end with .mindir")
    height, width = (int(side) for side in size)
    if height <= 0 or width <= 0 or height % 32 or width % 32:
        raise ValueError(f"export size {height}x{width}: both sides must be positive multiples "
                         "of 32 (the network's largest stride)")
    input_shape = (int(batch_size), 3, height, width)
    head = model.bbox_head
    info = dict(input_shape=input_shape, num_grids=list(head.num_grids),
                strides=list(head.strides), classes=list(getattr(model, "CLASSES", ()) or ()),
                head=type(head).__name__)
    example = ms.Tensor(np.zeros(input_shape, np.float32))
    use_compiled_inference_form(model)
    ms.export(model, example, file_name=path, file_format="MINDIR", custom_func=_store_info(info))
    apply_umask(path)  # MindSpore leaves it read-only to its owner (0400)
    return path


def read_mindir_info(path):
    """The info ``export_mindir`` stored in ``path`` (input_shape, num_grids, strides, classes)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such MindIR file")
    model_proto = ModelProto()
    with open(path, "rb") as file:
        model_proto.ParseFromString(file.read())
    stored = {entry.key: entry.value for entry in model_proto.user_info}
    if INFO_KEY not in stored:
        raise ValueError(f"{path}: no SOLOv2 export info in this MindIR; export it with "
                         "tools/export.py")
    return json.loads(stored[INFO_KEY])


def pad_batch(batch, size):
    """(N, 3, h, w) → (N, 3, H, W), zeros at the bottom and right, as the pipeline's ``Pad``."""
    height, width = size
    if batch.shape[2] > height or batch.shape[3] > width:
        raise ValueError(f"an input of {batch.shape[2]}x{batch.shape[3]} does not fit the MindIR's "
                         f"{height}x{width}: export with a larger --size (H W)")
    padded = np.zeros((*batch.shape[:2], height, width), dtype=np.float32)
    padded[:, :, :batch.shape[2], :batch.shape[3]] = batch
    return padded


class MindIRRunner:
    """An exported network (``ms.load`` + ``nn.GraphCell``) as a runner: inputs padded to its size.

    A MindIR exported for batch 1 takes a batch image by image.
    """

    mode = "mindir"

    def __init__(self, path):
        self.info = read_mindir_info(path)
        self.input_shape = tuple(self.info["input_shape"])  # (N, 3, H, W)
        self.network = nn.GraphCell(ms.load(os.fspath(path)))

    def __call__(self, batch):
        exported_batch = self.input_shape[0]
        if len(batch) != exported_batch and exported_batch != 1:
            raise ValueError(f"the MindIR takes batches of {exported_batch} images, got {len(batch)}")
        padded = pad_batch(batch, self.input_shape[2:])
        if len(batch) == exported_batch:
            return outputs_to_numpy(self.network(ms.Tensor(padded)))
        per_image = [outputs_to_numpy(self.network(ms.Tensor(one[None]))) for one in padded]
        return tuple(np.concatenate(arrays) for arrays in zip(*per_image))


class MindIRDetector:
    """What ``inference_detector`` needs, around an exported network: ``cfg``, ``CLASSES``,
    ``test_pipeline``, ``network_runner`` and ``postprocess``; no Python network, no checkpoint.
    """

    def __init__(self, cfg, runner, classes, test_pipeline):
        self.cfg = cfg
        self.network_runner = runner
        self.CLASSES = tuple(classes)
        self.test_pipeline = test_pipeline
        self.num_grids = tuple(runner.info["num_grids"])
        self.strides = tuple(runner.info["strides"])
        self.test_cfg = dict(cfg.test_cfg)
        self._batch_postprocess = batch_postprocess_of(runner.info.get("head", "SOLOv2Head"))

    def postprocess(self, *outputs_and_metas):
        """numpy network outputs for a batch, then ``img_metas`` → one InstanceResult per image
        (as the exported detector's ``postprocess``)."""
        *outputs, img_metas = outputs_and_metas
        return self._batch_postprocess(outputs, self.num_grids, self.strides, img_metas,
                                       self.test_cfg)
