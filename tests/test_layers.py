"""Layers with more than one way to compute: each way against torch."""
import mindspore as ms
import mindspore.nn as nn
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmdet_ms.models.layers import GroupNorm, use_compiled_inference_form
from mmdet_ms.utils.device import set_device


@pytest.fixture(scope="module", autouse=True)
def pynative_cpu():
    set_device("CPU", mode="pynative")


def _torch_group_norm(x, gamma, beta, groups):
    """float64 reference."""
    return F.group_norm(torch.from_numpy(x).double(), groups, torch.from_numpy(gamma).double(),
                        torch.from_numpy(beta).double(), 1e-5).numpy()


def _group_norm(channels, groups, seed):
    rng = np.random.default_rng(seed)
    norm = GroupNorm(groups, channels)
    norm.gamma.set_data(ms.Tensor(rng.random(channels, dtype=np.float32) + 0.5))
    norm.beta.set_data(ms.Tensor(rng.standard_normal(channels).astype(np.float32)))
    return norm


@pytest.mark.parametrize("shape, offset", [
    ((1, 64, 50, 76), 1.0),    # a mask feature map: large groups
    ((2, 32, 12, 12), -3.0),   # a batch of two, small head grid, mean far from 0
    ((1, 64, 7, 9), 0.0),
])
@pytest.mark.parametrize("compiled", [False, True])
def test_group_norm_inference_forms_equal_torch(shape, offset, compiled):
    x = (np.random.default_rng(0).standard_normal(shape) * 2 + offset).astype(np.float32)
    kernel_norm = _group_norm(shape[1], 32, seed=1).set_train(False)
    matmul_norm = use_compiled_inference_form(_group_norm(shape[1], 32, seed=1).set_train(False))
    expected = _torch_group_norm(x, kernel_norm.gamma.asnumpy(), kernel_norm.beta.asnumpy(), 32)
    # Separate cells: a compiled graph keeps the form its cell had when it was compiled.
    kernel_out, matmul_out = ((ms.jit(norm.construct) if compiled else norm)(ms.Tensor(x)).asnumpy()
                              for norm in (kernel_norm, matmul_norm))
    np.testing.assert_allclose(kernel_out, expected, rtol=0, atol=5e-6)
    np.testing.assert_allclose(matmul_out, expected, rtol=0, atol=5e-6)
    assert not np.array_equal(kernel_out, matmul_out), "the compiled form was not used"


def test_group_norm_trains_with_the_kernel_whatever_the_form():
    x = ms.Tensor(np.random.default_rng(2).standard_normal((2, 64, 6, 5)).astype(np.float32))
    norm = use_compiled_inference_form(_group_norm(64, 32, seed=3)).set_train(True)
    reference = _group_norm(64, 32, seed=3).set_train(True)

    def loss(cell):
        return ms.value_and_grad(lambda inputs: (cell(inputs) ** 3).sum(), None,
                                 cell.trainable_params())(x)

    (value, grads), (ref_value, ref_grads) = loss(norm), loss(reference)
    assert value.asnumpy() == ref_value.asnumpy()
    for grad, ref_grad in zip(grads, ref_grads):
        np.testing.assert_array_equal(grad.asnumpy(), ref_grad.asnumpy())


def test_use_compiled_inference_form_switches_every_group_norm_and_back():
    network = nn.SequentialCell([_group_norm(64, 32, 0), nn.ReLU(), _group_norm(32, 32, 1)])
    use_compiled_inference_form(network)
    assert all(cell.compiled_inference_form for cell in (network[0], network[2]))
    use_compiled_inference_form(network, enabled=False)
    assert not any(cell.compiled_inference_form for cell in (network[0], network[2]))
