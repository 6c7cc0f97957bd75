"""Deformable convolutions (DCN v1 / v2) against the original CUDA kernel's arithmetic, and the
models that use them (conversion, config recognition, a training step, MindIR export).

``reference_deform_conv`` is a plain-torch transcription of mmdet 1.0's
``deform_conv_cuda_kernel.cu`` (im2col with bilinear sampling, then a matmul), itself checked
against a scalar loop written line by line from the kernel; the MindSpore layers are then checked
against it, forward and gradients (input, weight, offsets, mask), with offsets of several pixels
(many sampling points outside the map), groups, deformable groups, stride and dilation.
"""
import itertools
import math
import os

import mindspore as ms
import mindspore.ops as ops
import numpy as np
import pytest
import torch

import weight_convert
from conftest import parity_file
from mmdet_ms.apis import init_detector, init_mindir_detector
from mmdet_ms.apis.convert import original_state_layout
from mmdet_ms.apis.inference import preprocess, run_network
from mmdet_ms.apis.mindir import export_mindir
from mmdet_ms.config import Config
from mmdet_ms.model_zoo import guess_config
from mmdet_ms.models import build_detector
from mmdet_ms.models.layers.conv_module import ConvModule, build_conv_layer
from mmdet_ms.models.layers.deform_conv import (DeformConvPack, ModulatedDeformConvPack,
                                                deform_conv2d)
from mmdet_ms.registry import ConfigError
from mmdet_ms.utils.checkpoint import CheckpointError, load_checkpoint
from test_models import read_key_list
from test_training import QUICKSTART, build_parts, data_dir, tiny_options  # noqa: F401 (fixture)
from test_weight_convert import assert_weights_equal, random_state, save_pth

ms.set_device("CPU")
ms.set_context(mode=ms.PYNATIVE_MODE)


def _bilinear(plane, h, w):
    """``deformable_im2col_bilinear``: the four neighbours, each zero when outside the map."""
    height, width = plane.shape
    h_low, w_low = math.floor(h), math.floor(w)
    lh, lw = h - h_low, w - w_low
    value = 0.0
    for y, x, weight in ((h_low, w_low, (1 - lh) * (1 - lw)), (h_low, w_low + 1, (1 - lh) * lw),
                         (h_low + 1, w_low, lh * (1 - lw)), (h_low + 1, w_low + 1, lh * lw)):
        if 0 <= y <= height - 1 and 0 <= x <= width - 1:
            value += weight * plane[y, x]
    return value


def scalar_deform_conv(x, offset, mask, weight, stride, padding, dilation, groups, dg):
    """The CUDA kernel as loops, float64: offset (N, dg*2K, Ho, Wo) read at ``2k`` (dy) and
    ``2k+1`` (dx) within its group's block, the mask at ``k``."""
    n, channels, height, width = x.shape
    c_out, c_per_group, kh, kw = weight.shape
    ho, wo = offset.shape[2:]
    out = np.zeros((n, c_out, ho, wo))
    for b, o, oy, ox in itertools.product(range(n), range(c_out), range(ho), range(wo)):
        group = o // (c_out // groups)
        total = 0.0
        for ci in range(c_per_group):
            c = group * c_per_group + ci
            g = c // (channels // dg)
            for i, j in itertools.product(range(kh), range(kw)):
                k = i * kw + j
                block = g * 2 * kh * kw  # this deformable group's offsets
                h_im = oy * stride - padding + i * dilation + offset[b, block + 2 * k, oy, ox]
                w_im = ox * stride - padding + j * dilation + offset[b, block + 2 * k + 1, oy, ox]
                value = 0.0
                if -1 < h_im < height and -1 < w_im < width:
                    value = _bilinear(x[b, c], h_im, w_im)
                total += weight[o, ci, i, j] * value * mask[b, g * kh * kw + k, oy, ox]
        out[b, o, oy, ox] = total
    return out


def reference_deform_conv(x, offset, mask, weight, stride=1, padding=0, dilation=1, groups=1,
                          dg=1):
    """The same arithmetic in plain torch (differentiable): x (N, C, H, W), offset
    (N, dg*K*2, Ho, Wo) with (dy, dx) per point, mask (N, dg*K, Ho, Wo) → (N, C_out, Ho, Wo)."""
    n, channels, height, width = x.shape
    c_out, c_per_group, kh, kw = weight.shape
    ho, wo = offset.shape[2:]
    points = kh * kw
    pairs = offset.reshape(n, dg, points, 2, ho, wo)
    ki = torch.arange(kh, dtype=x.dtype).repeat_interleave(kw) * dilation  # (K,)
    kj = torch.arange(kw, dtype=x.dtype).repeat(kh) * dilation
    rows = torch.arange(ho, dtype=x.dtype) * stride - padding
    cols = torch.arange(wo, dtype=x.dtype) * stride - padding
    h_im = rows[None, :, None] + ki[:, None, None] + pairs[:, :, :, 0]  # (N, dg, K, Ho, Wo)
    w_im = cols[None, None, :] + kj[:, None, None] + pairs[:, :, :, 1]
    inside = (h_im > -1) & (w_im > -1) & (h_im < height) & (w_im < width)
    h_low, w_low = torch.floor(h_im), torch.floor(w_im)
    lh, lw = h_im - h_low, w_im - w_low
    planes = x.reshape(n, dg, channels // dg, height * width)
    sampled = 0
    for dy, dx, corner_weight in ((0, 0, (1 - lh) * (1 - lw)), (0, 1, (1 - lh) * lw),
                                  (1, 0, lh * (1 - lw)), (1, 1, lh * lw)):
        y, xx = h_low + dy, w_low + dx
        valid = inside & (y >= 0) & (y <= height - 1) & (xx >= 0) & (xx <= width - 1)
        index = (y.clamp(0, height - 1) * width + xx.clamp(0, width - 1)).long()
        index = index.reshape(n, dg, 1, -1).expand(-1, -1, channels // dg, -1)
        values = torch.gather(planes, 3, index).reshape(n, dg, channels // dg, points, ho, wo)
        sampled = sampled + values * (corner_weight * valid).unsqueeze(2)
    sampled = sampled * mask.reshape(n, dg, 1, points, ho, wo)  # (N, dg, C/dg, K, Ho, Wo)
    columns = sampled.reshape(n, groups, c_per_group * points, ho * wo)
    kernels = weight.reshape(groups, c_out // groups, c_per_group * points)
    return torch.einsum("gok,ngkp->ngop", kernels, columns).reshape(n, c_out, ho, wo)


# (C_in, C_out, kernel, stride, padding, dilation, groups, deformable_groups)
CASES = [
    (4, 6, 3, 1, 1, 1, 1, 1),
    (8, 4, 3, 2, 1, 1, 2, 2),
    (4, 4, 3, 1, 2, 2, 1, 4),
    (6, 6, 1, 1, 0, 1, 3, 1),  # the mask-feature head's final 1x1 DCNv2
]
MAX_SHIFT = 3.5  # offsets uniform in ±3.5 px on a 7x9 map: many points fall outside


def random_case(case, seed, batch=2, height=7, width=9):
    c_in, c_out, kernel, stride, padding, dilation, groups, dg = case
    rng = np.random.default_rng(seed)
    ho = (height + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    wo = (width + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    points = kernel * kernel
    return dict(
        x=rng.standard_normal((batch, c_in, height, width)),
        offset=rng.uniform(-MAX_SHIFT, MAX_SHIFT, (batch, dg * 2 * points, ho, wo)),
        mask=rng.uniform(0, 1, (batch, dg * points, ho, wo)),
        weight=rng.standard_normal((c_out, c_in // groups, kernel, kernel)),
        args=dict(stride=stride, padding=padding, dilation=dilation, groups=groups, dg=dg))


def test_case_offsets_reach_outside_the_map():
    data = random_case(CASES[0], seed=0)
    rows = np.arange(7)[None, :, None] - 1 + data["offset"][:, 0::2].reshape(2, 9, 7, 9)[:, 0]
    assert (rows <= -1).any() and (rows >= 7).any()


@pytest.mark.parametrize("case", CASES[:3])
def test_reference_equals_the_scalar_kernel(case):
    data = random_case(case, seed=1, batch=1, height=5, width=6)
    args = data["args"]
    expected = scalar_deform_conv(data["x"], data["offset"], data["mask"], data["weight"],
                                  args["stride"], args["padding"], args["dilation"],
                                  args["groups"], args["dg"])
    got = reference_deform_conv(*(torch.tensor(data[k]) for k in ("x", "offset", "mask", "weight")),
                                **args).numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_reference_gradients_are_its_derivatives():
    """The kernel's backward is the derivative of its forward (its coordinate weights are the
    bilinear weights' derivatives): float64 finite differences on the reference."""
    data = random_case(CASES[1], seed=2, batch=1, height=5, width=6)
    tensors = [torch.tensor(data[k], requires_grad=True) for k in ("x", "offset", "mask", "weight")]
    assert torch.autograd.gradcheck(
        lambda *t: reference_deform_conv(*t, **data["args"]), tensors, eps=1e-6, atol=1e-6,
        fast_mode=True)


def _ms(array):
    return ms.Tensor(np.asarray(array, np.float32))


def _ms_args(args):
    return dict(stride=(args["stride"],) * 2, padding=(args["padding"],) * 2,
                dilation=(args["dilation"],) * 2, groups=args["groups"],
                deformable_groups=args["dg"])


@pytest.mark.parametrize("case", CASES)
def test_forward_and_gradients_match_the_reference(case):
    data = random_case(case, seed=3)
    names = ("x", "offset", "mask", "weight")
    torch_inputs = [torch.tensor(data[k], dtype=torch.float32, requires_grad=True) for k in names]
    expected = reference_deform_conv(*torch_inputs, **data["args"])
    upstream = np.random.default_rng(4).standard_normal(expected.shape)
    (expected * torch.tensor(upstream, dtype=torch.float32)).sum().backward()

    def loss(x, offset, mask, weight):
        out = deform_conv2d(x, offset, mask, weight, **_ms_args(data["args"]))
        return (out * _ms(upstream)).sum(), out

    grad_fn = ms.value_and_grad(loss, grad_position=(0, 1, 2, 3), has_aux=True)
    (_, out), grads = grad_fn(*(_ms(data[k]) for k in names))
    np.testing.assert_allclose(out.asnumpy(), expected.detach().numpy(), rtol=0, atol=1e-4)
    for name, grad, tensor in zip(names, grads, torch_inputs):
        np.testing.assert_allclose(grad.asnumpy(), tensor.grad.numpy(), rtol=1e-4, atol=1e-4,
                                   err_msg=f"gradient w.r.t. {name}")


def _set(param, array):
    param.set_data(_ms(array))


@pytest.mark.parametrize("modulated", [False, True])
def test_layers_split_conv_offset_as_the_original(modulated):
    """conv_offset's output is the original's: DCN (dy, dx) pairs; DCNv2 chunks o1, o2, m with
    offsets cat(o1, o2) and mask sigmoid(m). Gradients reach conv_offset's weight and bias."""
    rng = np.random.default_rng(5)
    c_in, c_out, dg = 4, 6, 2
    layer_cls = ModulatedDeformConvPack if modulated else DeformConvPack
    layer = layer_cls(c_in, c_out, 3, stride=1, padding=1, deformable_groups=dg)
    weight = rng.standard_normal((c_out, c_in, 3, 3))
    offset_w = rng.standard_normal(layer.conv_offset.weight.shape) * 0.5  # offsets of several px
    offset_b = rng.standard_normal(layer.conv_offset.bias.shape)
    for param, value in ((layer.weight, weight), (layer.conv_offset.weight, offset_w),
                         (layer.conv_offset.bias, offset_b)):
        _set(param, value)
    x = rng.standard_normal((2, c_in, 7, 9))

    tx = torch.tensor(x, dtype=torch.float32)
    params = [torch.tensor(v, dtype=torch.float32, requires_grad=True)
              for v in (weight, offset_w, offset_b)]
    out = torch.nn.functional.conv2d(tx, params[1], params[2], padding=1)
    if modulated:
        o1, o2, m = torch.chunk(out, 3, dim=1)
        offset, mask = torch.cat((o1, o2), dim=1), torch.sigmoid(m)
    else:
        offset, mask = out, torch.ones(2, dg * 9, 7, 9)
    assert offset.abs().max() > 2
    expected = reference_deform_conv(tx, offset, mask, params[0], padding=1, dg=dg)
    expected.sum().backward()

    got = layer(_ms(x))
    np.testing.assert_allclose(got.asnumpy(), expected.detach().numpy(), rtol=1e-4, atol=1e-3)
    trained = [layer.weight, layer.conv_offset.weight, layer.conv_offset.bias]
    grads = ms.grad(lambda inp: layer(inp).sum(), grad_position=None, weights=trained)(_ms(x))
    for grad, param in zip(grads, params):
        np.testing.assert_allclose(grad.asnumpy(), param.grad.numpy(), rtol=1e-3, atol=1e-3)


def test_names_shapes_and_initialisation():
    """The original's names; conv_offset zero (so DCN starts as the plain conv, DCNv2 as half of
    it: sigmoid(0) = 0.5); main weight U(±1/sqrt(C_in·kh·kw)); no bias by default."""
    v1 = ConvModule(8, 16, 3, padding=1, norm_cfg=dict(type="GN", num_groups=4),
                    conv_cfg=dict(type="DCN"))
    v2 = build_conv_layer(dict(type="DCNv2", deformable_groups=2), 8, 16, 3, 2, 1, groups=2)
    assert sorted(p.name for p in v1.get_parameters()) == [
        "conv.conv_offset.bias", "conv.conv_offset.weight", "conv.weight", "gn.beta", "gn.gamma"]
    assert v1.conv.conv_offset.weight.shape == (18, 8, 3, 3)
    assert v2.conv_offset.weight.shape == (2 * 27, 8, 3, 3) and v2.weight.shape == (16, 4, 3, 3)
    assert v2.conv_offset.stride == (2, 2) and v2.bias is None
    bound = 1 / math.sqrt(8 * 9)
    for layer in (v1.conv, v2):
        assert not layer.conv_offset.weight.asnumpy().any()
        assert not layer.conv_offset.bias.asnumpy().any()
        assert 0.8 * bound < np.abs(layer.weight.asnumpy()).max() <= bound
    x = _ms(np.random.default_rng(6).standard_normal((1, 8, 6, 7)))
    plain = ops.conv2d(x, v1.conv.weight, pad_mode="pad", padding=1)
    np.testing.assert_allclose(v1.conv(x).asnumpy(), plain.asnumpy(), atol=1e-5)
    half = ops.conv2d(x, v2.weight, stride=2, pad_mode="pad", padding=1, groups=2) * 0.5
    np.testing.assert_allclose(v2(x).asnumpy(), half.asnumpy(), atol=1e-5)


def test_bad_conv_cfg_is_one_clear_error():
    with pytest.raises(ConfigError, match="no bias"):
        build_conv_layer(dict(type="DCN"), 4, 4, 3, has_bias=True)
    with pytest.raises(ConfigError, match="conv_cfg type"):
        build_conv_layer(dict(type="DCNv3"), 4, 4, 3)
    with pytest.raises(ConfigError, match="deformable_group"):
        build_conv_layer(dict(type="DCNv2", deformable_group=2), 4, 4, 3)
    with pytest.raises(ConfigError, match="deformable_groups=3"):
        build_conv_layer(dict(type="DCNv2", deformable_groups=3), 4, 4, 3)


def test_graph_mode_equals_pynative():
    layer = ModulatedDeformConvPack(4, 4, 3, padding=1)
    rng = np.random.default_rng(7)
    _set(layer.conv_offset.weight, rng.standard_normal(layer.conv_offset.weight.shape))
    x = _ms(rng.standard_normal((1, 4, 6, 6)))
    np.testing.assert_allclose(ms.jit(layer.construct)(x).asnumpy(), layer(x).asnumpy(),
                               rtol=0, atol=1e-6)


# ---------------------------------------------------------------- models with DCN

# A tiny SOLOv2 with every kind of deformable conv the zoo uses: DCNv2 in the 3x3 convs of a
# narrow ResNet-50's stages 2-4, in every tower conv and in the mask-feature head; 32 channels.
TINY_DCN = """_base_ = {base!r}
model = dict(
    backbone=dict(depth=50, base_channels=8,
                  dcn=dict(type='DCNv2', deformable_groups=1, fallback_on_stride=False),
                  stage_with_dcn=(False, True, True, True)),
    neck=dict(in_channels=[32, 64, 128, 256]),
    bbox_head=dict(use_dcn_in_tower=True, type_dcn='DCNv2'),
    mask_feat_head=dict(conv_cfg=dict(type='DCNv2')))
"""
OFFSET_WEIGHTS = ("backbone.layer2.0.conv2.conv_offset.weight",
                  "backbone.layer4.2.conv2.conv_offset.weight",
                  "bbox_head.kernel_convs.0.conv.conv_offset.weight",
                  "bbox_head.cate_convs.1.conv.conv_offset.weight",
                  "mask_feat_head.conv_pred.0.conv.conv_offset.weight")


@pytest.fixture(scope="module")
def tiny_dcn_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("dcn_config") / "tiny_dcn.py"
    path.write_text(TINY_DCN.format(base=QUICKSTART))
    return str(path)


@pytest.fixture(scope="module")
def tiny_dcn_options(data_dir):
    return tiny_options(data_dir, **{"data.test.pipeline.1.img_scale": (64, 64)})


def build_tiny(config, options):
    cfg = Config.fromfile(config, options)
    return build_detector(cfg.model, cfg.get("train_cfg"), cfg.get("test_cfg"))


def test_dcn_models_have_the_original_layout(tiny_dcn_config, tiny_dcn_options):
    names = {name: shape for name, shape in original_state_layout(
        build_tiny(tiny_dcn_config, tiny_dcn_options))}
    assert names["backbone.layer2.0.conv2.weight"] == (16, 16, 3, 3)
    assert names["backbone.layer2.0.conv2.conv_offset.weight"] == (27, 16, 3, 3)
    assert names["backbone.layer2.0.conv2.conv_offset.bias"] == (27,)
    assert "backbone.layer1.0.conv2.conv_offset.weight" not in names  # stage 1 stays plain
    assert names["bbox_head.kernel_convs.0.conv.conv_offset.weight"] == (27, 34, 3, 3)
    assert names["mask_feat_head.conv_pred.0.conv.conv_offset.weight"] == (3, 32, 1, 1)
    for conv in ("backbone.layer2.0.conv2", "bbox_head.kernel_convs.0.conv",
                 "mask_feat_head.conv_pred.0.conv"):
        assert f"{conv}.bias" not in names  # no bias before a norm


def test_dcn_conversion_round_trip_and_strictness(tiny_dcn_config, tiny_dcn_options, tmp_path,
                                                  capsys):
    network = build_tiny(tiny_dcn_config, tiny_dcn_options)
    state = random_state(original_state_layout(network))
    options = ["--cfg-options", *(f"{key}={value!r}" for key, value in tiny_dcn_options.items())]
    out = tmp_path / "tiny.ckpt"
    assert weight_convert.main([save_pth(state, tmp_path / "tiny.pth"), str(out),
                                "--config", tiny_dcn_config, *options]) == 0
    load_checkpoint(network, str(out))
    assert_weights_equal(network, state)
    capsys.readouterr()

    missing = {k: v for k, v in state.items() if k != OFFSET_WEIGHTS[0]}
    v1_offsets = dict(state, **{OFFSET_WEIGHTS[2]: state[OFFSET_WEIGHTS[2]][:18]})  # DCN, not v2
    for broken, message in ((missing, f"missing: {OFFSET_WEIGHTS[0]}"),
                            (v1_offsets, f"wrong shape: {OFFSET_WEIGHTS[2]} (18, 34, 3, 3)")):
        bad_out = tmp_path / "refused.ckpt"
        assert weight_convert.main([save_pth(broken, tmp_path / "broken.pth"), str(bad_out),
                                    "--config", tiny_dcn_config, *options]) == 2
        assert not bad_out.exists()
        assert message in capsys.readouterr().err


def _key_list_shapes(name):
    return {key: np.broadcast_to(np.float32(0), shape)
            for key, shape in read_key_list(parity_file(name)).items()}


def test_the_dcn_configs_are_recognised_from_their_checkpoints():
    x101 = _key_list_shapes("keys_solov2_x101_dcn.tsv")
    light = _key_list_shapes("keys_solov2_light_512_dcn_r50.tsv")
    # R101-DCN: X101-DCN's head, an R101 body with DCNv2 in stages 2-4 (ResNet widths).
    r101 = {key: value for key, value in _key_list_shapes("keys_solov2_r101.tsv").items()
            if key.startswith("backbone.")}
    for key, value in x101.items():
        if not key.startswith("backbone."):
            r101[key] = value
    for stage, planes in ((2, 128), (3, 256), (4, 512)):
        blocks = {key.split(".")[2] for key in r101 if key.startswith(f"backbone.layer{stage}.")}
        for block in blocks:
            prefix = f"backbone.layer{stage}.{block}.conv2.conv_offset"
            r101[f"{prefix}.weight"] = np.broadcast_to(np.float32(0), (27, planes, 3, 3))
            r101[f"{prefix}.bias"] = np.broadcast_to(np.float32(0), (27,))
    for state, expected in ((x101, "solov2_x101_dcn_fpn_8gpu_3x.py"),
                            (r101, "solov2_r101_dcn_fpn_8gpu_3x.py"),
                            (light, "solov2_light_512_dcn_r50_fpn_8gpu_3x.py")):
        path, num_classes = guess_config(state)
        assert os.path.basename(path) == expected and num_classes == 81
    # DCN v1 where the zoo has v2: no config of the zoo, so no guess.
    v1 = dict(x101, **{"bbox_head.kernel_convs.0.conv.conv_offset.weight":
                       np.broadcast_to(np.float32(0), (18, 514, 3, 3))})
    with pytest.raises(CheckpointError, match="no model-zoo config for a ResNeXt-101 \\(64x4d\\)"):
        guess_config(v1)


@pytest.mark.slow
def test_a_training_step_reaches_the_offsets(tiny_dcn_config, tiny_dcn_options):
    """Gradients flow through the offsets and masks into every conv_offset."""
    network, step, batch = build_parts(Config.fromfile(tiny_dcn_config, tiny_dcn_options))
    before = {p.name: p.asnumpy().copy() for p in network.get_parameters()}
    loss = step(batch, 0)["loss"]
    assert math.isfinite(loss)
    after = {p.name: p.asnumpy() for p in network.get_parameters()}
    for name in OFFSET_WEIGHTS:
        assert np.abs(after[name] - before[name]).max() > 0, name


@pytest.mark.slow
def test_mindir_export_of_a_dcn_model(tiny_dcn_config, tiny_dcn_options, tmp_path):
    ms.set_seed(0)
    model = init_detector(tiny_dcn_config, None, device_target="CPU", cfg_options=tiny_dcn_options)
    rng = np.random.default_rng(8)
    for name in OFFSET_WEIGHTS:  # offsets of a pixel or so
        param = dict((p.name, p) for p in model.get_parameters())[name]
        _set(param, rng.normal(0, 0.05, param.shape))
    image = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    path = export_mindir(model, str(tmp_path / "tiny_dcn.mindir"), (64, 64))
    deployed = init_mindir_detector(tiny_dcn_config, path, "CPU", tiny_dcn_options)
    batch, _ = preprocess(model, image)
    np.testing.assert_allclose(deployed.network_runner(batch)[2], run_network(model, batch)[2],
                               rtol=0, atol=1e-5)
