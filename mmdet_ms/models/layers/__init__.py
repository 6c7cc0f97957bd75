from .conv_module import ConvModule, build_norm
from .coord import append_coord_channels
from .group_norm import GroupNorm, use_compiled_inference_form, use_compiled_training_form

__all__ = ["ConvModule", "GroupNorm", "build_norm", "append_coord_channels",
           "use_compiled_inference_form", "use_compiled_training_form"]
