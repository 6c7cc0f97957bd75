"""The optimizer of a config: SGD with momentum and weight decay, as torch.optim.SGD computes it
(decay added to the gradient, then ``v = m·v + g``, ``p -= lr·v``)."""
import mindspore as ms
import mindspore.nn as nn
import mindspore.ops as ops

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
    weight_decay = cfg.get("weight_decay", 0.0)
    # One parameter group: given a plain list, MindSpore exempts every parameter named *gamma* or
    # *beta* (norm layers) from weight decay, while torch.optim.SGD in the original decays them.
    params = [dict(params=network.trainable_params(), weight_decay=weight_decay)]
    return nn.SGD(params, learning_rate=ms.Parameter(ms.Tensor(lr, ms.float32), name="learning_rate"),
                  momentum=cfg.get("momentum", 0.0), weight_decay=weight_decay,
                  nesterov=cfg.get("nesterov", False))


def set_learning_rate(optimizer, lr):
    """Write ``lr`` into the optimizer's learning-rate parameter in place.

    ``ops.assign``, not ``Parameter.set_data``: a graph compiled by ``ms.jit`` (the update step)
    keeps reading the storage it was compiled with, and ``set_data`` replaces that storage, so the
    compiled step would go on with the first lr it saw.
    """
    ops.assign(optimizer.learning_rate, ms.Tensor(lr, ms.float32))
