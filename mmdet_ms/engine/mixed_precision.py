"""Mixed precision training from mmdet's ``fp16 = dict(loss_scale=...)`` key.

``cast_to_mixed_precision``: convolutions and fully connected layers compute in float16 (their
weights stay float32 master copies, cast on use), normalisation layers and cells that declare
``keep_float32 = True`` (deformable convolutions) in float32, as MindSpore's AMP level O2 with
``keep_batchnorm_fp32``. The network's training outputs are cast back to float32 by the train
step, so the losses, sigmoids and softmaxes are float32.

``build_loss_scaler``: mmdet 1.0's static ``loss_scale=512.``, or ``'dynamic'`` (or a dict of
``init_scale``, ``scale_factor``, ``scale_window``, mmcv's names): halved after a step whose
gradients overflow (the step is skipped), doubled after ``scale_window`` clean steps.
"""
import numbers

import mindspore as ms
import mindspore.nn as nn
from mindspore.amp import DynamicLossScaler, StaticLossScaler

from ..registry import ConfigError

DYNAMIC_DEFAULTS = dict(init_scale=2.0 ** 16, scale_factor=2, scale_window=1000)
_FLOAT16_CELLS = (nn.Conv2d, nn.Dense)
_FLOAT32_CELLS = (nn.BatchNorm2d, nn.GroupNorm)


def build_loss_scaler(fp16_cfg):
    """``cfg.fp16`` → a MindSpore loss scaler (None: float32 training, no scaling)."""
    if fp16_cfg is None:
        return None
    if not isinstance(fp16_cfg, dict) or set(fp16_cfg) - {"loss_scale"}:
        raise ConfigError(f"fp16={fp16_cfg!r}: use fp16=dict(loss_scale=512.) or "
                          "fp16=dict(loss_scale='dynamic'), or None for float32")
    loss_scale = fp16_cfg.get("loss_scale", 512.0)
    if isinstance(loss_scale, numbers.Real) and not isinstance(loss_scale, bool):
        if loss_scale <= 0:
            raise ConfigError(f"fp16.loss_scale must be > 0, got {loss_scale!r}")
        return StaticLossScaler(float(loss_scale))
    if loss_scale == "dynamic":
        loss_scale = {}
    if not isinstance(loss_scale, dict) or set(loss_scale) - set(DYNAMIC_DEFAULTS):
        raise ConfigError(f"fp16.loss_scale={loss_scale!r}: use a number, 'dynamic' or a dict "
                          f"of {', '.join(DYNAMIC_DEFAULTS)}")
    options = dict(DYNAMIC_DEFAULTS, **loss_scale)
    factor, window = options["scale_factor"], options["scale_window"]
    if factor != int(factor) or factor < 2 or window != int(window) or window < 1:
        raise ConfigError(f"fp16.loss_scale: scale_factor must be an integer >= 2 and "
                          f"scale_window >= 1, got {factor!r} and {window!r}")
    return DynamicLossScaler(float(options["init_scale"]), int(factor), int(window))


def cast_to_mixed_precision(network):
    """Set the compute type of ``network``'s cells for float16 training (see the module
    docstring); returns ``network``. Call before the network is compiled."""
    for _, cell in network.cells_and_names():
        if isinstance(cell, _FLOAT16_CELLS):
            cell.to_float(ms.float16)
    for _, cell in network.cells_and_names():
        if isinstance(cell, _FLOAT32_CELLS) or getattr(cell, "keep_float32", False):
            cell.to_float(ms.float32)
    return network


def loss_scale_value(loss_scaler):
    """The scale now in use (a float; reads the device), or None without scaling."""
    if loss_scaler is None:
        return None
    return float(loss_scaler.scale_value.asnumpy())
