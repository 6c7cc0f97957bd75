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
