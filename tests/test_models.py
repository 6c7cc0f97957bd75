"""The network: every config builds (or is refused clearly), its parameter names are the original
checkpoint's, and its outputs equal an independent PyTorch re-implementation of the original
forward (WXinlong/SOLO) with the same converted weights, on inputs other than the parity image."""
import glob
import os

import mindspore as ms
import numpy as np
import pytest
import torch

import weight_convert
from conftest import REPO, make_original_checkpoint, parity_file
from mmdet_ms.apis import init_detector
from mmdet_ms.config import Config
from mmdet_ms.models import build_detector
from mmdet_ms.registry import ConfigError
from mmdet_ms.utils.checkpoint import torch_name
from mmdet_ms.apis.convert import original_state_layout
from tools.original_forward import torch_original_forward

CONFIG_DIR = os.path.join(REPO, "configs", "solov2")
ALL_CONFIGS = sorted(os.path.basename(p) for p in glob.glob(os.path.join(CONFIG_DIR, "*.py")))
DCN_CONFIGS = [name for name in ALL_CONFIGS if "dcn" in name]
PLAIN_CONFIGS = [name for name in ALL_CONFIGS if "dcn" not in name]
LIGHT_R18 = os.path.join(CONFIG_DIR, "solov2_light_448_r18_fpn_8gpu_3x.py")
LIGHT_R50 = os.path.join(CONFIG_DIR, "solov2_light_448_r50_fpn_8gpu_3x.py")
R101 = os.path.join(CONFIG_DIR, "solov2_r101_fpn_8gpu_3x.py")
CLASSES_23 = {"model.bbox_head.num_classes": 23}


def build(config_path, cfg_options=None):
    cfg = Config.fromfile(config_path, cfg_options)
    return build_detector(cfg.model, cfg.get("train_cfg"), cfg.get("test_cfg"))


def read_key_list(path):
    """A ``name<TAB>shape<TAB>dtype`` key list → {name: shape}."""
    keys = {}
    with open(path) as f:
        for line in f:
            name, shape, _ = line.rstrip("\n").split("\t")
            keys[name] = () if shape == "-" else tuple(int(d) for d in shape.split("x"))
    return keys


def write_key_list(layout, path):
    """[(name, shape)] → a key list that ../shared/parity/make_checkpoint.py reads."""
    with open(path, "w") as f:
        for name, shape in layout:
            dtype = "int64" if name.endswith("num_batches_tracked") else "float32"
            f.write(f"{name}\t{'x'.join(str(d) for d in shape) or '-'}\t{dtype}\n")
    return str(path)


# ---------------------------------------------------------------- building from configs

def test_the_config_folder_has_the_model_zoo_configs():
    assert {"solov2_r101_fpn_8gpu_3x.py", "solov2_light_448_r18_fpn_8gpu_3x.py"} <= set(PLAIN_CONFIGS)
    assert len(DCN_CONFIGS) == 3


@pytest.mark.parametrize("name", PLAIN_CONFIGS)
def test_every_non_dcn_config_builds(name):
    cfg = Config.fromfile(os.path.join(CONFIG_DIR, name))
    model = build_detector(cfg.model, cfg.get("train_cfg"), cfg.get("test_cfg"))
    head = model.bbox_head
    assert head.solo_cate.out_channels == cfg.model.bbox_head.num_classes - 1
    assert head.solo_kernel.out_channels == model.mask_feat_head.out_channels
    assert len(head.kernel_convs) == len(head.cate_convs) == cfg.model.bbox_head.stacked_convs
    assert head.num_grids == tuple(cfg.model.bbox_head.num_grids)
    assert model.test_cfg["score_thr"] == cfg.test_cfg.score_thr


@pytest.mark.parametrize("name", DCN_CONFIGS)
def test_dcn_configs_build_with_the_original_key_layout(name):
    """Every tensor name and shape of the original checkpoint (parity key lists for two of them;
    R101-DCN: X101-DCN's head on the R101 body, hence equal outside the backbone)."""
    layout = dict(original_state_layout(build(os.path.join(CONFIG_DIR, name))))
    key_list = {"solov2_x101_dcn_fpn_8gpu_3x.py": "keys_solov2_x101_dcn.tsv",
                "solov2_r101_dcn_fpn_8gpu_3x.py": "keys_solov2_x101_dcn.tsv",
                "solov2_light_512_dcn_r50_fpn_8gpu_3x.py": "keys_solov2_light_512_dcn_r50.tsv"}
    expected = read_key_list(parity_file(key_list[name]))
    if name.startswith("solov2_r101"):
        expected = {key: shape for key, shape in expected.items()
                    if not key.startswith("backbone.")}
        layout = {key: shape for key, shape in layout.items() if not key.startswith("backbone.")}
    assert layout == expected


def test_num_classes_override_sizes_the_category_conv():
    model = build(LIGHT_R18, {"model.bbox_head.num_classes": 23})
    assert model.bbox_head.solo_cate.out_channels == 22
    assert model.bbox_head.solo_cate.weight.shape == (22, 256, 3, 3)
    assert model.bbox_head.solo_cate.bias.shape == (22,)


def test_base_channels_narrows_every_resnet_stage():
    from mmdet_ms.models.backbones.resnet import ResNet
    for depth, expansion in ((18, 1), (50, 4)):
        narrow = ResNet(depth, base_channels=16)
        assert narrow.out_channels == [16 * expansion, 32 * expansion, 64 * expansion,
                                       128 * expansion]
        feats = narrow(ms.Tensor(np.zeros((1, 3, 64, 96), np.float32)))
        assert [tuple(f.shape) for f in feats] == [
            (1, channels, 64 // stride, 96 // stride)
            for channels, stride in zip(narrow.out_channels, (4, 8, 16, 32))]
    assert ResNet(18).out_channels == [64, 128, 256, 512]  # the original width by default


def test_num_classes_must_count_the_background():
    with pytest.raises(ConfigError, match="num_classes=1"):
        build(LIGHT_R18, {"model.bbox_head.num_classes": 1})


def test_unknown_type_is_named():
    cfg = Config.fromfile(LIGHT_R18)
    cfg.model.neck["type"] = "FPNv3"
    with pytest.raises(ConfigError, match="unknown neck type 'FPNv3'"):
        build_detector(cfg.model)


def test_misspelt_key_is_named_with_a_suggestion():
    cfg = Config.fromfile(LIGHT_R18)
    cfg.model.bbox_head["stacked_conv"] = 2
    with pytest.raises(ConfigError) as caught:
        build_detector(cfg.model)
    assert "'stacked_conv'" in str(caught.value) and "'stacked_convs'" in str(caught.value)


def test_mask_feature_width_must_equal_the_kernel_width():
    with pytest.raises(ConfigError, match="ins_out_channels"):
        build(LIGHT_R18, {"model.mask_feat_head.num_classes": 64})


# ---------------------------------------------------------------- names of the original checkpoint

@pytest.fixture(scope="module")
def r101_network():
    return build(R101)


def test_r101_parameters_are_the_original_checkpoints_tensors(r101_network):
    original = {name: shape for name, shape in read_key_list(parity_file("keys_solov2_r101.tsv")).items()
                if not name.endswith("num_batches_tracked")}
    ported = {torch_name(p.name): tuple(p.shape) for p in r101_network.get_parameters()}
    assert len(ported) == len(list(r101_network.get_parameters()))  # torch_name is one to one
    assert sorted(set(ported) - set(original)) == []
    assert sorted(set(original) - set(ported)) == []
    assert {name: shape for name, shape in ported.items() if shape != original[name]} == {}


def test_original_state_layout_is_the_r101_key_list(r101_network):
    layout = original_state_layout(r101_network)
    assert len(layout) == len({name for name, _ in layout}) == 692
    assert dict(layout) == read_key_list(parity_file("keys_solov2_r101.tsv"))


def light_r50_keys_from_r101(r101_keys):
    """The original light R50 checkpoint's key list, derived from R101's by the configs'
    differences: 6 blocks in layer3, 2 stacked head convs of 256 channels (not 4 of 512), a
    mask feature (and kernel) width of 128 (not 256)."""
    keys = {}
    for name, shape in r101_keys.items():
        parts = name.split(".")
        if name.startswith("backbone.layer3.") and int(parts[2]) >= 6:
            continue
        if parts[0] == "bbox_head" and parts[1].endswith("_convs") and int(parts[2]) >= 2:
            continue
        if parts[0] == "bbox_head":
            shape = tuple(256 if d == 512 else d for d in shape)
        if name.startswith(("bbox_head.solo_kernel.", "mask_feat_head.conv_pred.")):
            shape = (128,) + shape[1:]
        keys[name] = shape
    return keys


def test_light_r50_layout_follows_the_original_naming_rules():
    expected = light_r50_keys_from_r101(read_key_list(parity_file("keys_solov2_r101.tsv")))
    assert dict(original_state_layout(build(LIGHT_R50))) == expected


# ---------------------------------------------------------------- port == original forward

def converted_model(config, cfg_options, seed, folder):
    """(MindSpore model, original state dict as torch tensors) for seed-random original weights."""
    layout = original_state_layout(build(config, cfg_options))
    pth = make_original_checkpoint(write_key_list(layout, folder / "keys.tsv"),
                                   folder / "original.pth", seed=seed)
    ckpt = str(folder / "converted.ckpt")
    options = [f"{key}={value}" for key, value in cfg_options.items()]
    assert weight_convert.main([pth, ckpt, "--config", config, "--cfg-options", *options]) == 0
    model = init_detector(config, ckpt, device_target="CPU", cfg_options=cfg_options,
                          mode="pynative")  # port_forward runs the GroupNorm kernels
    state = torch.load(pth, map_location="cpu", weights_only=True)["state_dict"]
    return model, state


def port_forward(model, img):
    cate_preds, kernel_preds, mask_feat = model.forward_features(ms.Tensor(img))
    scores, kernels = model.bbox_head.flatten_for_test(cate_preds, kernel_preds)
    return dict(logits=[t.asnumpy() for t in cate_preds], scores=scores.asnumpy(),
                kernels=kernels.asnumpy(), mask_feat=mask_feat.asnumpy())


def points_nms_near_ties(logits_per_level, margin):
    """(N, ΣS², C) bool, cells ordered as the flattened scores: where a logit within ``margin`` of
    its up, left or up-left neighbour's makes points NMS's keep/drop decision a coin toss between
    two float32 implementations (a 1e-6 logit difference flips a whole score)."""
    ties = []
    for logits in logits_per_level:  # (N, C, S, S)
        padded = np.pad(logits, ((0, 0), (0, 0), (1, 0), (1, 0)), constant_values=-np.inf)
        neighbours = np.maximum(np.maximum(padded[:, :, :-1, 1:], padded[:, :, 1:, :-1]),
                                padded[:, :, :-1, :-1])
        near = np.abs(logits - neighbours) <= margin
        ties.append(near.transpose(0, 2, 3, 1).reshape(len(logits), -1, logits.shape[1]))
    return np.concatenate(ties, axis=1)


def assert_same_outputs(port, original, atol=1e-4):
    """Port outputs == original outputs within ``atol``; category scores away from NMS ties."""
    for level, (ours, theirs) in enumerate(zip(port.get("logits", ()), original["logits"])):
        assert ours.shape == theirs.shape
        assert np.abs(ours - theirs).max() <= atol, f"cate logits of level {level}"
    for key in ("scores", "kernels", "mask_feat"):
        assert port[key].shape == original[key].shape, key
    ties = points_nms_near_ties(original["logits"], margin=2 * atol)
    assert ties.mean() < 1e-3
    assert np.abs(port["scores"] - original["scores"])[~ties].max() <= atol
    assert np.abs(port["kernels"] - original["kernels"]).max() <= atol
    assert np.abs(port["mask_feat"] - original["mask_feat"]).max() <= atol


# Portrait and landscape, padded sizes whose P5/P6 maps are odd (7x5 → 4x3, 5x9 → 3x5).
INPUT_SHAPES = [(1, 3, 224, 160), (1, 3, 160, 288)]


@pytest.fixture(scope="module")
def light_r18_23_classes(tmp_path_factory):
    return converted_model(LIGHT_R18, CLASSES_23, seed=7, folder=tmp_path_factory.mktemp("r18"))


def random_input(shape, seed):
    return np.random.default_rng(seed).normal(0.0, 1.0, shape).astype(np.float32)


def test_light_r18_equals_the_original_forward_on_portrait_and_landscape(light_r18_23_classes):
    model, state = light_r18_23_classes
    for seed, shape in enumerate(INPUT_SHAPES):
        img = random_input(shape, seed)
        port = port_forward(model, img)
        original = torch_original_forward(state, img, model.bbox_head.num_grids)
        assert port["scores"].shape == (1, sum(s * s for s in model.bbox_head.num_grids), 22)
        assert port["mask_feat"].shape == (1, 128, shape[2] // 4, shape[3] // 4)
        kept = original["scores"] > 0
        assert 100 < kept.sum() < kept.size  # points NMS kept some cells and zeroed others
        assert_same_outputs(port, original)


def test_construct_in_graph_mode_equals_the_original_forward(light_r18_23_classes):
    model, state = light_r18_23_classes
    img = random_input((2, 3, 160, 288), seed=11)
    original = torch_original_forward(state, img, model.bbox_head.num_grids)
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        scores, kernels, mask_feat = (out.asnumpy() for out in model(ms.Tensor(img)))
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)
    assert_same_outputs(dict(scores=scores, kernels=kernels, mask_feat=mask_feat), original)


@pytest.mark.slow  # 6-16 s depending on the load
def test_light_r50_equals_the_original_forward(tmp_path):
    model, state = converted_model(LIGHT_R50, CLASSES_23, seed=3, folder=tmp_path)
    img = random_input((1, 3, 192, 256), seed=5)
    assert_same_outputs(port_forward(model, img),
                        torch_original_forward(state, img, model.bbox_head.num_grids))
