"""Data in, batches out: COCO-format datasets, transform pipelines, samplers and loaders."""
from . import transforms  # registers the pipeline transforms
from .builder import build_dataset, check_num_classes
from .canvas import resolve_canvas
from .coco import CocoDataset, load_coco
from .loader import AddToBatch, DataLoader, GroupSampler, build_dataloader, collate
from .synthetic import CATEGORIES as SYNTHETIC_CATEGORIES
from .synthetic import make_synthetic_coco
from .transforms import Compose, ImageReadError

__all__ = [
    "transforms", "build_dataset", "check_num_classes", "resolve_canvas", "CocoDataset",
    "load_coco", "AddToBatch", "DataLoader", "GroupSampler", "build_dataloader", "collate",
    "SYNTHETIC_CATEGORIES", "make_synthetic_coco", "Compose", "ImageReadError",
]
