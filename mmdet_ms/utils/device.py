"""The one place that chooses the device and the execution mode."""
import mindspore as ms

DEVICE_CHOICES = ("Ascend", "GPU", "CPU")


def best_available_device():
    """Ascend if its plugin is usable here, else GPU, else CPU."""
    for target in ("Ascend", "GPU"):
        try:
            if ms.hal.is_available(target):
                return target
        except (RuntimeError, ValueError, AttributeError):
            continue
    return "CPU"


def set_device(device_target=None, mode="pynative"):
    """Set MindSpore's device (``None``: the best available) and mode; returns the device name."""
    target = device_target or best_available_device()
    if target not in DEVICE_CHOICES:
        raise ValueError(f"--device_target must be one of {', '.join(DEVICE_CHOICES)}, got '{target}'")
    ms.set_context(mode=ms.GRAPH_MODE if mode == "graph" else ms.PYNATIVE_MODE)
    ms.set_device(target)
    return target


def add_device_argument(parser):
    """The ``--device_target`` flag every script shares."""
    parser.add_argument("--device_target", choices=DEVICE_CHOICES, default=None,
                        help="device to run on (default: the best available: Ascend, GPU, CPU)")
