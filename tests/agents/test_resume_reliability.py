"""Resume is honest about settings, a damaged round is redone, a failed start leaves no run, a run has one writer."""

import json
import shutil
import subprocess
import sys
import time

import pytest
import run_agent

from agents.loop.run import RunError, run_lock
from posegen_env.estimation.spec import EstimatorError
from posegen_env.render.avatar import AvatarError
from tests.test_corrupt_files import flip_bytes_inside

pytestmark = pytest.mark.usefixtures("private_cache")  # renders go to a cache of their own
RANDOM = ["--quick", "--policy", "random", "--avatar", "avatar", "--estimator", "baseline",
          "--background-mix", "plain"]


def rounds_of(run, policy):
    return sorted(r["round"] for r in json.loads((run / "results.json").read_text())["rows"] if r["policy"] == policy)


def test_resume_refuses_other_settings_and_extends_rounds_and_policies(tmp_path, capsys):
    run = tmp_path / "run"
    assert run_agent.main([*RANDOM, "--policy", "anchor", "--out", str(run)]) == 0
    with pytest.raises(RunError, match=r"--seed: the run has 0, you asked for 5") as err:
        run_agent.main(["--resume", str(run), "--rounds", "3", "--seed", "5", "--policy", "anchor"])
    assert "--rounds:" not in str(err.value) and "--policy:" not in str(err.value)  # those extend the run
    with pytest.raises(RunError, match=r"--quick \(a run's sizes are set when it starts\)"):
        run_agent.main(["--resume", str(run), "--quick"])
    with pytest.raises(RunError, match="--samples: the run has 48, you asked for 7"):
        run_agent.main(["--resume", str(run), "--samples", "7"])
    capsys.readouterr()
    assert run_agent.main(["--resume", str(run), "--rounds", "2", "--policy", "random"]) == 0
    assert "extending" in capsys.readouterr().out
    config = json.loads((run / "config.json").read_text())
    assert config["rounds"] == 2 and config["policies"] == ["anchor", "random"]
    rows = json.loads((run / "results.json").read_text())["rows"]
    assert [(r["policy"], r["round"]) for r in rows] == [  # in the order a fresh run writes them
        ("pretrained", 0), ("anchor", 1), ("anchor", 2), ("random", 1), ("random", 2)]


@pytest.fixture(scope="module")
def two_rounds(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "two-rounds"
    assert run_agent.main([*RANDOM, "--rounds", "2", "--out", str(run)]) == 0
    return run


@pytest.mark.parametrize("damage, names", [
    (lambda r: (r / "dataset" / "annotations.npz").write_bytes((r / "dataset" / "annotations.npz").read_bytes()[:999]),
     "annotations.npz"),
    (lambda r: [p.unlink() for p in sorted((r / "dataset" / "images").iterdir())[:3]], "image files listed in"),
    (lambda r: (r / "learning.json").write_text('{"curve": [[1, 0.'), "learning.json"),
    (lambda r: flip_bytes_inside(r / "estimator.pt", r / "estimator.pt"), "does not match the checksum"),
    (lambda r: flip_bytes_inside(r / "dataset" / "annotations.npz", r / "dataset" / "annotations.npz"),
     "truncated or corrupt")])
def test_a_damaged_round_is_redone_from_the_round_before(two_rounds, tmp_path, capsys, damage, names):
    run = tmp_path / "run"
    shutil.copytree(two_rounds, run)
    untouched = (run / "random" / "round-1" / "estimator.pt").read_bytes()
    damage(run / "random" / "round-2")
    capsys.readouterr()
    assert run_agent.main(["--resume", str(run)]) == 0
    said = capsys.readouterr().out
    assert "round 2 redone from round 1" in said and names in said
    rows = json.loads((run / "results.json").read_text())["rows"]
    redone = next(r for r in rows if r["policy"] == "random" and r["round"] == 2)
    assert any(names in f for f in redone["fallbacks"]) and "## Fallbacks" in (run / "results.md").read_text()
    assert (run / "random" / "round-1" / "estimator.pt").read_bytes() == untouched  # round 1 kept


def test_a_failed_start_leaves_no_run_behind(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(EstimatorError):
        run_agent.main([*RANDOM[:-2], "--estimator", str(tmp_path / "missing.pt"), "--out", str(out)])
    with pytest.raises(AvatarError):
        run_agent.main([*RANDOM[:3], "--avatar", str(tmp_path / "missing.pt"), "--out", str(out)])
    assert not (out / "config.json").exists()
    with pytest.raises(SystemExit):  # nothing there to resume
        run_agent.main(["--resume", str(out)])
    other = tmp_path / "photos"
    other.mkdir()
    (other / "holiday.jpg").write_bytes(b"jpeg")
    with pytest.raises(RunError, match="not a PoseGen run"):
        run_agent.main(["--quick", "--out", str(other)])
    with pytest.raises(RunError, match="is a file"):
        run_agent.main(["--quick", "--out", str(other / "holiday.jpg")])
    with pytest.raises(SystemExit):
        run_agent.main(["--seed", "-1"])


def hold_run(run) -> subprocess.Popen:
    """Another process holding ``run``'s lock, once it prints 'held' (kill it when done)."""
    return subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom agents.loop.run import run_lock\n"
                             "from pathlib import Path\nwith run_lock(Path(sys.argv[1])):\n    print('held', "
                             "flush=True)\n    time.sleep(60)", str(run)], stdout=subprocess.PIPE, text=True)


def test_a_second_writer_of_a_run_is_told_who_holds_it(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    holder = hold_run(run)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunError, match=f"run in use by PID {holder.pid}"):
            with run_lock(run):
                pass
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    with run_lock(run):  # released when its holder died
        pass
