"""The model zoo: the original's trained models by name (``TABLE``), and which config an original
checkpoint belongs to.

Configs live in ``configs/`` beside the package; the lookup reads a state dict's key names and
shapes only, so it needs neither MindSpore nor a network.
"""
import difflib
import os
from collections import namedtuple

from .utils.checkpoint import CheckpointError

CONFIG_ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "configs"))
_BLOCKS_TO_DEPTH = {(2, False): 18, (6, False): 34, (6, True): 50, (23, True): 101, (36, True): 152}


def _offset_type(state, prefix):
    """'DCN' / 'DCNv2' when ``prefix`` is a deformable conv (2 or 3 offset channels per kernel
    point: its conv_offset's outputs), None when it is a plain one."""
    offset = state.get(f"{prefix}.conv_offset.weight")
    if offset is None:
        return None
    per_point = offset.shape[0] / (offset.shape[2] * offset.shape[3])
    kinds = {2: "DCN", 3: "DCNv2"}
    if per_point not in kinds:
        raise CheckpointError(f"{prefix}.conv_offset.weight {tuple(offset.shape)}: neither DCN "
                              "(2 offsets per kernel point) nor DCNv2 (3); pass --config")
    return kinds[per_point]


def _tower_dcn(state):
    """The head towers' deformable convs: None, ('DCN'|'DCNv2', 'all'), (…, 'last') or 'other'."""
    layers = sorted({int(name.split(".")[2]) for name in state
                     if name.startswith("bbox_head.kernel_convs.")})
    kinds = [_offset_type(state, f"bbox_head.{tower}.{i}.conv") for i in layers
             for tower in ("kernel_convs", "cate_convs")]
    if not any(kinds):
        return None
    if len(set(kinds)) == 1:
        return kinds[0], "all"
    if set(kinds[:-2]) == {None} and kinds[-1] == kinds[-2]:
        return kinds[-1], "last"
    return "other"


def _head_family(state):
    """The SOLO family of a state dict, told by its head's key names (None: not a SOLO head)."""
    if "bbox_head.solo_kernel.weight" in state:
        return "solov2"
    if "bbox_head.solo_ins_list.0.weight" in state:
        return "solo"
    if "bbox_head.ins_convs_x.0.conv.weight" in state:
        return "decoupled_solo"
    if "bbox_head.dsolo_ins_list_x.0.weight" in state:
        dcn = any(name.startswith("bbox_head.") and ".conv_offset." in name for name in state)
        return "decoupled_solo_light_dcn" if dcn else "decoupled_solo_light"
    return None


def describe_checkpoint(state):
    """What an original state dict holds: head family, ResNet depth, class count, head width,
    ResNeXt grouping and deformable convs (``_backbone_and_dcn``)."""
    layer3_blocks = {name.split(".")[2] for name in state if name.startswith("backbone.layer3.")}
    bottleneck = any(".conv3." in name for name in state if name.startswith("backbone.layer1."))
    depth = _BLOCKS_TO_DEPTH.get((len(layer3_blocks), bottleneck))
    cate = state.get("bbox_head.solo_cate.weight", state.get("bbox_head.dsolo_cate.weight"))
    family = _head_family(state)
    if depth is None or cate is None or family is None:
        raise CheckpointError("not a SOLO/SOLOv2 ResNet checkpoint: cannot find its backbone "
                              "depth and a SOLO head (bbox_head.solo_cate or "
                              "bbox_head.dsolo_cate); pass --config")
    return dict(family=family, depth=depth, num_classes=int(cate.shape[0]) + 1,
                seg_feat_channels=int(cate.shape[1]), **_backbone_and_dcn(state))


def _backbone_and_dcn(state):
    """ResNeXt grouping (groups 1: ResNet) and where the deformable convs are."""
    # ResNeXt's grouped 3x3 convs: layer1's is (width, width / groups, 3, 3), width = groups *
    # base_width (layer1 has 64 planes).
    conv2 = state.get("backbone.layer1.0.conv2.weight")
    groups = int(conv2.shape[0] // conv2.shape[1]) if conv2 is not None else 1
    stages = [_offset_type(state, f"backbone.layer{i}.0.conv2") for i in range(1, 5)]
    kinds = set(stages) - {None}
    backbone_dcn = ((kinds.pop() if len(kinds) == 1 else "mixed",
                     tuple(kind is not None for kind in stages)) if kinds else None)
    return dict(groups=groups, base_width=int(conv2.shape[0] // groups) if groups > 1 else None,
                backbone_dcn=backbone_dcn, tower_dcn=_tower_dcn(state),
                mask_feat_dcn=_offset_type(state, "mask_feat_head.conv_pred.0.conv"))


_DCN_STAGES = (False, True, True, True)
# The SOLOv2 model zoo's DCN and ResNeXt configs by (depth, groups, base_width, light head,
# backbone DCN, tower DCN, mask-feature-head DCN).
_SOLOV2_DCN_CONFIGS = {
    (101, 1, None, False, ("DCNv2", _DCN_STAGES), ("DCNv2", "all"), "DCNv2"):
        "solov2/solov2_r101_dcn_fpn_8gpu_3x.py",
    (101, 64, 4, False, ("DCNv2", _DCN_STAGES), ("DCNv2", "all"), "DCNv2"):
        "solov2/solov2_x101_dcn_fpn_8gpu_3x.py",
    (50, 1, None, True, ("DCN", _DCN_STAGES), ("DCN", "last"), None):
        "solov2/solov2_light_512_dcn_r50_fpn_8gpu_3x.py",
}


def _solov2_config(info):
    """(config name relative to configs/ or None, what the checkpoint is, for messages)."""
    depth, light = info["depth"], info["seg_feat_channels"] == 256
    dcn = {key: info[key] for key in ("backbone_dcn", "tower_dcn", "mask_feat_dcn") if info[key]}
    backbone = (f"ResNeXt-{depth} ({info['groups']}x{info['base_width']}d)"
                if info["groups"] > 1 else f"ResNet-{depth}")
    what = (f"{backbone} {'light ' if light else ''}SOLOv2"
            + (f" with deformable convs {dcn}" if dcn else ""))
    if info["groups"] == 1 and not dcn:
        return (f"solov2/solov2_light_448_r{depth}_fpn_8gpu_3x.py" if light
                else f"solov2/solov2_r{depth}_fpn_8gpu_3x.py"), what
    return _SOLOV2_DCN_CONFIGS.get((depth, info["groups"], info["base_width"], light,
                                    info["backbone_dcn"], info["tower_dcn"],
                                    info["mask_feat_dcn"])), what


def guess_config(state):
    """The model-zoo config matching a state dict, and the num_classes override it needs."""
    info = describe_checkpoint(state)
    family, depth = info["family"], info["depth"]
    if family == "solov2":
        name, what = _solov2_config(info)
    else:
        name = f"solo/{family}_r{depth}_fpn_8gpu_3x.py"
        what = f"ResNet-{depth} {family.replace('_', ' ')}"
    path = os.path.join(CONFIG_ROOT, name) if name else None
    if path is None or not os.path.isfile(path):
        raise CheckpointError(f"no model-zoo config for a {what}; pass --config")
    return path, info["num_classes"]


class ZooModel(namedtuple("ZooModel", "name config url ap v100_ms")):
    """One model of the original README's table: its config (relative to ``configs/``), the
    original download link, the mask AP on COCO minival and the testing time per image on a V100
    that the original README reports."""

    @property
    def config_path(self):
        return os.path.join(CONFIG_ROOT, self.config)


_HF = "https://huggingface.co/xinlongwang/SOLO/resolve/main/{}.pth?download=true"

# The original README's two tables (github.com/WXinlong/SOLO), in its order; the file names of
# its links are upper case for the Decoupled and Light models.
TABLE = {model.name: model for model in (
    ZooModel("SOLO_R50_1x", "solo/solo_r50_fpn_8gpu_1x.py", _HF.format("SOLO_R50_1x"), 32.9, 77),
    ZooModel("SOLO_R50_3x", "solo/solo_r50_fpn_8gpu_3x.py", _HF.format("SOLO_R50_3x"), 35.8, 77),
    ZooModel("SOLO_R101_3x", "solo/solo_r101_fpn_8gpu_3x.py", _HF.format("SOLO_R101_3x"),
             37.1, 86),
    ZooModel("Decoupled_SOLO_R50_1x", "solo/decoupled_solo_r50_fpn_8gpu_1x.py",
             _HF.format("DECOUPLED_SOLO_R50_1x"), 33.9, 85),
    ZooModel("Decoupled_SOLO_R50_3x", "solo/decoupled_solo_r50_fpn_8gpu_3x.py",
             _HF.format("DECOUPLED_SOLO_R50_3x"), 36.4, 85),
    ZooModel("Decoupled_SOLO_R101_3x", "solo/decoupled_solo_r101_fpn_8gpu_3x.py",
             _HF.format("DECOUPLED_SOLO_R101_3x"), 37.9, 92),
    ZooModel("SOLOv2_R50_1x", "solov2/solov2_r50_fpn_8gpu_1x.py", _HF.format("SOLOv2_R50_1x"),
             34.8, 54),
    ZooModel("SOLOv2_R50_3x", "solov2/solov2_r50_fpn_8gpu_3x.py", _HF.format("SOLOv2_R50_3x"),
             37.5, 54),
    ZooModel("SOLOv2_R101_3x", "solov2/solov2_r101_fpn_8gpu_3x.py",
             _HF.format("SOLOv2_R101_3x"), 39.1, 66),
    ZooModel("SOLOv2_R101_DCN_3x", "solov2/solov2_r101_dcn_fpn_8gpu_3x.py",
             _HF.format("SOLOv2_R101_DCN_3x"), 41.4, 97),
    ZooModel("SOLOv2_X101_DCN_3x", "solov2/solov2_x101_dcn_fpn_8gpu_3x.py",
             _HF.format("SOLOv2_X101_DCN_3x"), 42.4, 169),
    ZooModel("Decoupled_SOLO_Light_R50_3x", "solo/decoupled_solo_light_r50_fpn_8gpu_3x.py",
             _HF.format("DECOUPLED_SOLO_LIGHT_R50_3x"), 33.0, 29),
    ZooModel("Decoupled_SOLO_Light_DCN_R50_3x",
             "solo/decoupled_solo_light_dcn_r50_fpn_8gpu_3x.py",
             _HF.format("DECOUPLED_SOLO_LIGHT_DCN_R50_3x"), 35.0, 36),
    ZooModel("SOLOv2_Light_448_R18_3x", "solov2/solov2_light_448_r18_fpn_8gpu_3x.py",
             _HF.format("SOLOv2_LIGHT_448_R18_3x"), 29.6, 19),
    ZooModel("SOLOv2_Light_448_R34_3x", "solov2/solov2_light_448_r34_fpn_8gpu_3x.py",
             _HF.format("SOLOv2_LIGHT_448_R34_3x"), 32.0, 20),
    ZooModel("SOLOv2_Light_448_R50_3x", "solov2/solov2_light_448_r50_fpn_8gpu_3x.py",
             _HF.format("SOLOv2_LIGHT_448_R50_3x"), 33.7, 24),
    ZooModel("SOLOv2_Light_512_DCN_R50_3x", "solov2/solov2_light_512_dcn_r50_fpn_8gpu_3x.py",
             _HF.format("SOLOv2_LIGHT_512_DCN_R50_3x"), 36.4, 34),
)}


def zoo_model(name):
    """The TABLE entry for ``name`` (case-insensitive); else a CheckpointError naming close ones."""
    by_lower = {key.lower(): model for key, model in TABLE.items()}
    model = by_lower.get(name.lower())
    if model is not None:
        return model
    close = difflib.get_close_matches(name.lower(), by_lower, n=3, cutoff=0.6)
    hint = (f"did you mean {', '.join(by_lower[key].name for key in close)}?" if close
            else f"the names are {', '.join(TABLE)}")
    raise CheckpointError(f"'{name}' is not a checkpoint file, an http(s) URL or a model-zoo "
                          f"name; {hint}")


def zoo_model_of_url(url):
    """The TABLE entry whose download link is ``url`` (query ignored), else None."""
    path = url.split("?", 1)[0]
    return next((model for model in TABLE.values() if model.url.split("?", 1)[0] == path), None)


def zoo_config(model):
    """The config file of a TABLE entry, or a CheckpointError when this port lacks it."""
    if not os.path.isfile(model.config_path):
        raise CheckpointError(f"model-zoo name {model.name}: its config configs/{model.config} "
                              "is not in this port yet; pass a config of your own")
    return model.config_path
