"""The package's layers import only downwards: utils is a leaf, evaluation computes metrics
without running a model, the engine knows no model, apis sits on top."""
import ast
import os

import pytest

from conftest import REPO

PACKAGE = os.path.join(REPO, "mmdet_ms")
# Lower numbers are lower layers; a module may import its own layer or lower ones.
LAYERS = {"utils": 0, "registry": 1, "config": 1, "model_zoo": 2, "core": 3, "models": 4,
          "datasets": 4, "evaluation": 5, "engine": 6, "hub": 7, "apis": 7}


def top_level(module_path):
    relative = os.path.relpath(module_path, PACKAGE)
    return relative.split(os.sep)[0].removesuffix(".py")


def imported_layers(path):
    """(line, layer) of every mmdet_ms module ``path`` imports, relative or absolute."""
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    package_parts = os.path.relpath(os.path.dirname(path), REPO).split(os.sep)  # mmdet_ms/...
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[:len(package_parts) - node.level + 1]
                target = base + (node.module.split(".") if node.module else [])
                names = [target + [alias.name] for alias in node.names] if len(target) < 2 \
                    else [target]
            else:
                names = [node.module.split(".")]
        elif isinstance(node, ast.Import):
            names = [alias.name.split(".") for alias in node.names]
        else:
            continue
        for parts in names:
            if parts[0] == "mmdet_ms" and len(parts) > 1 and parts[1] in LAYERS:
                yield node.lineno, parts[1]


def package_modules():
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                yield os.path.join(folder, name)


@pytest.mark.parametrize("path", sorted(package_modules()),
                         ids=lambda p: os.path.relpath(p, PACKAGE))
def test_no_module_imports_a_layer_above_its_own(path):
    own = top_level(path)
    if own not in LAYERS:
        return  # mmdet_ms/__init__.py
    upward = [(line, layer) for line, layer in imported_layers(path)
              if LAYERS[layer] > LAYERS[own]]
    assert not upward, f"{own} imports {upward}"


def test_every_top_level_module_has_a_layer():
    names = {top_level(p) for p in package_modules()} - {"__init__"}
    assert names <= set(LAYERS), sorted(names - set(LAYERS))
