"""Convert an original SOLOv2 ``.pth`` (WXinlong/SOLO) into a MindSpore ``.ckpt``."""
import os

from ..config import Config
from ..models import build_detector
from .checkpoint import (CheckpointError, convert_torch_state, read_torch_checkpoint,
                         save_checkpoint, torch_name)

CONFIG_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "solov2")
_BLOCKS_TO_DEPTH = {(2, False): 18, (6, False): 34, (6, True): 50, (23, True): 101, (36, True): 152}


def describe_checkpoint(state):
    """What an original state dict holds: ResNet depth, class count, head width."""
    layer3_blocks = {name.split(".")[2] for name in state if name.startswith("backbone.layer3.")}
    bottleneck = any(".conv3." in name for name in state if name.startswith("backbone.layer1."))
    depth = _BLOCKS_TO_DEPTH.get((len(layer3_blocks), bottleneck))
    cate = state.get("bbox_head.solo_cate.weight")
    if depth is None or cate is None:
        raise CheckpointError("not a SOLOv2 ResNet checkpoint: cannot find its backbone depth and "
                              "bbox_head.solo_cate; pass --config")
    return dict(depth=depth, num_classes=int(cate.shape[0]) + 1, seg_feat_channels=int(cate.shape[1]))


def guess_config(state):
    """The model-zoo config matching a state dict, and the num_classes override it needs."""
    info = describe_checkpoint(state)
    light = info["seg_feat_channels"] == 256
    name = (f"solov2_light_448_r{info['depth']}_fpn_8gpu_3x.py" if light
            else f"solov2_r{info['depth']}_fpn_8gpu_3x.py")
    path = os.path.normpath(os.path.join(CONFIG_DIR, name))
    if not os.path.isfile(path):
        raise CheckpointError(f"no model-zoo config for a ResNet-{info['depth']} "
                              f"{'light ' if light else ''}SOLOv2; pass --config")
    return path, info["num_classes"]


def convert(src, dst, config=None, cfg_options=None, verbose=False):
    """Convert ``src`` (.pth) to ``dst`` (.ckpt), checking every tensor against the network built
    from ``config`` (None: guessed from the checkpoint). Returns (config path, number of tensors)."""
    state, meta = read_torch_checkpoint(src)
    options = dict(cfg_options or {})
    if config is None:
        config, num_classes = guess_config(state)
        options.setdefault("model.bbox_head.num_classes", num_classes)
    cfg = Config.fromfile(config, options)
    network = build_detector(cfg.model, cfg.get("train_cfg"), cfg.get("test_cfg"))
    params = convert_torch_state(state, network, source=src)
    if verbose:
        for name, _ in params:
            print(f"  {name}")
    out_meta = {"converted_from": os.path.basename(src), "config": os.path.basename(config)}
    if meta.get("CLASSES"):
        out_meta["CLASSES"] = list(meta["CLASSES"])
    save_checkpoint(params, dst, meta=out_meta)
    return config, len(params)


def original_state_layout(network):
    """[(name, shape)] of the original ``.pth`` state dict that fits ``network``: every parameter
    under its PyTorch name, and after each BatchNorm's ``running_var`` its ``num_batches_tracked``
    scalar. For writing key lists (``name<TAB>shape<TAB>dtype``) of configs other than R101."""
    layout = []
    for param in network.get_parameters():
        name = torch_name(param.name)
        layout.append((name, tuple(param.shape)))
        if name.endswith(".running_var"):
            layout.append((name[:-len("running_var")] + "num_batches_tracked", ()))
    return layout
