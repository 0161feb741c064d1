"""train/sweep.py refuses, before it writes anything or starts Ray, what would fail only once Ray runs:
no Ray Tune, a malformed or silent cluster address, a grid point with a bad run setting. No test here
starts Ray: ``run_sweep`` is replaced by one that fails the test if it is reached."""

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sweep

from agents.analysis import sweep as sweep_lib
from agents.analysis.sweep import SweepConfig, check_address, parse_address, parse_value
from agents.loop.run import RunError

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["--quick", "--policy", "random", "--seeds", "0"]


@pytest.fixture(autouse=True)
def no_ray(monkeypatch):
    """Fail any test that gets as far as starting Ray."""
    def started(*args, **kwargs):
        raise AssertionError("Ray was started")

    monkeypatch.setattr(sweep, "run_sweep", started)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)


def test_without_ray_tune_nothing_is_written_and_the_error_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if the extra were not installed
    out = tmp_path / "sweep"
    with pytest.raises(RunError, match=r'Ray Tune.*`pip install -e "\.\[ray\]"`'):
        sweep.main([*SMALL, "--out", str(out)])
    assert not out.exists()


@pytest.mark.parametrize("address", ["not_an_address", "host:", "host:port", "ray://host", "a b:6379", "h:70000",
                                     "http://h:80"])
def test_a_malformed_address_is_refused_before_anything_is_written(address, tmp_path):
    out = tmp_path / "sweep"
    with pytest.raises(RunError, match=f"--address '{address}' is not a Ray cluster address; give HOST:PORT"):
        sweep.main([*SMALL, "--address", address, "--out", str(out)])
    assert not out.exists()


def test_ray_address_from_the_environment_is_named_as_such(tmp_path, monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "nowhere")
    with pytest.raises(RunError, match="RAY_ADDRESS 'nowhere' is not a Ray cluster address.*unset RAY_ADDRESS"):
        sweep.main([*SMALL, "--out", str(tmp_path / "sweep")])


def test_the_addresses_ray_accepts_pass(tmp_path):
    assert parse_address(None) is None and parse_address("auto") is None and parse_address("local") is None
    assert parse_address("10.0.0.5:6379") == ("10.0.0.5", 6379)
    assert parse_address("ray://head-node.example:10001") == ("head-node.example", 10001)
    assert parse_address("[::1]:6379") == ("::1", 6379)


def test_an_unreachable_cluster_is_refused_in_seconds_before_anything_is_written(tmp_path):
    out = tmp_path / "sweep"
    start = time.monotonic()
    with pytest.raises(RunError, match="no Ray cluster answers at 127.0.0.1:1 .*`ray start --head`.*leave out "
                                       "--address to run on this machine"):
        sweep.main([*SMALL, "--address", "127.0.0.1:1", "--out", str(out)])
    assert time.monotonic() - start < 20  # Ray Tune's import included; ray.init alone waited 25 s
    assert not out.exists()


def test_a_silent_host_is_given_up_on_after_two_seconds(monkeypatch):
    asked = {}

    def silent(where, timeout):
        asked.update(where=where, timeout=timeout)
        raise TimeoutError("timed out")

    monkeypatch.setattr(socket, "create_connection", silent)
    with pytest.raises(RunError, match=r"no Ray cluster answers at ray://10.0.0.5:10001 \(timed out\)"):
        check_address("ray://10.0.0.5:10001")
    assert asked == {"where": ("10.0.0.5", 10001), "timeout": 2.0}


@pytest.mark.parametrize("args, message", [
    (["--grid", "reach=0.5,-1"], "--grid point reach=-1.0: reach must be in (0, 2]"),
    (["--grid", "uniform_share=0.5", "--grid", "reach=0.25,3"], "--grid point uniform_share=0.5,reach=3.0: reach"),
    (["--grid", "samples=10,0"], "--grid point samples=0: samples must be a positive whole number"),
    (["--grid", "replay_ratio=1.0"], "--grid point replay_ratio=1.0: replay_ratio must be in [0, 1)"),
    (["--grid", "finetune_optimizer=adamw,lion"], "--grid point finetune_optimizer=lion: finetune_optimizer must"),
    (["--grid", "choose=walk"], "--grid 'choose=walk': choose='walk': choose must name"),
    (["--grid", "background_mix=plain,sky=1"], "--grid point background_mix=sky=1"),
    (["--grid", 'reward={"mode": "squared"}'], "reward mode must be one of"),
    (["--set", "reach=-1", "--grid", "rounds=1,2"], "--set: reach must be in (0, 2]"),
    (["--set", "image_size=8"], "--set: image_size must be a crop side in pixels, 16 to")])
def test_every_grid_point_is_checked_before_ray_starts(args, message, capsys, tmp_path):
    out = tmp_path / "sweep"
    with pytest.raises(SystemExit):
        sweep.main([*args, "--out", str(out)])
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_a_stored_sweep_with_a_bad_grid_point_is_refused_on_resume(tmp_path):
    out = tmp_path / "sweep"
    out.mkdir()
    good = SweepConfig(["random"], [0], grid={"reach": [0.5]})
    good.write(out / "sweep.json")
    (out / "sweep.json").write_text((out / "sweep.json").read_text().replace("0.5", "-1"))
    with pytest.raises(RunError, match="--grid point reach=-1: reach must be in"):
        sweep.main(["--resume", str(out)])


def test_the_script_ends_with_one_line(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "train" / "sweep.py"), "--address", "not_an_address",
                           "--out", str(tmp_path / "sweep")],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines() == [
        "sweep.py: error: --address 'not_an_address' is not a Ray cluster address; give "
        + sweep_lib.ADDRESS_FORMS + ", or leave out --address to run on this machine"]


def test_a_setting_whose_default_is_none_is_read_as_its_annotated_type():
    assert parse_value("image_size", "64") == 64 and parse_value("image_size", "none") is None
    assert parse_value("loss", "pkg.mod:loss") == "pkg.mod:loss"
    with pytest.raises(RunError, match="image_size takes a whole number"):
        parse_value("image_size", "big")
