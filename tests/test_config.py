"""Config files: _base_ inheritance, _delete_, --cfg-options overrides, dump and pickle."""
import argparse
import copy
import pickle
import textwrap

import pytest

from mmdet_ms.config import (Config, ConfigDict, add_cfg_options_argument, parse_cfg_options,
                             parse_cfg_value)
from mmdet_ms.registry import ConfigError

BASE_MODEL = """
model = dict(
    type='SOLOv2',
    backbone=dict(type='ResNet', depth=101, out_indices=(0, 1, 2, 3)),
    bbox_head=dict(type='SOLOv2Head', num_classes=81, num_grids=[40, 36, 24, 16, 12]),
)
optimizer = dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001)
optimizer_config = dict(grad_clip=None)
"""

BASE_DATA = """
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', img_scale=[(1333, 800), (1333, 768)], keep_ratio=True),
    dict(type='Pad', size_divisor=32),
]
data = dict(imgs_per_gpu=2, train=dict(type='CocoDataset', pipeline=train_pipeline))
"""


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def config_dir(tmp_path):
    write(tmp_path / "_base_" / "model.py", BASE_MODEL)
    write(tmp_path / "_base_" / "data.py", BASE_DATA)
    return tmp_path


def test_single_base_merges_nested_dicts(config_dir):
    child = write(config_dir / "child.py", """
        _base_ = '_base_/model.py'
        model = dict(bbox_head=dict(num_classes=23))
        total_epochs = 36
    """)
    cfg = Config.fromfile(child)
    assert cfg.model.bbox_head.num_classes == 23
    assert cfg.model.bbox_head.num_grids == [40, 36, 24, 16, 12]
    assert cfg.model.backbone.depth == 101
    assert cfg.optimizer.lr == 0.01
    assert cfg.total_epochs == 36
    assert "_base_" not in cfg
    assert isinstance(cfg.model.bbox_head, ConfigDict)


def test_list_of_bases_merge_in_order(config_dir):
    write(config_dir / "_base_" / "schedule.py", "optimizer = dict(lr=0.02)\ntotal_epochs = 12\n")
    child = write(config_dir / "child.py", """
        _base_ = ['_base_/model.py', '_base_/data.py', '_base_/schedule.py']
        total_epochs = 36
    """)
    cfg = Config.fromfile(child)
    assert cfg.optimizer == dict(type="SGD", lr=0.02, momentum=0.9, weight_decay=0.0001)
    assert cfg.data.train.pipeline[1].img_scale == [(1333, 800), (1333, 768)]
    assert cfg.total_epochs == 36


def test_nested_base_chain_resolves_paths_relative_to_each_file(config_dir):
    write(config_dir / "solov2" / "r101.py", """
        _base_ = ['../_base_/model.py', '../_base_/data.py']
        model = dict(backbone=dict(depth=50))
    """)
    write(config_dir / "solov2" / "trashcan" / "r101_trashcan.py", """
        _base_ = '../r101.py'
        model = dict(bbox_head=dict(num_classes=23))
        data = dict(imgs_per_gpu=1)
    """)
    cfg = Config.fromfile(config_dir / "solov2" / "trashcan" / "r101_trashcan.py")
    assert cfg.model.backbone.depth == 50
    assert cfg.model.bbox_head.num_classes == 23
    assert cfg.data.imgs_per_gpu == 1
    assert cfg.data.train.type == "CocoDataset"
    source_order = [line for line in cfg.text.splitlines() if line.startswith("# /")]
    assert [line.rsplit("/", 1)[-1] for line in source_order] == [
        "model.py", "data.py", "r101.py", "r101_trashcan.py"]


def test_delete_replaces_instead_of_merging(config_dir):
    child = write(config_dir / "child.py", """
        _base_ = '_base_/model.py'
        optimizer = dict(_delete_=True, type='Adam', lr=0.001)
        optimizer_config = dict(grad_clip=dict(max_norm=35, norm_type=2))
        model = dict(backbone='a plain string replaces the dict')
    """)
    cfg = Config.fromfile(child)
    assert cfg.optimizer.to_dict() == {"type": "Adam", "lr": 0.001}
    assert cfg.optimizer_config.grad_clip == dict(max_norm=35, norm_type=2)
    assert cfg.model.backbone == "a plain string replaces the dict"
    assert cfg.model.bbox_head.num_classes == 81


def test_private_names_modules_and_functions_are_not_config_keys(tmp_path):
    path = write(tmp_path / "cfg.py", """
        import os
        def helper():
            return 3
        _scratch = 5
        depth = helper() + _scratch
    """)
    assert Config.fromfile(path).to_dict() == {"depth": 8}


def test_cfg_options_override_nested_keys_and_list_items(config_dir):
    child = write(config_dir / "child.py", "_base_ = ['_base_/model.py', '_base_/data.py']\n")
    options = parse_cfg_options([
        "model.bbox_head.num_classes=23", "data.imgs_per_gpu=1",
        "data.train.pipeline.1.img_scale=(1333,800)", "model.backbone.out_indices.-1=5",
        "model.bbox_head.num_grids.0=42"])
    cfg = Config.fromfile(child, cfg_options=options)
    assert cfg.model.bbox_head.num_classes == 23
    assert cfg.data.imgs_per_gpu == 1
    assert cfg.data.train.pipeline[1].img_scale == (1333, 800)
    assert cfg.model.backbone.out_indices == (0, 1, 2, 5)
    assert cfg.model.bbox_head.num_grids == [42, 36, 24, 16, 12]


def test_override_with_a_dict_value_replaces_and_converts(config_dir):
    cfg = Config.fromfile(write(config_dir / "c.py", "_base_ = '_base_/model.py'\n"))
    cfg.merge_from_dict({"optimizer_config.grad_clip": {"max_norm": 35}})
    assert cfg.optimizer_config.grad_clip.max_norm == 35


@pytest.mark.parametrize("key, message", [
    ("model.bbox_head.num_clases",
     "--cfg-options: 'model.bbox_head.num_clases' does not exist (did you mean 'num_classes'?)"),
    ("model.bbox_hed.num_classes",
     "--cfg-options: 'model.bbox_hed' does not exist (did you mean 'bbox_head'?) "
     "(setting 'model.bbox_hed.num_classes')"),
    ("model.bbox_head.num_grids.5", "index 5 is out of range for a list of 5 items"),
    ("model.bbox_head.num_grids.first", "a list needs an integer index, got 'first'"),
    ("model.type.name", "'model.type' holds a str, which has no key 'name'"),
    ("new_top_level_key", "'new_top_level_key' does not exist"),
])
def test_override_of_a_missing_key_names_it(config_dir, key, message):
    cfg = Config.fromfile(write(config_dir / "c.py", "_base_ = '_base_/model.py'\n"))
    with pytest.raises(ConfigError) as error:
        cfg.merge_from_dict({key: 1})
    assert message in str(error.value)
    assert cfg.model.bbox_head.num_classes == 81


@pytest.mark.parametrize("text, expected", [
    ("1", 1), ("-3", -3), ("0.5", 0.5), ("1e-3", 0.001),
    ("true", True), ("True", True), ("false", False), ("FALSE", False),
    ("None", None), ("none", None),
    ("[1,2]", [1, 2]), ("(1333,800)", (1333, 800)), ("1333,800", (1333, 800)),
    ("{'a': 1}", {"a": 1}), ("'quoted'", "quoted"),
    ("abc", "abc"), ("data/coco/", "data/coco/"), ("SGD ", "SGD"), ("", ""),
])
def test_parse_cfg_value(text, expected):
    value = parse_cfg_value(text)
    assert value == expected and type(value) is type(expected)


def test_parse_cfg_options_builds_a_dict():
    options = parse_cfg_options(
        ["a.b=1", "x=[1,2]", "y=(1333,800)", "z=None", "w=true", "s=abc", "e=a=b", "a.b=2"])
    assert options == {"a.b": 2, "x": [1, 2], "y": (1333, 800), "z": None, "w": True,
                       "s": "abc", "e": "a=b"}


@pytest.mark.parametrize("item", ["novalue", "=3"])
def test_parse_cfg_options_rejects_items_without_key(item):
    with pytest.raises(ConfigError, match="is not KEY=VALUE"):
        parse_cfg_options([item])


def test_cfg_options_argument(capsys):
    parser = add_cfg_options_argument(argparse.ArgumentParser(prog="train.py"))
    assert parser.parse_args([]).cfg_options is None
    args = parser.parse_args(["--cfg-options", "model.bbox_head.num_classes=23", "w=false"])
    assert args.cfg_options == {"model.bbox_head.num_classes": 23, "w": False}
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["--cfg-options", "oops"])
    assert exit_info.value.code == 2
    assert "'oops' is not KEY=VALUE" in capsys.readouterr().err


def test_missing_attribute_suggests_a_key(config_dir):
    cfg = Config.fromfile(config_dir / "_base_" / "model.py")
    with pytest.raises(AttributeError, match=r"no key 'bbox_haed' \(did you mean 'bbox_head'\?\)"):
        _ = cfg.model.bbox_haed
    with pytest.raises(AttributeError, match="did you mean 'model'"):
        _ = cfg.modle
    assert not hasattr(cfg, "work_dir")


def test_missing_config_and_missing_base_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.py"):
        Config.fromfile(tmp_path / "nowhere.py")
    child = write(tmp_path / "child.py", "_base_ = ['_base_/absent.py']\n")
    with pytest.raises(FileNotFoundError, match=r"absent\.py \(a _base_ of .*child\.py\)"):
        Config.fromfile(child)


def test_syntax_error_is_one_line_with_file_and_line(tmp_path):
    path = write(tmp_path / "broken.py", "model = dict(\n    type='SOLOv2',\n    depth=101 50)\n")
    with pytest.raises(ConfigError) as error:
        Config.fromfile(path)
    message = str(error.value)
    assert message.startswith(f"{path}:3: syntax error")
    assert "\n" not in message


def test_runtime_error_in_config_names_file_and_line(tmp_path):
    path = write(tmp_path / "undefined.py", "a = 1\nb = data_root + 'x'\n")
    with pytest.raises(ConfigError, match=r"undefined\.py:2: NameError: name 'data_root'"):
        Config.fromfile(path)


def test_circular_base_is_reported(tmp_path):
    write(tmp_path / "a.py", "_base_ = 'b.py'\n")
    write(tmp_path / "b.py", "_base_ = 'a.py'\n")
    with pytest.raises(ConfigError, match="circular _base_"):
        Config.fromfile(tmp_path / "a.py")


def test_pretty_text_round_trip(config_dir, tmp_path):
    child = write(config_dir / "child.py", """
        _base_ = ['_base_/model.py', '_base_/data.py']
        odd_keys = {'with-dash': 1, 3: 'int key', 'class': None, 'ok': dict()}
        single = (7,)
        empty = dict(a=[], b=(), c={})
        long_list = [dict(type='Resize', img_scale=[(1333, 800 - i)] * 4) for i in range(3)]
        flags = dict(x=True, y=False, z=None, f=1e-05, s="it's")
        device_ids = range(8)
    """)
    cfg = Config.fromfile(child)
    dumped = tmp_path / "dumped" / "merged.py"
    dumped.parent.mkdir()
    cfg.dump(dumped)
    compile(cfg.pretty_text, "pretty_text", "exec")
    reloaded = Config.fromfile(dumped)
    assert reloaded.to_dict() == cfg.to_dict()
    assert reloaded.single == (7,) and reloaded.odd_keys[3] == "int key"
    assert max(len(line) for line in cfg.pretty_text.splitlines()) <= 100
    with pytest.raises(ValueError, match=r"only be dumped as a \.py"):
        cfg.dump(tmp_path / "merged.json")


def test_to_dict_gives_plain_containers(config_dir):
    plain = Config.fromfile(config_dir / "_base_" / "data.py").to_dict()
    assert type(plain) is dict and type(plain["data"]["train"]) is dict
    assert type(plain["data"]["train"]["pipeline"][0]) is dict


def test_pickle_and_deepcopy_round_trip(config_dir):
    cfg = Config.fromfile(config_dir / "_base_" / "data.py", {"data.imgs_per_gpu": 4})
    restored = pickle.loads(pickle.dumps(cfg))
    assert restored.to_dict() == cfg.to_dict()
    assert restored.filename == cfg.filename and restored.text == cfg.text
    assert isinstance(restored.data.train, ConfigDict)
    copied = copy.deepcopy(cfg)
    copied.data.train.pipeline[0].type = "Changed"
    assert cfg.data.train.pipeline[0].type == "LoadImageFromFile"
    assert copied.data.imgs_per_gpu == 4


def test_values_set_later_become_config_dicts(tmp_path):
    cfg = Config.fromfile(write(tmp_path / "c.py", "work_dir = None\n"))
    cfg.work_dir = "work_dirs/x"
    cfg["extra"] = dict(hooks=[dict(type="Logger")])
    assert cfg.extra.hooks[0].type == "Logger"
    assert cfg.get("work_dir") == "work_dirs/x" and "extra" in cfg and len(cfg) == 2
