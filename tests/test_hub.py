"""Checkpoints by URL or model-zoo name (mmdet_ms.hub), through an HTTP server on 127.0.0.1 that
the tests start: progress bar, atomic write, resume after a cut connection, one conversion then
the cached .ckpt, one-line errors with exit status 2 and an empty cache after a failure; the zoo
names; and run.py / valuation.py in their default (graph) mode against --mode pynative."""
import http.server
import importlib.util
import json
import os
import socket
import threading

import numpy as np
import pytest

from conftest import REPO, THREE_CLASSES, TINY_MODEL_OPTIONS
from mmdet_ms import hub, model_zoo
from mmdet_ms.apis import convert as convert_module
from mmdet_ms.evaluation import decode_mask_rle
from mmdet_ms.utils.checkpoint import CheckpointError, read_checkpoint, torch_name
from test_evaluation import write_tiny_coco
from test_weight_convert import LIGHT_R18, build, random_state, save_pth
from mmdet_ms.apis.convert import original_state_layout

SCORE_ATOL = 1e-3  # the parity tolerances (../shared/parity/README.md)
MASK_IOU = 0.99
LIGHT_R18_ZOO = "SOLOv2_Light_448_R18_3x"


def load_script(name):
    """A root script as a module (``import test`` would be the standard library's)."""
    spec = importlib.util.spec_from_file_location(f"hub_script_{name}",
                                                  os.path.join(REPO, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FileServer(http.server.ThreadingHTTPServer):
    """Serves ``files`` (URL path → bytes) with HTTP Range; records each GET's path and Range
    header; the next ``cut`` responses send half of what they announce, then close."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files, self.requests, self.cut = {}, [], 0

    def url(self, path):
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        server = self.server
        server.requests.append((self.path, self.headers.get("Range")))
        body = server.files.get(self.path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        start = int(self.headers["Range"][len("bytes="):-1]) if self.headers.get("Range") else 0
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        rest = body[start:]
        if server.cut:
            server.cut -= 1
            rest = rest[:len(rest) // 2]
        self.wfile.write(rest)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def r18_state():
    """An original-layout light R18 state dict (81 classes: the zoo config's)."""
    return random_state(original_state_layout(build(LIGHT_R18)), seed=3)


@pytest.fixture(scope="module")
def server(r18_state, tmp_path_factory):
    """The server, holding /models/light_r18.pth (original layout) and /models/light_r18.ckpt
    (a bare byte string: enough for download tests that skip the conversion)."""
    pth = save_pth(r18_state, tmp_path_factory.mktemp("served") / "light_r18.pth")
    httpd = FileServer()
    with open(pth, "rb") as f:
        httpd.files["/models/light_r18.pth"] = f.read()
    httpd.files["/models/light_r18.ckpt"] = np.random.default_rng(0).bytes(3_000_000)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def cache(server, tmp_path, monkeypatch):
    """An empty $MMDET_MS_HOME; the server's request log cleared."""
    monkeypatch.setenv(hub.CACHE_ENV, str(tmp_path / "home"))
    server.requests.clear()
    server.cut = 0
    return tmp_path / "home"


@pytest.fixture
def conversions(monkeypatch):
    """The list of (src, dst, config) of every convert() the hub makes."""
    calls = []
    real = convert_module.convert

    def counting(src, dst, config=None, **kwargs):
        calls.append((src, dst, config))
        return real(src, dst, config, **kwargs)

    monkeypatch.setattr(convert_module, "convert", counting)
    return calls


def cache_files(home):
    return sorted(os.path.relpath(os.path.join(root, name), home)
                  for root, _, names in os.walk(home) for name in names)


def refused_url():
    """A URL on 127.0.0.1 whose port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/models/light_r18.pth"


# download, conversion, cache

def test_url_is_downloaded_converted_once_then_reused(server, cache, conversions, r18_state,
                                                     capsys):
    url = server.url("/models/light_r18.pth")
    ckpt, config = hub.resolve_checkpoint(url)
    assert config is None
    name = os.path.basename(ckpt)
    assert name.startswith("light_r18-") and name.endswith(".ckpt")
    assert cache_files(cache) == [os.path.join("checkpoints", name)]  # no .pth, no .part
    progress = capsys.readouterr().err
    assert "light_r18" in progress and "100%" in progress  # the tqdm bar
    assert len(conversions) == 1 and conversions[0][2] is None  # config from the tensors
    params, meta = read_checkpoint(ckpt)
    assert meta["config"] == os.path.basename(LIGHT_R18)
    assert {torch_name(n) for n in params} == {n for n in r18_state
                                               if not n.endswith("num_batches_tracked")}
    for param_name, param in params.items():
        np.testing.assert_array_equal(param.asnumpy(), r18_state[torch_name(param_name)])

    assert hub.resolve_checkpoint(url) == (ckpt, None)
    assert len(server.requests) == 1 and len(conversions) == 1


def test_a_cut_connection_is_resumed_with_range(server, cache):
    url = server.url("/models/light_r18.ckpt")
    body = server.files["/models/light_r18.ckpt"]
    server.cut = 1
    ckpt, _ = hub.resolve_checkpoint(url)
    assert [rng for _, rng in server.requests] == [None, f"bytes={len(body) // 2}-"]
    with open(ckpt, "rb") as f:
        assert f.read() == body
    assert cache_files(cache) == [os.path.join("checkpoints", os.path.basename(ckpt))]


def test_an_interrupted_download_keeps_only_the_part_and_the_next_call_resumes(server, cache):
    url = server.url("/models/light_r18.ckpt")
    body = server.files["/models/light_r18.ckpt"]
    server.cut = hub.ATTEMPTS  # every try of this call is cut half way
    with pytest.raises(hub.DownloadError) as err:
        hub.resolve_checkpoint(url)
    message = str(err.value)
    assert len(message.splitlines()) == 1 and url in message and "resume" in message
    files = cache_files(cache)
    assert len(files) == 1 and files[0].endswith(".ckpt.part")  # never under the final name
    received = os.path.getsize(cache / files[0])
    assert received == len(body) - len(body) // 2 ** hub.ATTEMPTS  # halves of what was left

    ckpt, _ = hub.resolve_checkpoint(url)
    assert server.requests[-1][1] == f"bytes={received}-"
    with open(ckpt, "rb") as f:
        assert f.read() == body
    assert cache_files(cache) == [os.path.join("checkpoints", os.path.basename(ckpt))]


def _one_error_line(main, argv, capsys):
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_http_404_is_one_line_exit_2_and_leaves_nothing(server, cache, tmp_path, capsys):
    url = server.url("/models/absent.pth")
    (tmp_path / "images").mkdir()
    line = _one_error_line(load_script("run").main,
                           [LIGHT_R18, url, str(tmp_path / "images"), "--out",
                            str(tmp_path / "drawn")], capsys)
    assert url in line and "HTTP 404" in line and "weight_convert.py absent.pth" in line
    assert cache_files(cache) == []


def test_refused_connection_is_one_line_exit_2_and_leaves_nothing(cache, tmp_path, capsys):
    url = refused_url()
    line = _one_error_line(load_script("test").main,
                           [LIGHT_R18, url, "--dataroot", os.path.join(REPO, "demo.jpg"),
                            "--out", str(tmp_path / "drawn.jpg")], capsys)
    assert line.startswith("test.py: error: cannot download ") and url in line
    assert "refused" in line and "weight_convert.py" in line
    assert cache_files(cache) == []


def test_zoo_name_offline_is_one_line_exit_2(cache, tmp_path, capsys, monkeypatch):
    model = model_zoo.TABLE[LIGHT_R18_ZOO]
    monkeypatch.setitem(model_zoo.TABLE, LIGHT_R18_ZOO, model._replace(url=refused_url()))
    line = _one_error_line(load_script("test").main,
                           [LIGHT_R18_ZOO, "--dataroot", os.path.join(REPO, "demo.jpg"),
                            "--out", str(tmp_path / "drawn.jpg")], capsys)
    assert "cannot download" in line and "weight_convert.py" in line
    assert cache_files(cache) == []


# model-zoo names

def test_zoo_name_picks_its_config_and_uses_the_cached_ckpt(cache, server):
    folder = cache / "checkpoints"
    folder.mkdir(parents=True)
    (folder / "SOLOv2_R101_3x.ckpt").write_bytes(b"converted earlier")
    ckpt, config = hub.resolve_checkpoint("SOLOv2_R101_3x")
    assert ckpt == str(folder / "SOLOv2_R101_3x.ckpt")
    assert config == os.path.join(REPO, "configs", "solov2", "solov2_r101_fpn_8gpu_3x.py")
    assert hub.resolve_checkpoint("solov2_r101_3x", "mine.py") == (ckpt, "mine.py")
    url = model_zoo.TABLE["SOLOv2_R101_3x"].url
    assert url == ("https://huggingface.co/xinlongwang/SOLO/resolve/main/SOLOv2_R101_3x.pth"
                   "?download=true")
    assert hub.resolve_checkpoint(url) == (ckpt, config)  # its link is the same entry


def test_zoo_table_configs():
    light = model_zoo.TABLE[LIGHT_R18_ZOO]
    assert light.config_path == LIGHT_R18 and (light.ap, light.v100_ms) == (29.6, 19)
    assert light.url.endswith("/SOLOv2_LIGHT_448_R18_3x.pth?download=true")
    assert model_zoo.TABLE["SOLOv2_X101_DCN_3x"].config == "solov2/solov2_x101_dcn_fpn_8gpu_3x.py"
    assert model_zoo.TABLE["Decoupled_SOLO_R50_1x"].config == \
        "solo/decoupled_solo_r50_fpn_8gpu_1x.py"
    for name in ("SOLOv2_R50_1x", "SOLOv2_R50_3x", "SOLOv2_R101_3x", "SOLOv2_Light_448_R34_3x",
                 "SOLOv2_Light_448_R50_3x"):
        assert os.path.isfile(model_zoo.TABLE[name].config_path), name


def test_zoo_name_without_its_config_fails_before_downloading(server, cache, monkeypatch):
    model = model_zoo.TABLE[LIGHT_R18_ZOO]
    monkeypatch.setitem(model_zoo.TABLE, LIGHT_R18_ZOO, model._replace(
        config="solo/absent_config.py", url=server.url("/models/light_r18.pth")))
    with pytest.raises(CheckpointError, match="configs/solo/absent_config.py is not in this port"):
        hub.resolve_checkpoint(LIGHT_R18_ZOO)
    assert server.requests == [] and cache_files(cache) == []


def test_unknown_name_lists_the_close_ones(cache, tmp_path, capsys):
    with pytest.raises(CheckpointError, match="did you mean SOLOv2_R101_3x"):
        hub.resolve_checkpoint("SOLOv2_R10_3x")
    line = _one_error_line(load_script("test").main,
                           ["SOLOv2_Light_R18", "--dataroot", os.path.join(REPO, "demo.jpg"),
                            "--out", str(tmp_path / "drawn.jpg")], capsys)
    assert "'SOLOv2_Light_R18' is not a checkpoint file" in line
    assert "SOLOv2_Light_448_R18_3x" in line


def test_test_py_takes_a_zoo_name_alone_and_the_seed_forms():
    parse = load_script("test").parse_args
    args = parse(["SOLOv2_R101_3x", "--dataroot", "demo.jpg"])
    assert (args.config, args.checkpoint) == (None, "SOLOv2_R101_3x")
    for argv in (["cfg.py", "x.ckpt"], ["--config", "cfg.py", "--checkpoint", "x.ckpt"]):
        args = parse(argv)
        assert (args.config, args.checkpoint) == ("cfg.py", "x.ckpt")
    assert parse(["cfg.py", "SOLOv2_R101_3x"]).checkpoint == "SOLOv2_R101_3x"


def test_paths_pass_through(cache):
    assert hub.resolve_checkpoint("missing/model.ckpt", "c.py") == ("missing/model.ckpt", "c.py")
    assert hub.resolve_checkpoint(None, "c.py") == (None, "c.py")


# the default (graph) mode of the folder and data-set scripts against --mode pynative

def _records_by_image(path, key):
    """run.py's results.json (by file name) or valuation.py's COCO results (by image id)."""
    with open(path) as f:
        records = json.load(f)
    grouped = {}
    for record in records:
        grouped.setdefault(record[key], []).append(record)
    return grouped


def assert_same_results(graph_file, pynative_file, key):
    """Per image: the same labels in the same order, scores within SCORE_ATOL, mask IoU ≥ 0.99."""
    graph, pynative = _records_by_image(graph_file, key), _records_by_image(pynative_file, key)
    assert graph.keys() == pynative.keys() and graph
    for image, records in pynative.items():
        assert len(graph[image]) == len(records)
        for ours, theirs in zip(graph[image], records):
            assert ours["category_id"] == theirs["category_id"]
            assert abs(ours["score"] - theirs["score"]) <= SCORE_ATOL
            mask_a = decode_mask_rle(ours["segmentation"])
            mask_b = decode_mask_rle(theirs["segmentation"])
            union = np.logical_or(mask_a, mask_b).sum()
            assert union == 0 or np.logical_and(mask_a, mask_b).sum() / union >= MASK_IOU


@pytest.fixture(scope="module")
def tiny_coco(tmp_path_factory):
    return write_tiny_coco(tmp_path_factory.mktemp("hub_coco"))


@pytest.mark.slow
def test_run_and_valuation_default_mode_equal_pynative(r18_checkpoint, tiny_coco, tmp_path):
    ann_file, image_dir = map(str, tiny_coco)
    options = ["--device_target", "CPU", "--cfg-options", *TINY_MODEL_OPTIONS, *THREE_CLASSES,
               "test_cfg.max_per_img=20"]
    run, valuation = load_script("run"), load_script("valuation")
    for mode in ([], ["--mode", "pynative"]):
        name = mode[-1] if mode else "default"
        assert run.main([LIGHT_R18, str(r18_checkpoint), image_dir, "--out",
                         str(tmp_path / f"run_{name}"), "--score-thr", "0", *mode, *options]) == 0
        assert valuation.main(["--config", LIGHT_R18, "--checkpoint", str(r18_checkpoint),
                               "--ann", ann_file, "--img-dir", image_dir, "--out",
                               str(tmp_path / f"valuation_{name}.json"), *mode, *options]) == 0
    assert_same_results(tmp_path / "run_default" / "results.json",
                        tmp_path / "run_pynative" / "results.json", "file_name")
    assert_same_results(tmp_path / "valuation_default.json", tmp_path / "valuation_pynative.json",
                        "image_id")
