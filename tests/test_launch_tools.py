"""hccl_tools.py (Ascend rank table) and msrun_launcher.sh (argument handling; no real msrun)."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
LAUNCHER = REPO_ROOT / "msrun_launcher.sh"


def _load_hccl_tools():
    spec = importlib.util.spec_from_file_location("hccl_tools", REPO_ROOT / "hccl_tools.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hccl_tools = _load_hccl_tools()


@pytest.fixture
def hccn_conf(tmp_path):
    """An hccn.conf as Ascend servers have it: address, netmask and other lines per device."""
    lines = []
    for device in range(8):
        lines += [f"address_{device}=192.{device % 4 + 1}.27.{6 + device // 4}",
                  f"netmask_{device}=255.255.255.0", f"netdetect_{device}=192.1.27.1"]
    lines += ["# a comment", "arp_0=true", ""]
    path = tmp_path / "hccn.conf"
    path.write_text("\n".join(lines))
    return path


def run_hccl_tools(capsys, *argv):
    hccl_tools.main(list(argv))
    return Path(capsys.readouterr().out.strip())


def hccl_tools_error(capsys, *argv):
    with pytest.raises(SystemExit) as exit_info:
        hccl_tools.main(list(argv))
    assert exit_info.value.code == 2
    message = capsys.readouterr().err
    assert message.count("\n") == 1
    return message


def test_eight_devices_rank_table(capsys, hccn_conf, tmp_path):
    out_dir = tmp_path / "out"
    path = run_hccl_tools(capsys, "--device_num", "[0,8)", "--server_ip", "10.0.0.1",
                          "--hccn_conf", str(hccn_conf), "--out_dir", str(out_dir))
    assert path == out_dir / "hccl_8p_01234567_10.0.0.1.json"
    table = json.loads(path.read_text())
    assert table == {
        "version": "1.0",
        "server_count": "1",
        "server_list": [{
            "server_id": "10.0.0.1",
            "device": [{"device_id": str(d), "device_ip": f"192.{d % 4 + 1}.27.{6 + d // 4}",
                        "rank_id": str(d)} for d in range(8)],
            "host_nic_ip": "reserve",
        }],
        "status": "completed",
    }
    assert [p.name for p in out_dir.iterdir()] == [path.name]


def test_sub_range_and_visible_devices(capsys, hccn_conf, tmp_path):
    path = run_hccl_tools(capsys, "--device_num", "[0,4)", "--server_ip", "10.0.0.1",
                          "--hccn_conf", str(hccn_conf), "--out_dir", str(tmp_path))
    assert path.name == "hccl_4p_0123_10.0.0.1.json"
    path = run_hccl_tools(capsys, "--device_num", "[1, 3)", "--visible_devices", "4,5,6,7",
                          "--server_ip", "10.0.0.1", "--hccn_conf", str(hccn_conf),
                          "--out_dir", str(tmp_path))
    assert path.name == "hccl_2p_56_10.0.0.1.json"
    devices = json.loads(path.read_text())["server_list"][0]["device"]
    assert devices == [{"device_id": "5", "device_ip": "192.2.27.7", "rank_id": "0"},
                       {"device_id": "6", "device_ip": "192.3.27.7", "rank_id": "1"}]


def test_default_server_ip_is_an_ipv4_address(capsys, hccn_conf, tmp_path):
    path = run_hccl_tools(capsys, "--device_num", "[0,1)", "--hccn_conf", str(hccn_conf),
                          "--out_dir", str(tmp_path))
    server_id = json.loads(path.read_text())["server_list"][0]["server_id"]
    assert path.name == f"hccl_1p_0_{server_id}.json"
    assert server_id == hccl_tools.default_server_ip()
    assert len(server_id.split(".")) == 4 and all(p.isdigit() for p in server_id.split("."))


@pytest.mark.parametrize("device_num, message", [
    ("0,8", "is not a half-open range"),
    ("[0,8]", "is not a half-open range"),
    ("[a,8)", "is not a half-open range"),
    ("[4,4)", "need 0 <= start < end <= 8"),
    ("[0,9)", "need 0 <= start < end <= 8"),
])
def test_bad_range_is_an_error(capsys, hccn_conf, tmp_path, device_num, message):
    error = hccl_tools_error(capsys, "--device_num", device_num, "--server_ip", "10.0.0.1",
                             "--hccn_conf", str(hccn_conf), "--out_dir", str(tmp_path))
    assert message in error and device_num in error
    assert list(tmp_path.glob("*.json")) == []


def test_range_outside_visible_devices_is_an_error(capsys, hccn_conf, tmp_path):
    error = hccl_tools_error(capsys, "--device_num", "[0,5)", "--visible_devices", "0,1,2,3",
                             "--server_ip", "10.0.0.1", "--hccn_conf", str(hccn_conf))
    assert "outside the 4 visible devices (0,1,2,3)" in error


def test_device_missing_from_hccn_conf_is_an_error(capsys, tmp_path):
    conf = tmp_path / "hccn.conf"
    conf.write_text("address_0=192.1.27.6\naddress_1=192.2.27.6\nnetmask_2=255.255.255.0\n")
    error = hccl_tools_error(capsys, "--device_num", "[0,4)", "--server_ip", "10.0.0.1",
                             "--hccn_conf", str(conf), "--out_dir", str(tmp_path))
    assert f"{conf} has no address_N line for device(s) 2,3" in error
    assert list(tmp_path.glob("*.json")) == []


def test_missing_hccn_conf_and_bad_values_are_errors(capsys, hccn_conf, tmp_path):
    missing = tmp_path / "absent.conf"
    assert f"{missing} not found" in hccl_tools_error(capsys, "--hccn_conf", str(missing))
    assert "'10.0.0' is not an IPv4" in hccl_tools_error(
        capsys, "--server_ip", "10.0.0", "--hccn_conf", str(hccn_conf))
    assert "names a device twice" in hccl_tools_error(
        capsys, "--visible_devices", "0,0,1", "--device_num", "[0,2)")
    bad_conf = tmp_path / "bad.conf"
    bad_conf.write_text("address_0=192.1.27.6\naddress_1=192.1.27\n")
    assert f"{bad_conf}:2: '192.1.27' is not an IPv4" in hccl_tools_error(
        capsys, "--device_num", "[0,2)", "--hccn_conf", str(bad_conf), "--server_ip", "10.0.0.1")


def test_command_line_exit_codes(hccn_conf, tmp_path):
    script = str(REPO_ROOT / "hccl_tools.py")
    ok = subprocess.run([sys.executable, script, "--server_ip", "10.0.0.1", "--hccn_conf",
                         str(hccn_conf), "--out_dir", str(tmp_path)],
                        capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip().endswith("hccl_8p_01234567_10.0.0.1.json")
    bad = subprocess.run([sys.executable, script, "--device_num", "[0,8", "--hccn_conf",
                          str(hccn_conf)], capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "hccl_tools.py: error: --device_num '[0,8'" in bad.stderr


def run_launcher(*args, env_update=None, cwd=None):
    env = dict(os.environ, **(env_update or {}))
    return subprocess.run(["bash", str(LAUNCHER), *args], capture_output=True, text=True,
                          env=env, cwd=cwd, check=False, timeout=60)


@pytest.mark.parametrize("args", [(), ("-h",), ("--help",)])
def test_launcher_usage(args):
    result = run_launcher(*args)
    assert result.returncode == 1
    assert result.stderr.startswith("usage: bash msrun_launcher.sh")
    assert "CLUSTER_TIME_OUT" in result.stderr and result.stdout == ""


@pytest.mark.parametrize("args, message", [
    (("train.py", "eight"), "WORKER_NUM must be a non-negative integer, got 'eight'"),
    (("train.py", "8", "8x"), "LOCAL_WORKER_NUM must be a non-negative integer, got '8x'"),
    (("train.py", "2", "4"), "LOCAL_WORKER_NUM must be in 1..WORKER_NUM (2), got 4"),
    (("train.py", "8", "8", "127.0.0.1", "port"), "MASTER_PORT must be a non-negative integer"),
    (("train.py", "8", "8", "127.0.0.1", "70000"), "MASTER_PORT must be in 1..65535"),
    (("train.py", "8", "8", "127.0.0.1", "9543", "0", "log", "maybe"),
     "JOIN must be True or False, got 'maybe'"),
    (("train.py", "8", "8", "127.0.0.1", "9543", "0", "log", "False", "1h"),
     "CLUSTER_TIME_OUT must be an integer"),
    (("train.py",) + ("1",) * 9, "at most 9 arguments, got 10"),
    (("no_such_script.py --config x.py", "2", "2"), "script 'no_such_script.py' not found"),
])
def test_launcher_rejects_bad_arguments(args, message):
    result = run_launcher(*args)
    assert result.returncode == 1
    assert f"msrun_launcher.sh: error: {message}" in result.stderr
    assert "running" not in result.stdout


@pytest.fixture
def fake_msrun_dir(tmp_path):
    """A bin directory with a `python` link and an `msrun` that only reports how it was called."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    msrun = bin_dir / "msrun"
    msrun.write_text('#!/usr/bin/env bash\n'
                     'echo "cwd=$PWD"\necho "python=$(command -v python)"\n'
                     'printf "arg=%s\\n" "$@"\n')
    msrun.chmod(0o755)
    return bin_dir


def test_launcher_forwards_arguments_and_defaults(fake_msrun_dir, tmp_path):
    script = tmp_path / "tiny.py"
    script.write_text("print('hi')\n")
    result = run_launcher(f"{script} --config configs/x.py --flag", "2", "2", "127.0.0.1", "09543",
                          env_update={"PYTHON": str(fake_msrun_dir / "python")}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert f"cwd={REPO_ROOT}" in lines
    assert f"python={fake_msrun_dir / 'python'}" in lines
    args = [line[len("arg="):] for line in lines if line.startswith("arg=")]
    assert args == ["--worker_num=2", "--local_worker_num=2", "--master_addr=127.0.0.1",
                    "--master_port=9543", "--node_rank=0", "--log_dir=output/msrun_log",
                    "--join=False", "--cluster_time_out=7200",
                    str(script), "--config", "configs/x.py", "--flag"]
    assert "msrun --worker_num=2" in lines[1]


def test_launcher_gives_msrun_a_python_when_the_interpreter_dir_has_none(
        fake_msrun_dir, tmp_path):
    (fake_msrun_dir / "python").rename(fake_msrun_dir / "py3")
    script = tmp_path / "tiny.py"
    script.write_text("")
    log_dir = tmp_path / "logs"
    result = run_launcher(str(script), "1", "1", "127.0.0.1", "9543", "0", str(log_dir), "true",
                          "60", env_update={"PYTHON": str(fake_msrun_dir / "py3")})
    assert result.returncode == 0, result.stderr
    wrapper = log_dir / "python_bin" / "python"
    assert f"python={wrapper}" in result.stdout.splitlines()
    assert "arg=--join=True" in result.stdout.splitlines()
    executable = subprocess.run([str(wrapper), "-c", "import sys; print(sys.executable)"],
                                capture_output=True, text=True, check=True).stdout.strip()
    assert executable == str(fake_msrun_dir / "py3")


def test_launcher_without_msrun_is_a_clear_error(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    script = tmp_path / "tiny.py"
    script.write_text("")
    result = run_launcher(str(script), "2", "2",
                          env_update={"PYTHON": str(bin_dir / "python"), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 1
    assert "msrun_launcher.sh: error: msrun not found on PATH" in result.stderr
