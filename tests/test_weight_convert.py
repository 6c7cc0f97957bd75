"""weight_convert.py and checkpoint loading: the round trip from an original-layout ``.pth`` to a
MindSpore ``.ckpt``, config detection from the tensors' shapes, and clear refusals (one line per
problem, exit status 2, no output file, no traceback) for checkpoints that do not fit."""
import os

import numpy as np
import pytest
import torch

import weight_convert
from conftest import REPO, parity_file
from mmdet_ms.apis import init_detector
from mmdet_ms.config import Config
from mmdet_ms.models import build_detector
from mmdet_ms.utils.checkpoint import CheckpointError, load_checkpoint, torch_name
from mmdet_ms.apis.convert import original_state_layout
from mmdet_ms.model_zoo import guess_config

CONFIG_DIR = os.path.join(REPO, "configs", "solov2")
LIGHT_R18 = os.path.join(CONFIG_DIR, "solov2_light_448_r18_fpn_8gpu_3x.py")
CLASSES_23 = {"model.bbox_head.num_classes": 23}
CATE_WEIGHT = "bbox_head.solo_cate.weight"


def build(config_path, cfg_options=None):
    cfg = Config.fromfile(config_path, cfg_options)
    return build_detector(cfg.model, cfg.get("train_cfg"), cfg.get("test_cfg"))


def random_state(layout, seed=0):
    """An original-layout state dict of numpy arrays for ``[(name, shape)]``."""
    rng = np.random.default_rng(seed)
    state = {}
    for name, shape in layout:
        if name.endswith("num_batches_tracked"):
            state[name] = np.zeros(shape, np.int64)
        else:
            state[name] = rng.normal(0.0, 0.1, shape).astype(np.float32)
    return state


def save_pth(state, path, prefix="", bare=False, meta=None):
    """``torch.save`` in mmcv's layout ({'meta', 'state_dict'}) or as a bare state dict."""
    tensors = {prefix + name: torch.from_numpy(value) for name, value in state.items()}
    torch.save(tensors if bare else {"meta": meta or {}, "state_dict": tensors}, path)
    return str(path)


def shapes_only(layout):
    """A state dict whose arrays only have shapes (no memory): enough for guess_config."""
    return {name: np.broadcast_to(np.float32(0), shape) for name, shape in layout}


@pytest.fixture(scope="module")
def light_r18_23_state():
    """Weights of a light R18 SOLOv2 with 22 classes (num_classes=23), as the original saves it."""
    return random_state(original_state_layout(build(LIGHT_R18, CLASSES_23)))


@pytest.fixture(scope="module")
def light_r18_23_pth(light_r18_23_state, tmp_path_factory):
    classes = [f"class{i}" for i in range(22)]
    return save_pth(light_r18_23_state, tmp_path_factory.mktemp("pth") / "light_r18_23.pth",
                    meta={"CLASSES": classes})


@pytest.fixture(scope="module")
def light_r18_23_ckpt(light_r18_23_pth, tmp_path_factory):
    out = tmp_path_factory.mktemp("ckpt") / "light_r18_23.ckpt"
    assert weight_convert.main([light_r18_23_pth, str(out)]) == 0
    return str(out)


def assert_weights_equal(model, state):
    params = list(model.get_parameters())
    assert len(params) == len([n for n in state if not n.endswith("num_batches_tracked")])
    for param in params:
        np.testing.assert_array_equal(param.asnumpy(), state[torch_name(param.name)],
                                      err_msg=param.name)


# ---------------------------------------------------------------- round trip

def test_round_trip_detects_the_config_and_keeps_every_tensor(light_r18_23_pth, light_r18_23_state,
                                                             tmp_path, capsys):
    out = tmp_path / "converted.ckpt"
    assert weight_convert.main([light_r18_23_pth, str(out)]) == 0
    printed = capsys.readouterr().out
    assert "solov2_light_448_r18_fpn_8gpu_3x.py" in printed and "156 tensors" in printed
    model = init_detector(LIGHT_R18, str(out), device_target="CPU", cfg_options=CLASSES_23)
    assert_weights_equal(model, light_r18_23_state)
    assert model.CLASSES == tuple(f"class{i}" for i in range(22))  # from the .pth's meta


def test_norm_parameters_map_to_the_original_names(light_r18_23_ckpt, light_r18_23_state):
    model = init_detector(LIGHT_R18, light_r18_23_ckpt, device_target="CPU", cfg_options=CLASSES_23)
    params = {p.name: p.asnumpy() for p in model.get_parameters()}
    pairs = {"backbone.bn1.gamma": "backbone.bn1.weight",
             "backbone.bn1.beta": "backbone.bn1.bias",
             "backbone.bn1.moving_mean": "backbone.bn1.running_mean",
             "backbone.bn1.moving_variance": "backbone.bn1.running_var",
             "bbox_head.kernel_convs.0.gn.gamma": "bbox_head.kernel_convs.0.gn.weight",
             "mask_feat_head.conv_pred.0.gn.beta": "mask_feat_head.conv_pred.0.gn.bias"}
    for ms_name, original_name in pairs.items():
        np.testing.assert_array_equal(params[ms_name], light_r18_23_state[original_name])


@pytest.mark.parametrize("prefix, bare", [("module.", False), ("", True), ("module.", True)])
def test_data_parallel_prefix_and_bare_state_dict_are_accepted(prefix, bare, light_r18_23_state,
                                                               tmp_path):
    pth = save_pth(light_r18_23_state, tmp_path / "variant.pth", prefix=prefix, bare=bare)
    out = tmp_path / "variant.ckpt"
    assert weight_convert.main([pth, str(out), "--config", LIGHT_R18,
                                "--cfg-options", "model.bbox_head.num_classes=23"]) == 0
    model = init_detector(LIGHT_R18, str(out), device_target="CPU", cfg_options=CLASSES_23)
    assert_weights_equal(model, light_r18_23_state)


# ---------------------------------------------------------------- config detection

def test_guess_config_light_r18_with_23_classes(light_r18_23_state):
    path, num_classes = guess_config(light_r18_23_state)
    assert os.path.basename(path) == "solov2_light_448_r18_fpn_8gpu_3x.py"
    assert num_classes == 23


def test_guess_config_r50_3x():
    path, num_classes = guess_config(shapes_only(original_state_layout(
        build(os.path.join(CONFIG_DIR, "solov2_r50_fpn_8gpu_3x.py")))))
    assert os.path.basename(path) == "solov2_r50_fpn_8gpu_3x.py"
    assert num_classes == 81


def test_guess_config_r101_from_the_original_key_list():
    layout = []
    with open(parity_file("keys_solov2_r101.tsv")) as f:
        for line in f:
            name, shape, _ = line.rstrip("\n").split("\t")
            layout.append((name, () if shape == "-" else tuple(int(d) for d in shape.split("x"))))
    path, num_classes = guess_config(shapes_only(layout))
    assert os.path.basename(path) == "solov2_r101_fpn_8gpu_3x.py"
    assert num_classes == 81


def test_guess_config_refuses_what_is_not_a_solov2_checkpoint():
    with pytest.raises(CheckpointError, match="pass --config"):
        guess_config({"conv1.weight": np.zeros((64, 3, 7, 7), np.float32)})


# ---------------------------------------------------------------- refusals

def convert_and_fail(argv, out, capsys):
    """Run the converter expecting a refusal; returns the stderr lines."""
    assert weight_convert.main(argv) == 2
    assert not os.path.exists(out)
    assert not [name for name in os.listdir(os.path.dirname(out)) if name.endswith(".ckpt")]
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    lines = captured.err.strip().splitlines()
    assert lines[0].startswith("weight_convert.py: error: ")
    return lines


def test_missing_tensor_is_named(light_r18_23_state, tmp_path, capsys):
    state = dict(light_r18_23_state)
    del state["neck.fpn_convs.2.conv.weight"]
    pth = save_pth(state, tmp_path / "missing.pth")
    lines = convert_and_fail([pth, str(tmp_path / "out.ckpt")], str(tmp_path / "out.ckpt"), capsys)
    assert lines[1:] == ["  missing: neck.fpn_convs.2.conv.weight"]
    assert "missing.pth does not fit the network" in lines[0]


def test_unexpected_tensor_is_named(light_r18_23_state, tmp_path, capsys):
    state = dict(light_r18_23_state, **{"bbox_head.extra_conv.weight": np.zeros((4, 4), np.float32)})
    pth = save_pth(state, tmp_path / "extra.pth")
    lines = convert_and_fail([pth, str(tmp_path / "out.ckpt"), "--config", LIGHT_R18,
                              "--cfg-options", "model.bbox_head.num_classes=23"],
                             str(tmp_path / "out.ckpt"), capsys)
    assert lines[1:] == ["  unexpected: bbox_head.extra_conv.weight"]


def test_wrong_shape_is_named_with_both_shapes(light_r18_23_state, tmp_path, capsys):
    state = dict(light_r18_23_state)
    state["mask_feat_head.convs_all_levels.3.conv0.conv.weight"] = np.zeros((128, 256, 3, 3), np.float32)
    pth = save_pth(state, tmp_path / "misshaped.pth")
    lines = convert_and_fail([pth, str(tmp_path / "out.ckpt")], str(tmp_path / "out.ckpt"), capsys)
    assert lines[1:] == ["  wrong shape: mask_feat_head.convs_all_levels.3.conv0.conv.weight "
                         "(128, 256, 3, 3) in the file, (128, 258, 3, 3) in the network"]


def test_wrong_class_count_names_the_category_conv_and_the_setting(tmp_path, capsys):
    state = random_state(original_state_layout(build(LIGHT_R18)))  # 81 classes, as COCO
    pth = save_pth(state, tmp_path / "coco.pth")
    out = str(tmp_path / "out.ckpt")
    lines = convert_and_fail([pth, out, "--config", LIGHT_R18,
                              "--cfg-options", "model.bbox_head.num_classes=23"], out, capsys)
    assert lines[1:] == [
        "  wrong shape: bbox_head.solo_cate.weight (80, 256, 3, 3) in the file, "
        "(22, 256, 3, 3) in the network",
        "  wrong shape: bbox_head.solo_cate.bias (80,) in the file, (22,) in the network",
        "  hint: the checkpoint has 80 classes (num_classes=81) but the config has "
        "num_classes=23: set model.bbox_head.num_classes"]


def test_no_class_count_hint_when_only_the_head_width_differs(light_r18_23_state, tmp_path, capsys):
    state = dict(light_r18_23_state, **{CATE_WEIGHT: np.zeros((22, 512, 3, 3), np.float32)})
    pth = save_pth(state, tmp_path / "wide.pth")
    out = str(tmp_path / "out.ckpt")
    lines = convert_and_fail([pth, out, "--config", LIGHT_R18,
                              "--cfg-options", "model.bbox_head.num_classes=23"], out, capsys)
    assert lines[1:] == [f"  wrong shape: {CATE_WEIGHT} (22, 512, 3, 3) in the file, "
                         "(22, 256, 3, 3) in the network"]


def test_many_problems_are_listed_up_to_a_limit(light_r18_23_state, tmp_path, capsys):
    state = {name: value for name, value in light_r18_23_state.items()
             if not name.startswith("backbone.layer4.")}
    pth = save_pth(state, tmp_path / "no_layer4.pth")
    out = str(tmp_path / "out.ckpt")
    lines = convert_and_fail([pth, out, "--config", LIGHT_R18,
                              "--cfg-options", "model.bbox_head.num_classes=23"], out, capsys)
    missing = [line for line in lines if line.startswith("  missing: backbone.layer4.")]
    assert len(missing) == 10
    assert lines[-1].startswith("  ... and ") and lines[-1].endswith(" more missing tensors")


def test_missing_input_file(tmp_path, capsys):
    out = str(tmp_path / "out.ckpt")
    lines = convert_and_fail([str(tmp_path / "nowhere.pth"), out], out, capsys)
    assert lines == [f"weight_convert.py: error: {tmp_path / 'nowhere.pth'}: no such checkpoint file"]


@pytest.mark.parametrize("content", [np.random.default_rng(0).bytes(4096), b"",
                                     b"just some text\n"])
def test_a_file_that_is_not_a_checkpoint(content, tmp_path, capsys):
    src = tmp_path / "noise.pth"
    src.write_bytes(content)
    out = str(tmp_path / "out.ckpt")
    lines = convert_and_fail([str(src), out], out, capsys)
    assert len(lines) == 1
    assert f"{src}: not a readable PyTorch checkpoint" in lines[0]


def test_a_pickle_that_holds_no_tensors(tmp_path, capsys):
    src = tmp_path / "numbers.pth"
    torch.save({"state_dict": {"epoch": 3}}, src)
    out = str(tmp_path / "out.ckpt")
    lines = convert_and_fail([str(src), out], out, capsys)
    assert lines == [f"weight_convert.py: error: {src}: holds no tensors"]


# ---------------------------------------------------------------- loading a .ckpt strictly

def test_loading_another_class_count_names_the_category_conv(light_r18_23_ckpt):
    network = build(LIGHT_R18)  # 81 classes
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(network, light_r18_23_ckpt)
    lines = str(caught.value).splitlines()
    assert lines[0] == f"{light_r18_23_ckpt} does not fit the network:"
    assert (f"  wrong shape: {CATE_WEIGHT} (22, 256, 3, 3) in the file, (80, 256, 3, 3) "
            "in the network") in lines
    assert lines[-1] == ("  hint: the checkpoint has 22 classes (num_classes=23) but the config has "
                         "num_classes=81: set model.bbox_head.num_classes")


def test_non_strict_loading_skips_only_the_category_conv(light_r18_23_ckpt, light_r18_23_state):
    network = build(LIGHT_R18)
    meta = load_checkpoint(network, light_r18_23_ckpt, strict=False)
    assert sorted(meta["skipped"]) == ["bbox_head.solo_cate.bias", CATE_WEIGHT]
    params = {p.name: p.asnumpy() for p in network.get_parameters()}
    np.testing.assert_array_equal(params["bbox_head.solo_kernel.weight"],
                                  light_r18_23_state["bbox_head.solo_kernel.weight"])


def test_a_truncated_ckpt_is_refused_naming_the_file(light_r18_23_ckpt, tmp_path):
    with open(light_r18_23_ckpt, "rb") as f:
        content = f.read()
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(content[:len(content) // 2])
    with pytest.raises(CheckpointError, match=str(truncated)):
        load_checkpoint(build(LIGHT_R18, CLASSES_23), str(truncated))


def test_a_missing_ckpt_is_refused_naming_the_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        init_detector(LIGHT_R18, str(tmp_path / "absent.ckpt"), device_target="CPU")
