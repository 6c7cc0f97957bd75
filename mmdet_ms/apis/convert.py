"""Convert an original SOLOv2 ``.pth`` (WXinlong/SOLO) into a MindSpore ``.ckpt``."""
import os

from ..config import Config
from ..model_zoo import guess_config
from ..models import build_detector
from ..utils.checkpoint import (convert_torch_state, read_torch_checkpoint, save_checkpoint,
                                torch_name)
from ..utils.paths import check_output_file


def convert(src, dst, config=None, cfg_options=None, verbose=False, unsafe_pickle=False):
    """Convert ``src`` (.pth) to ``dst`` (.ckpt), checking every tensor against the network built
    from ``config`` (None: guessed from the checkpoint). Returns (config path, number of tensors).
    ``unsafe_pickle``: read a file that pickles non-tensor objects (runs code from it)."""
    check_output_file("output checkpoint", dst, inputs=[("source checkpoint", src),
                                                        ("config file", config)])
    state, meta = read_torch_checkpoint(src, unsafe_pickle)
    options = dict(cfg_options or {})
    if config is None:
        config, num_classes = guess_config(state)
        options.setdefault("model.bbox_head.num_classes", num_classes)
    cfg = Config.fromfile(config, options)
    network = build_detector(cfg.model, cfg.get("train_cfg"), cfg.get("test_cfg"))
    params = convert_torch_state(state, network, source=src)
    if verbose:
        for name, _ in params:
            print(f"  {name}")
    out_meta = {"converted_from": os.path.basename(src), "config": os.path.basename(config)}
    if meta.get("CLASSES"):
        out_meta["CLASSES"] = list(meta["CLASSES"])
    save_checkpoint(params, dst, meta=out_meta)
    return config, len(params)


def original_state_layout(network):
    """[(name, shape)] of the original ``.pth`` state dict that fits ``network``: every parameter
    under its PyTorch name, and after each BatchNorm's ``running_var`` its ``num_batches_tracked``
    scalar. For writing key lists (``name<TAB>shape<TAB>dtype``) of configs other than R101."""
    layout = []
    for param in network.get_parameters():
        name = torch_name(param.name)
        layout.append((name, tuple(param.shape)))
        if name.endswith(".running_var"):
            layout.append((name[:-len("running_var")] + "num_batches_tracked", ()))
    return layout
