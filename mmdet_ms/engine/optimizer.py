"""Optimizers of a config (``optimizer = dict(type='SGD', ...)``) through ``OPTIMIZERS``.

``SGD`` as torch.optim.SGD computes it (decay added to the gradient, then ``v = m·v + g``,
``p -= lr·v``; the first step ``v = g``); ``AdamW`` as torch.optim.AdamW (decoupled decay
``p -= lr·wd·p``, bias-corrected moments). ``paramwise_cfg`` (mmcv's): ``norm_decay_mult``
for the norm layers' weights and biases, ``bias_decay_mult`` for the other biases.
"""
import mindspore as ms
import mindspore.nn as nn
import mindspore.ops as ops

from ..registry import OPTIMIZERS, ConfigError, check_kwargs

_NORM_CELLS = (nn.BatchNorm2d, nn.GroupNorm)
_PARAMWISE_KEYS = ("norm_decay_mult", "bias_decay_mult")


def _norm_parameter_names(network):
    return {param.name for _, cell in network.cells_and_names() if isinstance(cell, _NORM_CELLS)
            for param in cell.get_parameters(expand=False)}


def parameter_groups(network, weight_decay, paramwise_cfg=None):
    """The trainable parameters (frozen stages excluded) in groups of equal weight decay, with
    ``order_params`` keeping the network's order.

    Even without ``paramwise_cfg`` the groups are explicit: given a plain list, MindSpore exempts
    every parameter named *gamma* or *beta* (norm layers) from weight decay, while the original's
    torch optimizers decay them.
    """
    paramwise_cfg = dict(paramwise_cfg or {})
    unknown = sorted(set(paramwise_cfg) - set(_PARAMWISE_KEYS))
    if unknown:
        raise ConfigError(f"optimizer.paramwise_cfg: unsupported keys {unknown}; supported: "
                          f"{', '.join(_PARAMWISE_KEYS)}")
    params = network.trainable_params()
    norm_names = _norm_parameter_names(network) if "norm_decay_mult" in paramwise_cfg else set()
    groups = {}
    for param in params:
        mult = 1.0
        if param.name in norm_names:
            mult = paramwise_cfg["norm_decay_mult"]
        elif param.name.endswith(".bias") and "bias_decay_mult" in paramwise_cfg:
            mult = paramwise_cfg["bias_decay_mult"]
        groups.setdefault(weight_decay * mult, []).append(param)
    return ([dict(params=members, weight_decay=decay) for decay, members in groups.items()]
            + [dict(order_params=params)])


def _lr_parameter(lr):
    return ms.Parameter(ms.Tensor(lr, ms.float32), name="learning_rate")


def _ordered_with_decay(groups, weight_decay):
    """``parameter_groups``' groups → (the parameters in the network's order, the weight decay
    of each)."""
    decay_of = {param.name: group.get("weight_decay", weight_decay)
                for group in groups if "params" in group for param in group["params"]}
    ordered = next((g["order_params"] for g in groups if "order_params" in g),
                   [p for g in groups for p in g.get("params", [])])
    return ordered, [decay_of[p.name] for p in ordered]


_sgd_update = ops.MultitypeFuncGraph("sgd_update")


@_sgd_update.register("Tensor", "Tensor", "Function", "Tensor", "Tensor", "Tensor", "Tensor")
def _sgd_update_one(lr, momentum, kernel, param, accum, stat, grad):
    return ops.depend(True, kernel(param, grad, lr, accum, momentum, stat))


class SGD(nn.Optimizer):
    """torch.optim.SGD (no dampening), each parameter's weight decay inside MindSpore's SGD
    kernel: one pass over a parameter a step, where ``nn.SGD`` adds the decay in passes of its
    own (R101's whole update on the CPU: 0.30 s with it, 0.41 s with ``nn.SGD``).

    Its buffers are ``nn.SGD``'s (``momentum``, ``accum.*``, ``stat.*``, ``global_step``), so
    training checkpoints of either load into the other.
    """

    def __init__(self, groups, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
        ordered, decays = _ordered_with_decay(groups, weight_decay)
        super().__init__(_lr_parameter(lr), ordered)
        if momentum < 0 or (nesterov and momentum <= 0):
            raise ConfigError(f"optimizer SGD: momentum={momentum} (must be >= 0, and > 0 with "
                              "nesterov)")
        self.momentum = ms.Parameter(ms.Tensor(momentum, ms.float32), name="momentum")
        self.kernels = tuple(ops.SGD(0.0, float(decay), nesterov) for decay in decays)
        self.accum = self.parameters.clone(prefix="accum", init="zeros")
        self.stat = self.parameters.clone(prefix="stat", init="ones")  # 1: first step, v = g

    def construct(self, gradients):
        ops.assign_add(self.global_step, self.global_step_increase_tensor)
        return self.hyper_map(ops.partial(_sgd_update, self.get_lr(), self.momentum),
                              self.kernels, self.parameters, self.accum, self.stat, gradients)


@OPTIMIZERS.register_module(name="SGD")
def build_sgd(groups, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
    return SGD(groups, lr, float(momentum), float(weight_decay), bool(nesterov))


_adamw_update = ops.MultitypeFuncGraph("adamw_update")


@_adamw_update.register("Tensor", "Tensor", "Tensor", "Tensor", "Tensor", "Tensor", "Tensor",
                        "Tensor", "Tensor", "Tensor", "Tensor")
def _adamw_update_one(lr, beta1, beta2, eps, correction1, correction2, decay, param, exp_avg,
                      exp_avg_sq, grad):
    """torch.optim.AdamW's step for one parameter (amsgrad off), in place."""
    grad = grad.astype(param.dtype)
    decayed = param * (1 - lr * decay)
    new_avg = beta1 * exp_avg + (1 - beta1) * grad
    new_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * grad * grad
    denom = ops.sqrt(new_avg_sq) / ops.sqrt(correction2) + eps
    ops.assign(exp_avg, new_avg)
    ops.assign(exp_avg_sq, new_avg_sq)
    return ops.assign(param, decayed - (lr / correction1) * new_avg / denom)


class AdamW(nn.Optimizer):
    """torch.optim.AdamW: ``p ← p·(1 − lr·wd)``, then the bias-corrected Adam step.

    MindSpore's own ``nn.AdamWeightDecay`` has no bias correction, so it would not reproduce a
    torch AdamW recipe.
    """

    def __init__(self, groups, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        ordered, decays = _ordered_with_decay(groups, weight_decay)
        super().__init__(_lr_parameter(lr), ordered)
        self.beta1 = ms.Tensor(betas[0], ms.float32)
        self.beta2 = ms.Tensor(betas[1], ms.float32)
        self.eps = ms.Tensor(eps, ms.float32)
        self.decays = tuple(ms.Tensor(decay, ms.float32) for decay in decays)
        self.exp_avg = self.parameters.clone(prefix="exp_avg", init="zeros")
        self.exp_avg_sq = self.parameters.clone(prefix="exp_avg_sq", init="zeros")
        self.steps = ms.Parameter(ms.Tensor(0.0, ms.float32), name="adamw_steps")

    def construct(self, gradients):
        steps = ops.assign_add(self.steps, ms.Tensor(1.0, ms.float32))
        correction1 = 1 - ops.pow(self.beta1, steps)
        correction2 = 1 - ops.pow(self.beta2, steps)
        lr = self.get_lr()
        return self.hyper_map(
            ops.partial(_adamw_update, lr, self.beta1, self.beta2, self.eps, correction1,
                        correction2),
            self.decays, self.parameters, self.exp_avg, self.exp_avg_sq, gradients)


@OPTIMIZERS.register_module(name="AdamW")
def build_adamw(groups, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
    return AdamW(groups, lr, tuple(betas), eps, weight_decay)


def build_optimizer(network, optimizer_cfg, lr):
    """The config's optimizer over the network's trainable parameters at ``lr`` (the config's
    ``lr`` after batch scaling); ``paramwise_cfg`` sets per-parameter weight decay."""
    cfg = dict(optimizer_cfg)
    cfg.pop("lr", None)
    kind = cfg.pop("type", "SGD")
    builder = OPTIMIZERS.get(kind)
    paramwise_cfg = cfg.pop("paramwise_cfg", None)
    check_kwargs(builder, dict(cfg, groups=None, lr=lr), where=f"optimizer '{kind}'")
    groups = parameter_groups(network, cfg.get("weight_decay", 0.0), paramwise_cfg)
    return builder(groups, lr, **cfg)


def set_learning_rate(optimizer, lr):
    """Write ``lr`` into the optimizer's learning-rate parameter in place.

    ``ops.assign``, not ``Parameter.set_data``: a graph compiled by ``ms.jit`` (the update step)
    keeps reading the storage it was compiled with, and ``set_data`` replaces that storage, so the
    compiled step would go on with the first lr it saw.
    """
    ops.assign(optimizer.learning_rate, ms.Tensor(lr, ms.float32))
