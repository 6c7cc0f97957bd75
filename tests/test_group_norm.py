"""GroupNorm's training form against torch's F.group_norm in float64, op by op and compiled."""
import mindspore as ms
import mindspore.nn as nn
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmdet_ms.engine.train_step import CompiledTrainOutputs, TrainOutputs
from mmdet_ms.models.layers import GroupNorm, use_compiled_training_form
from mmdet_ms.utils.device import set_device
from tools.benchmark_group_norm import Compiled

GROUPS = 32


@pytest.fixture(scope="module", autouse=True)
def pynative_cpu():
    set_device("CPU", mode="pynative")


def _norm(channels, seed):
    """A GroupNorm in the training form (also run op by op here, where it is not the default)."""
    rng = np.random.default_rng(seed)
    norm = use_compiled_training_form(GroupNorm(GROUPS, channels)).set_train(True)
    norm.gamma.set_data(ms.Tensor(rng.random(channels, dtype=np.float32) + 0.5))
    norm.beta.set_data(ms.Tensor(rng.standard_normal(channels).astype(np.float32)))
    return norm


def _output_and_grads(norm, x, weight, compiled):
    """Output of ``norm`` on ``x``, gradients of sum(output * weight) for x, gamma, beta."""
    run = Compiled(norm) if compiled else norm
    grad_fn = ms.value_and_grad(lambda inputs: (run(inputs).astype(ms.float32) * weight).sum(),
                                0, norm.trainable_params())
    _, (dx, (dgamma, dbeta)) = grad_fn(x)
    return run(x), dx, dgamma, dbeta


def _torch_output_and_grads(x, weight, gamma, beta):
    x, gamma, beta = (torch.from_numpy(a).double().requires_grad_(True) for a in (x, gamma, beta))
    out = F.group_norm(x, GROUPS, gamma, beta, 1e-5)
    (out * torch.from_numpy(weight).double()).sum().backward()
    return out.detach().numpy(), x.grad.numpy(), gamma.grad.numpy(), beta.grad.numpy()


def _max_relative_error(actual, expected):
    return np.abs(actual - expected).max() / np.abs(expected).max()


@pytest.mark.parametrize("shape, offset", [
    ((2, 64, 9, 7), 1.0),      # a batch of two, head-sized grid
    ((1, 64, 50, 76), -3.0),   # a mask-feature-sized group, mean far from 0
])
@pytest.mark.parametrize("compiled", [False, True])
def test_training_form_forward_and_gradients_equal_torch(shape, offset, compiled):
    rng = np.random.default_rng(4)
    x = (rng.standard_normal(shape) * 2 + offset).astype(np.float32)
    weight = rng.standard_normal(shape).astype(np.float32)
    norm = _norm(shape[1], seed=5)
    actual = _output_and_grads(norm, ms.Tensor(x), ms.Tensor(weight), compiled)
    expected = _torch_output_and_grads(x, weight, norm.gamma.asnumpy(), norm.beta.asnumpy())
    for name, value, reference in zip(("output", "d input", "d gamma", "d beta"), actual, expected):
        assert _max_relative_error(value.asnumpy(), reference) < 1e-5, name


@pytest.mark.parametrize("compiled", [False, True])
def test_float16_input_is_normalised_in_float32(compiled):
    """float16 in, float16 out, statistics in float32: equal to the float32 result on the same
    (float16-representable) values up to float16 rounding (2**-11 relative). Group sums of
    squares here exceed float16's range (65504), so statistics computed in float16 would give
    inf/NaN. The output's gradient reaches the float16 path rounded to float16, hence 2**-10
    for the gradients."""
    rng = np.random.default_rng(6)
    shape = (1, 64, 50, 76)  # 7600 values a group
    x16 = (rng.standard_normal(shape) + 4.0).astype(np.float16)
    weight = ms.Tensor(rng.standard_normal(shape).astype(np.float32))
    norm = _norm(64, seed=7)
    out16, dx16, dgamma16, dbeta16 = _output_and_grads(norm, ms.Tensor(x16), weight, compiled)
    out32, dx32, dgamma32, dbeta32 = _output_and_grads(norm, ms.Tensor(x16.astype(np.float32)),
                                                       weight, compiled)
    assert out16.dtype == ms.float16 and dx16.dtype == ms.float16
    assert dgamma16.dtype == ms.float32
    out16, out32 = out16.asnumpy().astype(np.float32), out32.asnumpy()
    assert np.all(np.abs(out16 - out32) <= np.abs(out32) * 2.0 ** -11 + 2.0 ** -24)
    assert _max_relative_error(dx16.asnumpy().astype(np.float32), dx32.asnumpy()) < 2.0 ** -10
    assert _max_relative_error(dgamma16.asnumpy(), dgamma32.asnumpy()) < 2.0 ** -10
    assert _max_relative_error(dbeta16.asnumpy(), dbeta32.asnumpy()) < 2.0 ** -10


def test_the_compiled_train_step_switches_the_group_norms_to_the_training_form():
    network = nn.SequentialCell([nn.Conv2d(3, 32, 3), GroupNorm(GROUPS, 32), nn.ReLU()])
    TrainOutputs(network)
    assert not network[1].compiled_training_form  # op by op: the kernel
    CompiledTrainOutputs(network)
    assert network[1].compiled_training_form


def test_training_form_in_one_graph_with_its_backward_equals_the_kernel():
    """As the compiled train step runs it: two norms of one shape in a graph that holds the
    backward too, called twice. (Compiled, equal constants share a buffer: scratch moving
    statistics of ones and zeros, updated in place, overwrote the norms' scale and shift.)"""
    rng = np.random.default_rng(8)
    shape = (2, 64, 9, 7)
    x = ms.Tensor(rng.standard_normal(shape).astype(np.float32))
    weight = ms.Tensor(rng.standard_normal(shape).astype(np.float32))
    forms = nn.SequentialCell([_norm(64, seed) for seed in (9, 10)])
    kernels = nn.SequentialCell([GroupNorm(GROUPS, 64) for _ in forms]).set_train(True)
    for kernel, form in zip(kernels, forms):
        kernel.gamma.set_data(form.gamma.value())
        kernel.beta.set_data(form.beta.value())

    def loss_of(norms):
        def loss(inputs):
            return (norms(inputs) * weight).sum()
        return loss

    one_graph = ms.jit(ms.value_and_grad(loss_of(forms), 0, forms.trainable_params()))
    reference = ms.value_and_grad(loss_of(kernels), 0, kernels.trainable_params())
    expected_loss, (expected_dx, expected_dparams) = reference(x)
    for _ in range(2):
        loss, (dx, dparams) = one_graph(x)
        assert abs(float(loss) - float(expected_loss)) < 1e-4 * abs(float(expected_loss))
        assert _max_relative_error(dx.asnumpy(), expected_dx.asnumpy()) < 1e-5
        for value, reference_value in zip(dparams, expected_dparams):
            assert _max_relative_error(value.asnumpy(), reference_value.asnumpy()) < 1e-5
