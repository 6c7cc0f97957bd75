"""Points NMS of SOLO's category maps: keep a cell's score only where it is a local maximum."""
from mindspore import ops


def points_nms(heat):
    """(N, C, H, W) scores with every cell that is not a 2x2-window maximum set to 0.

    As in the original (``max_pool2d(kernel=2, stride=1, padding=1)`` cropped to ``[:-1, :-1]``),
    the window of cell (y, x) covers (y-1..y, x-1..x): a cell survives if it is >= its up, left
    and up-left neighbours; ties all survive. Runs in PyNative and GRAPH mode.
    """
    window_max = ops.max_pool2d(heat, kernel_size=2, stride=1, padding=1)  # (N, C, H+1, W+1)
    is_max = window_max[:, :, :-1, :-1] == heat
    return heat * is_max.astype(heat.dtype)
