"""The Python API: build a detector from a config and a checkpoint (or an exported MindIR),
segment images one by one or in batches."""
import numpy as np

from ..config import Config
from ..core.class_names import default_class_names
from ..datasets.transforms import Compose
from ..hub import resolve_checkpoint
from ..models import build_detector
from ..utils.checkpoint import load_checkpoint
from ..utils.device import set_device
from .mindir import MindIRDetector, MindIRRunner
from .runners import PyNativeRunner, build_runner, check_run_mode


def _as_config(config, cfg_options):
    cfg = config if isinstance(config, Config) else Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def build_test_pipeline(cfg, split="test"):
    """The pipeline of ``cfg.data[split]`` (a test-mode one), reading the image from
    ``results['img']`` (a path or an array)."""
    steps = [dict(step) for step in cfg.data[split].pipeline]
    steps[0] = dict(type="LoadImage")
    return Compose(steps)


def class_names(cfg, meta):
    """Class names: the checkpoint's, else the config's ``data.test.classes``, else defaults."""
    if meta.get("CLASSES"):
        return tuple(meta["CLASSES"])
    configured = cfg.data.test.get("classes") if "data" in cfg else None
    if configured:
        return tuple(configured)
    return default_class_names(cfg.model.bbox_head.num_classes - 1)


def init_detector(config, checkpoint=None, device_target=None, cfg_options=None,
                  mode="graph"):
    """A SOLOv2 network in eval mode with ``.cfg``, ``.CLASSES``, ``.test_pipeline`` and
    ``.network_runner``.

    Args:
        config: a config file path or a ``Config``; None with a model-zoo name as checkpoint.
        checkpoint: a MindSpore ``.ckpt`` (e.g. from ``weight_convert.py``), a model-zoo name
            (``SOLOv2_R101_3x``) or an http(s) URL of an original ``.pth``, fetched, converted
            and cached by ``mmdet_ms.hub``; None: random weights.
        device_target: 'Ascend', 'GPU' or 'CPU'; None picks the best available.
        cfg_options: dict of dotted-key overrides, as ``--cfg-options``.
        mode: 'graph' (default) compiles the network once per padded input shape with ``ms.jit``
            (seconds at the first image of a shape, faster from then on; results equal
            PyNative's within float32 rounding); 'pynative' runs it op by op.
    """
    check_run_mode(mode)
    set_device(device_target)
    checkpoint, config = resolve_checkpoint(checkpoint, config)
    if config is None:
        raise ValueError(f"give a config for {checkpoint} (only model-zoo names bring their own)")
    cfg = _as_config(config, cfg_options)
    model = build_detector(cfg.model, cfg.get("train_cfg"), cfg.get("test_cfg"))
    model.set_train(False)
    meta = load_checkpoint(model, checkpoint) if checkpoint else {}
    model.cfg = cfg
    model.CLASSES = class_names(cfg, meta)
    model.test_pipeline = build_test_pipeline(cfg)
    model.network_runner = build_runner(model, mode)
    return model


def init_mindir_detector(config, mindir_file, device_target=None, cfg_options=None):
    """A detector whose network is a MindIR from ``tools/export.py``: the config gives the test
    pipeline and ``test_cfg``; the file gives the network, its input size and the class names.
    Each image is zero-padded up to the exported size (see ``mmdet_ms.apis.mindir``).
    """
    set_device(device_target)
    cfg = _as_config(config, cfg_options)
    runner = MindIRRunner(mindir_file)
    classes = runner.info.get("classes") or class_names(cfg, {})
    return MindIRDetector(cfg, runner, classes, build_test_pipeline(cfg))


def prepare_input(test_pipeline, img):
    """An image (path or BGR array) through a test pipeline → (input (1, 3, H, W) float32,
    img_meta)."""
    data = test_pipeline({"img": img})
    return data["img"][None].astype(np.float32), data["img_meta"]


def preprocess(model, img):
    """``prepare_input`` with the model's test pipeline."""
    return prepare_input(model.test_pipeline, img)


def run_network(model, batch):
    """(N, 3, H, W) numpy → numpy (cate scores, kernels, mask feature), with the model's runner
    (PyNative for a network that ``init_detector`` did not build)."""
    runner = getattr(model, "network_runner", None) or PyNativeRunner(model)
    return runner(batch)


def _group_by_input_shape(inputs):
    """{(H, W): [indices]} of the preprocessed (1, 3, H, W) inputs, first appearance first."""
    groups = {}
    for index, one in enumerate(inputs):
        groups.setdefault(one.shape[2:], []).append(index)
    return groups


def inference_batch(model, images):
    """Segment ``images`` (paths or BGR arrays) with one network call per padded input size.

    Images whose padded inputs have the same size run as one batch; an image is never padded
    beyond its own size (that would change its result). Results equal one-by-one inference up to
    float32 rounding: batched convolutions may sum in another order (~1e-6 on the network's
    outputs), which can reorder near-tied instances. Returns InstanceResults in input order.
    """
    prepared = [preprocess(model, img) for img in images]
    inputs = [one_input for one_input, _ in prepared]
    img_metas = [img_meta for _, img_meta in prepared]
    results = [None] * len(images)
    for indices in _group_by_input_shape(inputs).values():
        batch = np.concatenate([inputs[i] for i in indices])  # (n, 3, H, W)
        group_results = model.postprocess(*run_network(model, batch),
                                          [img_metas[i] for i in indices])
        for index, result in zip(indices, group_results):
            results[index] = result
    return results


def inference_detector(model, img, batch_size=1):
    """Segment one image (a file path or a BGR ``ndarray``); a list of them gives a list.

    Returns an ``InstanceResult``: ``masks`` (N, H, W) bool at the image's size, ``labels`` (N,)
    0-based, ``scores`` (N,), highest score first. ``batch_size`` > 1 runs a list through the
    network ``batch_size`` images at a time (see ``inference_batch``).
    """
    if isinstance(img, (list, tuple)):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        return [result for start in range(0, len(img), batch_size)
                for result in inference_batch(model, list(img[start:start + batch_size]))]
    batch, img_meta = preprocess(model, img)
    return model.postprocess(*run_network(model, batch), [img_meta])[0]
