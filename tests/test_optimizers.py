"""Optimizers from the config: AdamW against a float64 torch-AdamW reference, SGD's groups,
paramwise_cfg and refusals."""
import mmdet_ms  # noqa: F401  (environment before MindSpore loads)
import mindspore as ms
import mindspore.nn as nn
import numpy as np
import pytest

from mmdet_ms.engine.optimizer import build_optimizer, set_learning_rate
from mmdet_ms.registry import ConfigError
from mmdet_ms.utils.device import set_device


@pytest.fixture(autouse=True)
def cpu():
    set_device("CPU", mode="pynative")


class ConvBnNet(nn.Cell):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, has_bias=True)
        self.bn = nn.BatchNorm2d(3)
        self.norm = nn.GroupNorm(1, 3)


# ConvBnNet's weight decay under weight_decay=0.1, norm_decay_mult=0.0, bias_decay_mult=0.5
PARAMWISE_DECAYS = {"conv.weight": 0.1, "conv.bias": 0.05, "bn.gamma": 0.0, "bn.beta": 0.0,
                    "norm.gamma": 0.0, "norm.beta": 0.0}


def random_gradients(params, steps, seed):
    """``steps`` lists of float32 normal gradients, one per array of ``params``."""
    rng = np.random.default_rng(seed)
    return [[rng.normal(size=p.shape).astype(np.float32) for p in params] for _ in range(steps)]


def compiled_update(optimizer):
    """The optimizer under ms.jit, as the train step runs it."""
    step = ms.jit(optimizer.construct)
    return lambda grads: step(ms.mutable(tuple(ms.Tensor(g) for g in grads)))


def torch_adamw_reference(params, grads_per_step, lrs, betas, eps, decays):
    """torch.optim.AdamW's arithmetic (amsgrad off) in float64 numpy."""
    params = [p.astype(np.float64) for p in params]
    avg = [np.zeros_like(p) for p in params]
    avg_sq = [np.zeros_like(p) for p in params]
    for step, (grads, lr) in enumerate(zip(grads_per_step, lrs), start=1):
        for i, (grad, decay) in enumerate(zip(grads, decays)):
            params[i] = params[i] * (1 - lr * decay)
            avg[i] = betas[0] * avg[i] + (1 - betas[0]) * grad
            avg_sq[i] = betas[1] * avg_sq[i] + (1 - betas[1]) * grad * grad
            denom = np.sqrt(avg_sq[i]) / np.sqrt(1 - betas[1] ** step) + eps
            params[i] = params[i] - lr / (1 - betas[0] ** step) * avg[i] / denom
    return params


def test_adamw_matches_a_float64_reference_with_paramwise_decay():
    net = ConvBnNet()
    cfg = dict(type="AdamW", lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1,
               paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.5))
    optimizer = build_optimizer(net, cfg, 0.01)
    names = [p.name for p in optimizer.parameters]
    assert names == [p.name for p in net.trainable_params()]
    start = [p.asnumpy().copy() for p in optimizer.parameters]
    grads_per_step = random_gradients(start, steps=4, seed=0)
    lrs = [0.01, 0.01, 0.003, 0.02]
    update = compiled_update(optimizer)
    for grads, lr in zip(grads_per_step, lrs):
        set_learning_rate(optimizer, lr)
        update(grads)
    expected = torch_adamw_reference(start, grads_per_step, lrs, (0.8, 0.99), 1e-6,
                                     [PARAMWISE_DECAYS[n] for n in names])
    for name, param, ref in zip(names, optimizer.parameters, expected):
        np.testing.assert_allclose(param.asnumpy(), ref, rtol=1e-5, atol=1e-6, err_msg=name)
        assert not np.allclose(ref, start[names.index(name)])


def torch_sgd_reference(params, grads_per_step, lr, momentum, decays, nesterov):
    """torch.optim.SGD's arithmetic (no dampening) in float64 numpy."""
    params = [p.astype(np.float64) for p in params]
    buffers = [None] * len(params)
    for grads in grads_per_step:
        for i, (grad, decay) in enumerate(zip(grads, decays)):
            d_p = grad + decay * params[i]
            buffers[i] = d_p if buffers[i] is None else momentum * buffers[i] + d_p
            params[i] = params[i] - lr * (d_p + momentum * buffers[i] if nesterov else buffers[i])
    return params


@pytest.mark.parametrize("momentum, nesterov", [(0.9, False), (0.9, True), (0.0, False)])
def test_sgd_matches_a_float64_torch_reference_with_paramwise_decay(momentum, nesterov):
    net = ConvBnNet()
    cfg = dict(type="SGD", lr=0.05, momentum=momentum, weight_decay=0.1, nesterov=nesterov,
               paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.5))
    optimizer = build_optimizer(net, cfg, 0.05)
    names = [p.name for p in optimizer.parameters]
    start = [p.asnumpy().copy() for p in optimizer.parameters]
    grads_per_step = random_gradients(start, steps=3, seed=3)
    update = compiled_update(optimizer)
    for grads in grads_per_step:
        update(grads)
    expected = torch_sgd_reference(start, grads_per_step, 0.05, momentum,
                                   [PARAMWISE_DECAYS[n] for n in names], nesterov)
    for name, param, ref in zip(names, optimizer.parameters, expected):
        np.testing.assert_allclose(param.asnumpy(), ref, rtol=1e-5, atol=1e-6, err_msg=name)


def test_sgd_refuses_nesterov_without_momentum():
    with pytest.raises(ConfigError, match="nesterov"):
        build_optimizer(ConvBnNet(), dict(type="SGD", lr=0.1, nesterov=True), 0.1)


def test_sgd_decays_norm_parameters_unless_paramwise_cfg_says_otherwise():
    net = ConvBnNet()
    for p in net.trainable_params():
        p.set_data(ms.Tensor(np.ones(p.shape, np.float32)))
    zero_grads = [np.zeros(p.shape, np.float32) for p in net.trainable_params()]
    plain = build_optimizer(net, dict(type="SGD", lr=0.1, momentum=0.9, weight_decay=0.5), 0.1)
    compiled_update(plain)(zero_grads)
    # torch.optim.SGD: g + wd·p = 0.5, v = 0.5, p = 1 - 0.1·0.5 for every parameter, norms too.
    assert all(np.allclose(p.asnumpy(), 0.95) for p in net.trainable_params())
    for p in net.trainable_params():
        p.set_data(ms.Tensor(np.ones(p.shape, np.float32)))
    paramwise = build_optimizer(net, dict(type="SGD", lr=0.1, momentum=0.9, weight_decay=0.5,
                                          paramwise_cfg=dict(norm_decay_mult=0.0)), 0.1)
    compiled_update(paramwise)(zero_grads)
    moved = {p.name: float(p.asnumpy().mean()) for p in net.trainable_params()}
    assert moved == {"conv.weight": pytest.approx(0.95), "conv.bias": pytest.approx(0.95),
                     "bn.gamma": 1.0, "bn.beta": 1.0, "norm.gamma": 1.0, "norm.beta": 1.0}


@pytest.mark.parametrize("cfg,message", [
    (dict(type="Adam", lr=0.1), "unknown optimizer type 'Adam'"),
    (dict(type="AdamW", lr=0.1, betaz=(0.9, 0.99)), "unknown key 'betaz'"),
    (dict(type="SGD", lr=0.1, paramwise_cfg=dict(bias_lr_mult=2.0)), "bias_lr_mult"),
])
def test_unknown_optimizer_types_and_options_are_refused(cfg, message):
    with pytest.raises(ConfigError, match=message):
        build_optimizer(ConvBnNet(), cfg, 0.1)


def test_sgd_from_the_registry_equals_the_plain_single_group_sgd_bit_for_bit():
    """The SGD built before the registry existed: one group over every trainable parameter."""
    ms.set_seed(1)
    net, reference_net = ConvBnNet(), ConvBnNet()
    for p, q in zip(net.trainable_params(), reference_net.trainable_params()):
        q.set_data(p.value().copy())
    cfg = dict(type="SGD", lr=0.02, momentum=0.9, weight_decay=1e-4)
    optimizer = build_optimizer(net, cfg, 0.02)
    reference = nn.SGD([dict(params=reference_net.trainable_params(), weight_decay=1e-4)],
                       learning_rate=ms.Parameter(ms.Tensor(0.02, ms.float32), name="lr"),
                       momentum=0.9, weight_decay=1e-4)
    rng = np.random.default_rng(2)
    update, reference_update = compiled_update(optimizer), compiled_update(reference)
    for _ in range(3):
        grads = [rng.normal(size=p.shape).astype(np.float32) for p in net.trainable_params()]
        update(grads)
        reference_update(grads)
    for p, q in zip(net.trainable_params(), reference_net.trainable_params()):
        np.testing.assert_array_equal(p.asnumpy(), q.asnumpy(), err_msg=p.name)
