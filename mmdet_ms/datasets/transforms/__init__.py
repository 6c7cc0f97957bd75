"""Data pipeline transforms, registered in ``mmdet_ms.registry.PIPELINES`` by their class names."""
from .compose import Compose, MultiScaleFlipAug
from .formatting import Collect, DefaultFormatBundle, ImageToTensor, Normalize
from .geometric import Pad, RandomFlip, Resize
from .loading import ImageReadError, LoadAnnotations, LoadImage, LoadImageFromFile, ann_to_mask, read_image

__all__ = [
    "Compose", "MultiScaleFlipAug", "Collect", "DefaultFormatBundle", "ImageToTensor", "Normalize",
    "Pad", "RandomFlip", "Resize", "ImageReadError", "LoadAnnotations", "LoadImage",
    "LoadImageFromFile", "ann_to_mask", "read_image",
]
