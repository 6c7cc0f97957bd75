"""Checks of the paths a script will write, run before any model loads, and the file mode of what
it writes.

Each check raises ``OutputPathError`` (a ValueError, so the scripts report it in one line and exit
with 2) naming the option and the path: a file where a folder is wanted (or the reverse), a
parent that is a file, a folder the user cannot write, or an output that is one of the inputs
(``weight_convert.py x.pth x.pth`` or ``test.py --dataroot a.jpg --out a.jpg`` would otherwise
destroy the input).
"""
import os


class OutputPathError(ValueError):
    """An output path that cannot be written, or whose writing would destroy an input."""


def _same_file(path, other):
    """True when ``path`` and ``other`` name the same file (links and ``..`` resolved)."""
    if os.path.exists(path) and os.path.exists(other):
        return os.path.samefile(path, other)
    return os.path.realpath(path) == os.path.realpath(other)


def _check_writable_parent(option, path):
    """The nearest existing folder above ``path`` must be a folder the user can write in (missing
    folders below it are created by the writers)."""
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise OutputPathError(f"{option} {path}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputPathError(f"{option} {path}: cannot write in {parent} (permission denied)")


def check_output_file(option, path, inputs=()):
    """Raise OutputPathError unless ``path`` can be written as a file without touching ``inputs``.

    option: what the user gave, for the message (e.g. '--out', 'output checkpoint').
    inputs: [(what, path)] of files the run reads; None entries are ignored.
    """
    path = os.fspath(path)
    for what, input_path in inputs:
        if input_path is not None and _same_file(path, os.fspath(input_path)):
            raise OutputPathError(f"{option} {path} is the {what}: writing it would destroy "
                                  "the input; choose another file")
    if os.path.isdir(path):
        raise OutputPathError(f"{option} {path} is a folder; give a file name")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise OutputPathError(f"{option} {path}: the file is not writable (permission denied)")
    _check_writable_parent(option, path)


def check_output_image(option, path, inputs=()):
    """``check_output_file`` for a picture, whose extension must also name a format OpenCV
    writes (cv2.imwrite raises only after the model ran otherwise)."""
    import cv2  # only here: the other checks are used where OpenCV is not needed

    check_output_file(option, path, inputs)
    if not cv2.haveImageWriter(os.fspath(path)):
        raise OutputPathError(f"{option} {path}: not an image file name OpenCV can write "
                              "(use .jpg, .png or .bmp)")


def check_output_dir(option, path, inputs=()):
    """Raise OutputPathError unless ``path`` is (or can be created as) a folder the user can
    write in, and is none of ``inputs`` ([(what, path)], None entries ignored)."""
    path = os.fspath(path)
    for what, input_path in inputs:
        if input_path is not None and _same_file(path, os.fspath(input_path)):
            raise OutputPathError(f"{option} {path} is the {what}; choose another folder")
    if os.path.exists(path):
        if not os.path.isdir(path):
            raise OutputPathError(f"{option} {path} is a file, not a folder")
        if not os.access(path, os.W_OK | os.X_OK):
            raise OutputPathError(f"{option} {path}: cannot write in this folder "
                                  "(permission denied)")
        return
    _check_writable_parent(option, path)


def apply_umask(path):
    """Give a file written through a private temporary (mkstemp: 0600; MindSpore: 0400) the mode
    every other tool gives a new file: 0666 less the user's umask."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)
