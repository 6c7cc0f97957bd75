import mmdet_ms  # noqa: F401  (sets the environment before MindSpore loads)
import mindspore as ms
import numpy as np
import pytest
import torch
from mindspore import nn

from mmdet_ms.models.layers.points_nms import points_nms


class _PointsNMSCell(nn.Cell):
    """points_nms inside a Cell, so that GRAPH mode compiles it."""

    def construct(self, heat):
        return points_nms(heat)


@pytest.fixture(params=["pynative", "graph"])
def run_points_nms(request):
    """points_nms run in the requested mode; PyNative restored afterwards."""
    ms.set_device("CPU")
    if request.param == "graph":
        ms.set_context(mode=ms.GRAPH_MODE)
        cell = _PointsNMSCell()
        yield lambda heat: cell(ms.Tensor(heat)).asnumpy()
    else:
        ms.set_context(mode=ms.PYNATIVE_MODE)
        yield lambda heat: points_nms(ms.Tensor(heat)).asnumpy()
    ms.set_context(mode=ms.PYNATIVE_MODE)


def _torch_points_nms(heat):
    """The original: max_pool2d(kernel 2, stride 1, padding 1), crop, keep the maxima."""
    heat = torch.from_numpy(heat)
    hmax = torch.nn.functional.max_pool2d(heat, (2, 2), stride=1, padding=1)
    return (heat * (hmax[:, :, :-1, :-1] == heat).float()).numpy()


def test_hand_case_keeps_cells_not_below_up_left_neighbours(run_points_nms):
    heat = np.array([[0.1, 0.5, 0.2],
                     [0.3, 0.4, 0.6],
                     [0.7, 0.1, 0.6]], dtype=np.float32)
    # A cell survives if it is >= its up, left and up-left neighbours (those inside the map):
    # (0,0) has none; (0,2) < left 0.5; (1,1) < up 0.5; (2,1) < left 0.7;
    # (2,2) ties its up neighbour 0.6 and survives; (0,0) = 0.1 survives although its
    # lower neighbours are larger (the window only looks up and left).
    expected = np.array([[0.1, 0.5, 0.0],
                         [0.3, 0.0, 0.6],
                         [0.7, 0.0, 0.6]], dtype=np.float32)
    np.testing.assert_array_equal(run_points_nms(heat[None, None]), expected[None, None])


def test_constant_map_keeps_every_cell(run_points_nms):
    heat = np.full((1, 2, 4, 5), 0.25, dtype=np.float32)
    np.testing.assert_array_equal(run_points_nms(heat), heat)


def test_random_maps_with_ties_and_negatives_match_torch(run_points_nms):
    rng = np.random.default_rng(0)
    uniform = rng.random((2, 3, 7, 9), dtype=np.float32)
    tied = (rng.integers(0, 4, size=(2, 3, 7, 9)) / 4).astype(np.float32)
    negative = rng.standard_normal((2, 3, 7, 9)).astype(np.float32) - 3
    for heat in (uniform, tied, negative):
        result = run_points_nms(heat)
        assert result.shape == heat.shape
        np.testing.assert_array_equal(result, _torch_points_nms(heat))
