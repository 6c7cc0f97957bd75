"""Registries map a config's ``type`` to a class, mmdetection style.

A config ``dict(type='ResNet', depth=50)`` is built by ``BACKBONES.build(cfg)``. Keys are checked
against the constructor's signature before the call, so a misspelt key fails with the key's name
and a suggestion instead of a ``TypeError`` from deep inside.
"""
import difflib
import inspect


class ConfigError(ValueError):
    """A config names something that does not exist or has a wrong value."""


def _suggest(name, candidates):
    close = difflib.get_close_matches(name, list(candidates), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


class Registry:
    def __init__(self, name):
        self.name = name
        self._classes = {}

    def __contains__(self, key):
        return key in self._classes

    def __repr__(self):
        return f"Registry({self.name}: {sorted(self._classes)})"

    def get(self, key):
        if key not in self._classes:
            raise ConfigError(
                f"unknown {self.name} type '{key}'{_suggest(key, self._classes)}; "
                f"known: {', '.join(sorted(self._classes))}")
        return self._classes[key]

    def register_module(self, cls=None, name=None):
        """Decorator: ``@BACKBONES.register_module()`` or ``@BACKBONES.register_module``."""
        def register(klass):
            key = name or klass.__name__
            if key in self._classes and self._classes[key] is not klass:
                raise KeyError(f"{key} is already registered in {self.name}")
            self._classes[key] = klass
            return klass
        return register(cls) if cls is not None else register

    def build(self, cfg, **default_args):
        """Build ``cfg['type']`` with the other keys (and ``default_args``) as keyword arguments."""
        if not isinstance(cfg, dict) or "type" not in cfg:
            raise ConfigError(f"a {self.name} config must be a dict with a 'type' key, got {cfg!r}")
        kwargs = {k: v for k, v in cfg.items() if k != "type"}
        for key, value in default_args.items():
            kwargs.setdefault(key, value)
        klass = self.get(cfg["type"])
        check_kwargs(klass, kwargs, where=f"{self.name} '{cfg['type']}'")
        return klass(**kwargs)


def check_kwargs(func, kwargs, where):
    """Raise ConfigError naming the first key that ``func`` does not accept."""
    params = inspect.signature(func).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = [n for n, p in params.items() if n != "self"]
    for key in kwargs:
        if key not in accepted:
            raise ConfigError(f"{where} got an unknown key '{key}'{_suggest(key, accepted)}; "
                              f"accepted: {', '.join(accepted)}")
    for key, value in kwargs.items():
        wanted = _wanted_kind(params[key].default)
        if wanted and value is not None and not _KINDS[wanted](value):
            raise ConfigError(f"{where}: {key} must be {wanted} (as its default "
                              f"{params[key].default!r}), got {value!r:.40}")


# The kind of a keyword's default value, checked on the value a config gives (None always
# passes: it means "off" for many keys). Without this a string or a fraction given with
# --cfg-options fails as a TypeError deep inside, or is silently truthy ('maybe' for a bool).
_KINDS = {
    "True or False": lambda v: isinstance(v, bool),
    "an integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "a number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "a string": lambda v: isinstance(v, str),
    "a list or tuple": lambda v: isinstance(v, (list, tuple)),
}


def _wanted_kind(default):
    """The _KINDS key for a default value, or None where any value may do."""
    if isinstance(default, bool):
        return "True or False"
    if isinstance(default, int):
        return "an integer"
    if isinstance(default, float):
        return "a number"
    if isinstance(default, str):
        return "a string"
    if isinstance(default, (list, tuple)):
        return "a list or tuple"
    return None


BACKBONES = Registry("backbone")
NECKS = Registry("neck")
HEADS = Registry("head")
DETECTORS = Registry("detector")
DATASETS = Registry("dataset")
PIPELINES = Registry("pipeline")
OPTIMIZERS = Registry("optimizer")
LOSSES = Registry("loss")
HOOKS = Registry("hook")
