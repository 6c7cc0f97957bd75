"""Evaluation: COCO result records and files, COCO AP. No model runs here (the loops that run
one are in ``apis.loops``), so this package does not import MindSpore."""
from .coco_eval import (METRIC_NAMES, REFUSED_IOU_TYPES, SUPPORTED_IOU_TYPES, check_iou_types,
                        evaluate_coco, format_per_class_table, format_summary, load_coco_gt,
                        per_class_ap)
from .results import (decode_mask_rle, encode_mask_rle, instances_to_coco,
                      instances_to_file_records, load_results, save_results, xyxy_to_xywh)

__all__ = [
    "METRIC_NAMES", "REFUSED_IOU_TYPES", "SUPPORTED_IOU_TYPES", "check_iou_types",
    "evaluate_coco", "format_per_class_table", "format_summary", "load_coco_gt", "per_class_ap",
    "decode_mask_rle", "encode_mask_rle", "instances_to_coco", "instances_to_file_records",
    "load_results", "save_results", "xyxy_to_xywh",
]
