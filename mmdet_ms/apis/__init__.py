from .inference import inference_batch, inference_detector, init_detector, init_mindir_detector

__all__ = ["init_detector", "init_mindir_detector", "inference_detector", "inference_batch"]
