from .conv_module import ConvModule, build_norm
from .coord import append_coord_channels

__all__ = ["ConvModule", "build_norm", "append_coord_channels"]
