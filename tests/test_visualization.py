"""Drawing instances and the detections table (mmdet_ms.utils.visualization)."""
import numpy as np
import pytest

from mmdet_ms.core.instances import InstanceResult
from mmdet_ms.utils.visualization import (draw_instances, format_detections_table,
                                          instance_color)

CLASS_NAMES = ("person", "bicycle", "traffic light")
HEIGHT, WIDTH = 120, 160


def _gray_image():
    return np.full((HEIGHT, WIDTH, 3), 128, np.uint8)


def _two_instances():
    """A big square (score 0.9) in the lower left and a small one (0.6) in the lower right."""
    masks = np.zeros((2, HEIGHT, WIDTH), bool)
    masks[0, 60:110, 10:60] = True
    masks[1, 80:100, 110:130] = True
    return InstanceResult(masks=masks, labels=[0, 2], scores=[0.9, 0.6])


def _label_band(box):
    """Rows where the label of an instance with ``box`` may be drawn (it may shift sideways
    to stay inside the image)."""
    y1 = int(box[1])
    band = np.zeros((HEIGHT, WIDTH), bool)
    band[max(0, y1 - 25):y1, :] = True
    return band


def test_masks_are_blended_and_nothing_else_changes():
    image = _gray_image()
    result = _two_instances()
    drawn = draw_instances(image, result, CLASS_NAMES, score_thr=0.3, alpha=0.5)
    assert drawn.shape == image.shape and drawn.dtype == np.uint8
    np.testing.assert_array_equal(image, _gray_image())  # the input is left as it was
    changed = np.any(drawn != image, axis=2)
    assert changed[result.masks.any(axis=0)].all()
    allowed = result.masks.any(axis=0)
    for box in result.boxes:
        allowed |= _label_band(box)
    assert not changed[~allowed].any()
    # The interior of the big mask is the 50/50 blend of gray and its colour.
    expected = np.rint(0.5 * 128 + 0.5 * np.array(instance_color(0), np.float32))
    np.testing.assert_array_equal(drawn[85, 35], expected.astype(np.uint8))


def test_labels_are_drawn_above_each_instance():
    drawn = draw_instances(_gray_image(), _two_instances(), CLASS_NAMES, score_thr=0.3)
    changed = np.any(drawn != _gray_image(), axis=2)
    assert changed[45:60, 10:60].any()    # label strip above the big square
    assert changed[65:80, 110:130].any()  # label strip above the small square


def test_instances_below_threshold_are_not_drawn():
    image = _gray_image()
    result = _two_instances()
    drawn = draw_instances(image, result, CLASS_NAMES, score_thr=0.7)
    changed = np.any(drawn != image, axis=2)
    assert changed[result.masks[0]].all()
    assert not changed[result.masks[1]].any()
    assert not changed[60:80, 100:].any()  # nor its label


def test_no_instance_returns_an_unchanged_copy():
    image = _gray_image()
    drawn = draw_instances(image, InstanceResult.empty(HEIGHT, WIDTH), CLASS_NAMES)
    np.testing.assert_array_equal(drawn, image)
    assert drawn is not image


def test_colours_are_deterministic_and_distinct():
    colors = [instance_color(index) for index in range(20)]
    assert colors == [instance_color(index) for index in range(20)]
    assert len(set(colors)) == 20
    for first, second in zip(colors, colors[1:]):
        assert np.abs(np.subtract(first, second)).max() > 60


def test_bad_inputs_are_reported():
    with pytest.raises(ValueError, match="do not match the image size"):
        draw_instances(np.zeros((10, 10, 3), np.uint8), _two_instances(), CLASS_NAMES)
    with pytest.raises(ValueError, match="uint8 BGR"):
        draw_instances(np.zeros((HEIGHT, WIDTH), np.uint8), _two_instances(), CLASS_NAMES)
    with pytest.raises(ValueError, match="label 2 has no class name"):
        draw_instances(_gray_image(), _two_instances(), CLASS_NAMES[:2])


def test_detections_table():
    table = format_detections_table(_two_instances(), CLASS_NAMES, score_thr=0.3)
    lines = table.splitlines()
    assert len(lines) == 3
    assert lines[1].split() == ["0", "person", "0.90", "10,", "60,", "60,", "110"]
    assert "traffic light" in lines[2] and "0.60" in lines[2]
    assert len(format_detections_table(_two_instances(), CLASS_NAMES, 0.8).splitlines()) == 2
    assert "no detection" in format_detections_table(_two_instances(), CLASS_NAMES, 0.95)
