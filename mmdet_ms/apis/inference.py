"""The Python API: build a detector from a config and a checkpoint, segment images."""
import mindspore as ms
import numpy as np

from ..config import Config
from ..core.class_names import default_class_names
from ..datasets.transforms import Compose
from ..models import build_detector
from ..utils.checkpoint import load_checkpoint
from ..utils.device import set_device


def _as_config(config, cfg_options):
    cfg = config if isinstance(config, Config) else Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def build_test_pipeline(cfg):
    """The config's test pipeline, reading the image from ``results['img']`` (a path or an array)."""
    steps = [dict(step) for step in cfg.data.test.pipeline]
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


def init_detector(config, checkpoint=None, device_target=None, cfg_options=None):
    """A SOLOv2 network in eval mode with ``.cfg``, ``.CLASSES`` and ``.test_pipeline``.

    Args:
        config: a config file path or a ``Config``.
        checkpoint: a MindSpore ``.ckpt`` (e.g. from ``weight_convert.py``); None: random weights.
        device_target: 'Ascend', 'GPU' or 'CPU'; None picks the best available.
        cfg_options: dict of dotted-key overrides, as ``--cfg-options``.
    """
    set_device(device_target)
    cfg = _as_config(config, cfg_options)
    model = build_detector(cfg.model, cfg.get("train_cfg"), cfg.get("test_cfg"))
    model.set_train(False)
    meta = load_checkpoint(model, checkpoint) if checkpoint else {}
    model.cfg = cfg
    model.CLASSES = class_names(cfg, meta)
    model.test_pipeline = build_test_pipeline(cfg)
    return model


def preprocess(model, img):
    """An image (path or BGR array) → (input (1, 3, H, W) float32, img_meta)."""
    data = model.test_pipeline({"img": img})
    return data["img"][None].astype(np.float32), data["img_meta"]


def run_network(model, batch):
    """(N, 3, H, W) numpy → numpy (cate scores, kernels, mask feature)."""
    return tuple(out.asnumpy() for out in model(ms.Tensor(batch)))


def inference_detector(model, img):
    """Segment one image (a file path or a BGR ``ndarray``); a list of them gives a list.

    Returns an ``InstanceResult``: ``masks`` (N, H, W) bool at the image's size, ``labels`` (N,)
    0-based, ``scores`` (N,), highest score first.
    """
    if isinstance(img, (list, tuple)):
        return [inference_detector(model, one) for one in img]
    batch, img_meta = preprocess(model, img)
    return model.postprocess(*run_network(model, batch), [img_meta])[0]
