"""The model zoo: which config an original checkpoint belongs to.

Configs live in ``configs/`` beside the package; the lookup reads a state dict's key names and
shapes only, so it needs neither MindSpore nor a network.
"""
import os

from .utils.checkpoint import CheckpointError

CONFIG_ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "configs"))
CONFIG_DIR = os.path.join(CONFIG_ROOT, "solov2")
_BLOCKS_TO_DEPTH = {(2, False): 18, (6, False): 34, (6, True): 50, (23, True): 101, (36, True): 152}


def describe_checkpoint(state):
    """What an original state dict holds: ResNet depth, class count, head width."""
    layer3_blocks = {name.split(".")[2] for name in state if name.startswith("backbone.layer3.")}
    bottleneck = any(".conv3." in name for name in state if name.startswith("backbone.layer1."))
    depth = _BLOCKS_TO_DEPTH.get((len(layer3_blocks), bottleneck))
    cate = state.get("bbox_head.solo_cate.weight")
    if depth is None or cate is None:
        raise CheckpointError("not a SOLOv2 ResNet checkpoint: cannot find its backbone "
                              "depth and bbox_head.solo_cate; pass --config")
    return dict(depth=depth, num_classes=int(cate.shape[0]) + 1, seg_feat_channels=int(cate.shape[1]))


def guess_config(state):
    """The model-zoo config matching a state dict, and the num_classes override it needs."""
    info = describe_checkpoint(state)
    light = info["seg_feat_channels"] == 256
    name = (f"solov2_light_448_r{info['depth']}_fpn_8gpu_3x.py" if light
            else f"solov2_r{info['depth']}_fpn_8gpu_3x.py")
    path = os.path.join(CONFIG_DIR, name)
    if not os.path.isfile(path):
        raise CheckpointError(f"no model-zoo config for a ResNet-{info['depth']} "
                              f"{'light ' if light else ''}SOLOv2; pass --config")
    return path, info["num_classes"]
