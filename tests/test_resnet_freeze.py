"""Frozen stages: no gradient, and BN statistics fixed even when the other stages' BN learns."""
import mindspore as ms
import numpy as np
import pytest

from mmdet_ms.models.backbones import ResNet


@pytest.mark.parametrize("depth", [18, 50])
def test_frozen_stages_keep_weights_and_statistics(depth):
    ms.set_device("CPU")
    net = ResNet(depth, frozen_stages=1, norm_eval=False)
    net.set_train(True)
    frozen = [p.name for p in net.get_parameters() if p.name.startswith(("conv1", "bn1", "layer1."))]
    trainable = {p.name for p in net.trainable_params()}
    assert frozen and not trainable.intersection(frozen)
    assert any(name.startswith("layer2.") for name in trainable)
    stats = {p.name: p.asnumpy().copy() for p in net.get_parameters() if "moving_" in p.name}
    net(ms.Tensor(np.random.default_rng(0).normal(size=(2, 3, 64, 64)).astype(np.float32)))
    after = {p.name: p.asnumpy() for p in net.get_parameters() if "moving_" in p.name}
    for name, value in stats.items():
        changed = not np.array_equal(value, after[name])
        assert changed == (not name.startswith(("bn1", "layer1."))), name


def test_norm_eval_keeps_every_statistic():
    ms.set_device("CPU")
    net = ResNet(18, frozen_stages=-1, norm_eval=True)
    net.set_train(True)
    stats = {p.name: p.asnumpy().copy() for p in net.get_parameters() if "moving_" in p.name}
    net(ms.Tensor(np.ones((1, 3, 64, 64), np.float32)))
    for p in net.get_parameters():
        if "moving_" in p.name:
            assert np.array_equal(stats[p.name], p.asnumpy()), p.name


@pytest.mark.parametrize("frozen_stages", [0, 1])
def test_no_gradient_flows_into_the_frozen_stages(frozen_stages):
    """The backward pass stops where the frozen part ends (no gradient reaches the image), and
    the trainable weights get the same gradients as without the stop."""
    ms.set_device("CPU")
    ms.set_seed(0)
    net = ResNet(18, frozen_stages=frozen_stages, norm_eval=True)
    net.set_train(True)
    img = ms.Tensor(np.random.default_rng(1).normal(size=(1, 3, 64, 64)).astype(np.float32))
    params = net.trainable_params()

    def total(x):
        return sum(out.sum() for out in net(x))

    grads = ms.grad(total, (0,), params)
    d_img, stopped = grads(img)
    assert not np.any(d_img.asnumpy())
    net.frozen_through = -1  # the same network without the stop
    d_img, flowing = grads(img)
    assert np.any(d_img.asnumpy())
    for name, with_stop, without in zip([p.name for p in params], stopped, flowing):
        np.testing.assert_allclose(with_stop.asnumpy(), without.asnumpy(), rtol=1e-5, atol=1e-6,
                                   err_msg=name)
