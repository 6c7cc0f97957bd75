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
    try:
        ms.set_device(target)
    except RuntimeError:
        # MindSpore refuses set_device once a kernel has run in this process (the caller ran
        # MindSpore code first); that is harmless when the runtime already runs on ``target``.
        if ms.get_context("device_target") != target:
            raise
    return target


def add_device_argument(parser):
    """The ``--device_target`` flag every script shares."""
    parser.add_argument("--device_target", choices=DEVICE_CHOICES, default=None,
                        help="device to run on (default: the best available: Ascend, GPU, CPU)")
