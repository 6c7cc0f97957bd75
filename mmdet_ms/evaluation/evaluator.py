"""Run a detector over a COCO-style test data set and collect COCO result records (valuation.py)."""
import os

from tqdm import tqdm

from ..apis import inference_detector
from ..datasets.transforms.loading import read_image
from ..registry import ConfigError
from ..utils.visualization import draw_instances, write_image
from .results import instances_to_coco


def check_num_classes(num_classes, dataset_classes, where="model.bbox_head.num_classes"):
    """SOLOv2 configs count the background: ``num_classes`` must be the data set's C + 1."""
    expected = len(dataset_classes) + 1
    if num_classes != expected:
        raise ConfigError(
            f"{where} is {num_classes} but the data set has {len(dataset_classes)} classes; "
            f"num_classes counts the background (COCO: 80 classes -> 81), so set it to "
            f"{expected} with --cfg-options model.bbox_head.num_classes={expected}")


def _check_image_size(image, img_info, path):
    height, width = image.shape[:2]
    if (height, width) != (int(img_info["height"]), int(img_info["width"])):
        raise ValueError(f"image {path} is {height}x{width} (h x w) but its annotation says "
                         f"{img_info['height']}x{img_info['width']}")


def run_dataset(model, dataset, show_dir=None, score_thr=0.3):
    """COCO result records of ``model`` on every image of ``dataset``, in data set order.

    Each image's masks are RLE-encoded as soon as it is done: full-size masks of a whole
    data set (COCO val: 5000 images x up to 100 masks) would not fit in memory.

    Args:
        dataset: a test-mode CocoDataset (``img_infos``, ``img_prefix``, ``label2cat``).
        show_dir: if given, each image is drawn there under its file name.
        score_thr: the lowest score drawn in ``show_dir`` (every instance is recorded).
    """
    records = []
    for img_info in tqdm(dataset.img_infos, desc="evaluating", unit="img"):
        path = os.path.join(dataset.img_prefix or "", img_info["filename"])
        image = read_image(path)
        _check_image_size(image, img_info, path)
        result = inference_detector(model, image)
        records += instances_to_coco(result, img_info["id"], dataset.label2cat)
        if show_dir is not None:
            write_image(os.path.join(show_dir, img_info["filename"]),
                        draw_instances(image, result, dataset.CLASSES, score_thr))
    return records
