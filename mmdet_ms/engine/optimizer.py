"""The optimizer of a config: SGD with momentum and weight decay, as torch.optim.SGD computes it
(decay added to the gradient, then ``v = m·v + g``, ``p -= lr·v``)."""
import mindspore as ms
import mindspore.nn as nn

from ..registry import ConfigError


def build_optimizer(network, optimizer_cfg, lr):
    """SGD over the network's trainable parameters (frozen stages excluded) at ``lr``."""
    cfg = dict(optimizer_cfg)
    if cfg.pop("type", "SGD") != "SGD":
        raise ConfigError(f"optimizer type {optimizer_cfg.get('type')!r}: only 'SGD' is supported")
    cfg.pop("lr", None)
    unknown = set(cfg) - {"momentum", "weight_decay", "nesterov"}
    if unknown:
        raise ConfigError(f"optimizer: unknown keys {sorted(unknown)}")
    return nn.SGD(network.trainable_params(), learning_rate=ms.Parameter(
        ms.Tensor(lr, ms.float32), name="learning_rate"), momentum=cfg.get("momentum", 0.0),
        weight_decay=cfg.get("weight_decay", 0.0), nesterov=cfg.get("nesterov", False))


def set_learning_rate(optimizer, lr):
    optimizer.learning_rate.set_data(ms.Tensor(lr, ms.float32))
