"""CoordConv channels used by SOLOv2's kernel branch and mask feature head."""
import mindspore.ops as ops


def append_coord_channels(feat):
    """(N, C, H, W) → (N, C + 2, H, W): x then y, each ``linspace(-1, 1)`` across the map."""
    batch, _, height, width = feat.shape
    x_range = ops.linspace(-1.0, 1.0, width).astype(feat.dtype)
    y_range = ops.linspace(-1.0, 1.0, height).astype(feat.dtype)
    x = ops.broadcast_to(x_range.reshape(1, 1, 1, width), (batch, 1, height, width))
    y = ops.broadcast_to(y_range.reshape(1, 1, height, 1), (batch, 1, height, width))
    return ops.concat((feat, x, y), axis=1)
