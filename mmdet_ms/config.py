"""Python config files, mmdetection style: ``_base_`` inheritance and ``--cfg-options`` overrides.

A config is a ``.py`` file of top-level assignments. Its public names (no leading ``_``; modules,
functions and classes left out) become the keys of a :class:`ConfigDict`::

    _base_ = ['../_base_/model.py', '../_base_/schedule.py']   # relative to this file
    model = dict(bbox_head=dict(num_classes=23))               # merged into the base's model
    optimizer = dict(_delete_=True, type='SGD', lr=0.01)       # replaces the base's optimizer

Bases are merged in order, then the child is merged on top: dicts key by key, any other value
(and a dict carrying ``_delete_=True``) replaces the inherited one. A child file cannot read its
bases' variables: each file is executed on its own, and only the resulting values are merged.

Overrides (``merge_from_dict``, ``--cfg-options``) are strict: every part of a dotted key must
already exist, so a misspelt key fails with a suggestion instead of silently adding a new key.
Integer parts index into lists and tuples (``data.train.pipeline.2.img_scale``).
"""
import argparse
import ast
import copy
import difflib
import keyword
import os
import traceback
import types

from .registry import ConfigError

BASE_KEY = "_base_"
DELETE_KEY = "_delete_"
_LINE_WIDTH = 100
_INDENT = "    "


def _did_you_mean(name, candidates):
    close = difflib.get_close_matches(str(name), [str(c) for c in candidates], n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _to_config_value(value):
    """Turn every dict inside ``value`` (also inside lists and tuples) into a ConfigDict."""
    if isinstance(value, dict) and not isinstance(value, ConfigDict):
        return ConfigDict(value)
    if isinstance(value, list):
        return [_to_config_value(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_to_config_value(item) for item in value)
    return value


def _to_plain_value(value):
    if isinstance(value, dict):
        return {key: _to_plain_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_to_plain_value(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_to_plain_value(item) for item in value)
    return value


class ConfigDict(dict):
    """A dict whose keys are also attributes (``cfg.model.bbox_head.num_classes``).

    Nested dicts, also those inside lists and tuples, are ConfigDicts too. A key that shadows a
    dict method (``keys``, ``items``, ``copy``...) is reachable only as ``cfg['keys']``.
    """

    __slots__ = ()

    def __init__(self, *args, **kwargs):
        super().__init__()
        self.update(*args, **kwargs)

    def __setitem__(self, key, value):
        super().__setitem__(key, _to_config_value(value))

    def update(self, *args, **kwargs):
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def setdefault(self, key, default=None):
        if key not in self:
            self[key] = default
        return self[key]

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(
                f"config has no key '{name}'{_did_you_mean(name, self.keys())}") from None

    def __setattr__(self, name, value):
        self[name] = value

    def __delattr__(self, name):
        try:
            del self[name]
        except KeyError:
            raise AttributeError(f"config has no key '{name}'") from None

    def __deepcopy__(self, memo):
        return ConfigDict({key: copy.deepcopy(value, memo) for key, value in self.items()})

    def __reduce__(self):
        return ConfigDict, (dict(self),)

    def to_dict(self):
        """Plain nested dicts, lists and tuples (no ConfigDict left)."""
        return _to_plain_value(self)


def _strip_delete_keys(value):
    """Drop ``_delete_`` markers at any depth of a value that is taken over whole."""
    if isinstance(value, dict):
        return {key: _strip_delete_keys(item) for key, item in value.items() if key != DELETE_KEY}
    if isinstance(value, list):
        return [_strip_delete_keys(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_strip_delete_keys(item) for item in value)
    return value


def merge_config_dicts(base, child):
    """Return ``base`` updated by ``child``: dicts merge key by key, other values replace.

    A dict in ``child`` with ``_delete_=True`` replaces the base's value instead of merging.
    Neither argument is modified.
    """
    merged = dict(base)
    for key, value in child.items():
        inherited = merged.get(key)
        if (isinstance(value, dict) and isinstance(inherited, dict)
                and not value.get(DELETE_KEY, False)):
            merged[key] = merge_config_dicts(inherited, value)
        else:
            merged[key] = _strip_delete_keys(value)
    return merged


def _located_error(path, exc):
    """One-line ConfigError for an exception raised while executing config file ``path``."""
    if isinstance(exc, SyntaxError):
        return ConfigError(f"{path}:{exc.lineno}: syntax error: {exc.msg}")
    frames = [frame for frame in traceback.extract_tb(exc.__traceback__) if frame.filename == path]
    line = f":{frames[-1].lineno}" if frames else ""
    return ConfigError(f"{path}{line}: {type(exc).__name__}: {exc}")


def _is_config_value(name, value):
    if name.startswith("_") and name != BASE_KEY:
        return False
    return not isinstance(value, (types.ModuleType, types.FunctionType, type))


def _execute_config_file(path):
    """Run the config file; return (its public names and values, its source text)."""
    with open(path, encoding="utf-8") as source_file:
        text = source_file.read()
    namespace = {"__file__": path, "__name__": "__config__"}
    try:
        exec(compile(text, path, "exec"), namespace)  # noqa: S102 - configs are trusted code
    except Exception as exc:  # any error in the user's file becomes one located line
        raise _located_error(path, exc) from exc
    values = {name: value for name, value in namespace.items() if _is_config_value(name, value)}
    return values, text


def _base_paths(path, base_value):
    if isinstance(base_value, str):
        base_value = [base_value]
    if not (isinstance(base_value, (list, tuple)) and all(isinstance(b, str) for b in base_value)):
        raise ConfigError(f"{path}: {BASE_KEY} must be a file name or a list of file names, "
                          f"got {base_value!r}")
    config_dir = os.path.dirname(path)
    return [os.path.normpath(os.path.join(config_dir, base)) for base in base_value]


def _load_with_bases(path, chain=()):
    """Return (merged values, [(file, source text)] in load order) for ``path`` and its bases."""
    path = os.path.abspath(path)
    if path in chain:
        raise ConfigError(f"circular {BASE_KEY}: {' -> '.join(chain + (path,))}")
    if not os.path.isfile(path):
        referrer = f" (a {BASE_KEY} of {chain[-1]})" if chain else ""
        raise FileNotFoundError(f"config file not found: {path}{referrer}")
    if not path.endswith(".py"):
        raise ConfigError(f"{path}: only Python (.py) config files are supported")
    values, text = _execute_config_file(path)
    merged, sources = {}, []
    if BASE_KEY in values:
        for base_path in _base_paths(path, values.pop(BASE_KEY)):
            base_values, base_sources = _load_with_bases(base_path, chain + (path,))
            merged = merge_config_dicts(merged, base_values)
            sources += base_sources
    merged = merge_config_dicts(merged, values)
    return merged, sources + [(path, text)]


def _set_by_path(node, parts, value, done=()):
    """Return ``node`` with the value at key path ``parts`` replaced; ``done``: the parts walked.

    Lists are changed in place; a tuple is rebuilt, so the caller stores the returned node.
    """
    part, here = parts[0], ".".join(done + (parts[0],))
    full_key = ".".join(done + tuple(parts))
    setting = f" (setting '{full_key}')" if len(parts) > 1 else ""
    if isinstance(node, dict):
        if part not in node:
            raise ConfigError(f"--cfg-options: '{here}' does not exist"
                              f"{_did_you_mean(part, node.keys())}{setting}")
        key = part
    elif isinstance(node, (list, tuple)):
        if not part.lstrip("-").isdigit():
            raise ConfigError(f"--cfg-options: '{here}': a list needs an integer index, "
                              f"got '{part}'{setting}")
        key = int(part)
        if not -len(node) <= key < len(node):
            raise ConfigError(f"--cfg-options: '{here}': index {key} is out of range for a list "
                              f"of {len(node)} items{setting}")
        key %= len(node)
    else:
        raise ConfigError(f"--cfg-options: '{full_key}': '{'.'.join(done)}' holds a "
                          f"{type(node).__name__}, which has no key '{part}'")
    new_item = value if len(parts) == 1 else _set_by_path(node[key], parts[1:], value,
                                                          done + (part,))
    if isinstance(node, tuple):
        return node[:key] + (new_item,) + node[key + 1:]
    node[key] = new_item
    return node


def _is_keyword_argument(key):
    """Whether ``key`` can be written as ``dict(key=...)``."""
    return isinstance(key, str) and key.isidentifier() and not keyword.iskeyword(key)


def _format_value(value, indent, lead=0):
    """Python source that evaluates to ``value``; one line if it fits, else one item per line.

    ``lead``: characters already on the line after the indentation (``key=``), for the fit check.
    """
    if isinstance(value, dict):
        if all(_is_keyword_argument(key) for key in value):
            items = [f"{key}=" + _format_value(item, indent + 1, len(key) + 1)
                     for key, item in value.items()]
            opener, closer = "dict(", ")"
        else:
            items = [f"{key!r}: " + _format_value(item, indent + 1, len(repr(key)) + 2)
                     for key, item in value.items()]
            opener, closer = "{", "}"
    elif isinstance(value, list):
        items = [_format_value(item, indent + 1) for item in value]
        opener, closer = "[", "]"
    elif isinstance(value, tuple):
        items = [_format_value(item, indent + 1) for item in value]
        opener, closer = "(", ",)" if len(value) == 1 else ")"
    else:
        return repr(value)
    one_line = opener + ", ".join(items) + closer
    width = len(_INDENT) * indent + lead + len(one_line) + 1  # + 1: the comma after an item
    if "\n" not in one_line and width <= _LINE_WIDTH:
        return one_line
    inner = _INDENT * (indent + 1)
    closer = closer.lstrip(",")
    body = "".join(f"{inner}{item},\n" for item in items)
    return f"{opener}\n{body}{_INDENT * indent}{closer}"


def _pretty_text(values):
    return "".join(f"{name} = {_format_value(value, 0, len(name) + 3)}\n"
                   for name, value in values.items())


class Config:
    """A loaded config: attribute and item access to its values, plus where they came from.

    ``cfg.model.bbox_head.num_classes``, ``cfg['data']``, ``'work_dir' in cfg`` and
    ``cfg.get('resume_from')`` all read the merged values; ``cfg.work_dir = ...`` sets one.
    """

    def __init__(self, cfg_dict=None, filename=None, text=""):
        object.__setattr__(self, "_cfg_dict", ConfigDict(cfg_dict or {}))
        object.__setattr__(self, "_filename", filename)
        object.__setattr__(self, "_text", text)

    @staticmethod
    def fromfile(path, cfg_options=None):
        """Load ``path`` with its ``_base_`` files, then apply the ``cfg_options`` overrides."""
        path = os.fspath(path)
        values, sources = _load_with_bases(path)
        text = "\n".join(f"# {source_path}\n{source}" for source_path, source in sources)
        config = Config(values, filename=path, text=text)
        if cfg_options:
            config.merge_from_dict(cfg_options)
        return config

    @property
    def filename(self):
        return self._filename

    @property
    def text(self):
        """The source texts of the file and its bases, bases first, each under a ``# path`` line."""
        return self._text

    @property
    def pretty_text(self):
        """Python source that re-creates the merged config (no ``_base_`` left)."""
        return _pretty_text(self._cfg_dict)

    def dump(self, path):
        """Write ``pretty_text`` to ``path`` (a ``.py`` file that ``fromfile`` reads back)."""
        path = os.fspath(path)
        if not path.endswith(".py"):
            raise ValueError(f"{path}: a config can only be dumped as a .py file")
        with open(path, "w", encoding="utf-8") as out_file:
            out_file.write(self.pretty_text)

    def merge_from_dict(self, options):
        """Set values by dotted keys, e.g. ``{'model.bbox_head.num_classes': 23}``.

        Every key part must exist (``ConfigError`` with a suggestion otherwise); integer parts
        index into lists and tuples. The value replaces the old one whole, dicts included.
        """
        for full_key, value in options.items():
            _set_by_path(self._cfg_dict, full_key.split("."), _to_config_value(value))

    def to_dict(self):
        return self._cfg_dict.to_dict()

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._cfg_dict, name)

    def __setattr__(self, name, value):
        self._cfg_dict[name] = value

    def __getitem__(self, key):
        return self._cfg_dict[key]

    def __setitem__(self, key, value):
        self._cfg_dict[key] = value

    def __contains__(self, key):
        return key in self._cfg_dict

    def __iter__(self):
        return iter(self._cfg_dict)

    def __len__(self):
        return len(self._cfg_dict)

    def __getstate__(self):
        return {"cfg_dict": self._cfg_dict, "filename": self._filename, "text": self._text}

    def __setstate__(self, state):
        object.__setattr__(self, "_cfg_dict", state["cfg_dict"])
        object.__setattr__(self, "_filename", state["filename"])
        object.__setattr__(self, "_text", state["text"])

    def __repr__(self):
        return f"Config(filename={self._filename!r}): {self._cfg_dict.to_dict()!r}"


def parse_cfg_value(text):
    """A ``--cfg-options`` value as Python: True/False/None in any case, literals, else the str."""
    text = text.strip()
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError):
        return text


def parse_cfg_options(items):
    """``["a.b=1", "x=[1,2]"]`` -> ``{"a.b": 1, "x": [1, 2]}``; later items override earlier."""
    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--cfg-options: '{item}' is not KEY=VALUE")
        options[key.strip()] = parse_cfg_value(value)
    return options


class CfgOptionsAction(argparse.Action):
    """Store ``KEY=VALUE ...`` as the dict that ``parse_cfg_options`` returns."""

    def __call__(self, parser, namespace, values, option_string=None):
        try:
            setattr(namespace, self.dest, parse_cfg_options(values))
        except ConfigError as err:
            raise argparse.ArgumentError(self, str(err)) from err


def add_cfg_options_argument(parser):
    """Add the ``--cfg-options KEY=VALUE [KEY=VALUE ...]`` flag every root script shares."""
    parser.add_argument(
        "--cfg-options", nargs="+", action=CfgOptionsAction, default=None, metavar="KEY=VALUE",
        help="override config values, e.g. model.bbox_head.num_classes=23 "
             "data.train.pipeline.2.img_scale=(1333,800); every key must already exist")
    return parser


# Types of the training values that no registry builds (the registries check the keys a class
# takes, see ``registry.check_kwargs``): checked before the data and the model load, so that
# ``--cfg-options total_epochs=x`` is one line naming the key instead of a TypeError mid-run.


def _is_int_value(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number_value(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _steps_ok(step):
    if _is_int_value(step):
        return step >= 1
    return (isinstance(step, (list, tuple)) and len(step) > 0
            and all(_is_int_value(s) and s >= 0 for s in step))


# dotted key -> (test, what it must be); a key the config leaves out is not checked here.
_TRAIN_VALUES = {
    "total_epochs": (lambda v: _is_int_value(v) and v >= 1, "an integer >= 1"),
    "optimizer.lr": (lambda v: _is_number_value(v) and v > 0, "a number > 0"),
    "lr_config.step": (_steps_ok, "an epoch count >= 1 or a non-empty list of epochs"),
    "lr_config.gamma": (_is_number_value, "a number"),
    "lr_config.warmup_iters": (lambda v: _is_int_value(v) and v >= 0, "an integer >= 0"),
    "lr_config.warmup_ratio": (_is_number_value, "a number"),
}


def _lookup_dotted(cfg, dotted):
    node = cfg
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def check_train_cfg(cfg):
    """Raise ConfigError naming the first training value of the wrong type."""
    values = cfg.to_dict() if hasattr(cfg, "to_dict") else cfg
    for key, (valid, wanted) in _TRAIN_VALUES.items():
        value = _lookup_dotted(values, key)
        if value is not None and not valid(value):
            raise ConfigError(f"{key} must be {wanted}, got {value!r:.40}")
