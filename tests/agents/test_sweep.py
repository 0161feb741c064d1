"""train/sweep.py: a policy x seed grid on local Ray, its comparison, failures, resume and bad input."""

import json

import compare_seeds
import pytest
import sweep

from agents.analysis.sweep import SweepConfig, check_address, parse_value
from agents.loop.run import RunError

pytestmark = pytest.mark.usefixtures("private_cache")  # renders go to a cache of their own
BASE = ["--quick", "--set", "avatar=none", "--set", "background_mix=plain"]
SMALL = [*BASE, "--set", "estimator=none"]


def test_a_quick_sweep_of_two_policies_and_two_seeds_on_local_ray(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert sweep.main([*SMALL, "--policy", "search,random", "--seeds", "0,1", "--out", str(out)]) == 0
    runs = sorted(p.name for p in (out / "runs").iterdir())
    assert runs == ["random-s0", "random-s1", "search-s0", "search-s1"]
    for run in runs:  # each trial an ordinary, finished run directory
        rows = json.loads((out / "runs" / run / "results.json").read_text())["rows"]
        assert [r["round"] for r in rows if r["policy"] != "pretrained"] == [1]
    agg = json.loads((out / "compare" / "aggregates.json").read_text())
    assert 0 <= agg["policies"]["search"]["p_improvement"] <= 1 and "iqm_ci95" in agg["policies"]["random"]
    assert (out / "compare" / "merged" / "seed-0" / "results.json").is_file()
    in_sweep_order = ["search-s0", "search-s1", "random-s0", "random-s1"]
    by_hand = tmp_path / "by_hand"
    assert compare_seeds.main([str(out / "runs" / r) for r in in_sweep_order] + ["--out", str(by_hand)]) == 0
    assert (by_hand / "seeds.md").read_text() == (out / "compare" / "seeds.md").read_text()
    capsys.readouterr()
    with pytest.raises(SystemExit):
        sweep.parse(["--resume", str(out), "--seeds", "7"])
    assert "that sweep has other settings" in capsys.readouterr().err

    # An interrupted trial (its round not recorded) resumes; finished ones are only re-read.
    cut = out / "runs" / "random-s1"
    doc = json.loads((cut / "results.json").read_text())
    (cut / "results.json").write_text(json.dumps({"rows": [r for r in doc["rows"] if r["round"] == 0]}))
    kept = (out / "runs" / "search-s0" / "search" / "round-1" / "estimator.pt").stat().st_mtime_ns
    assert sweep.main(["--resume", str(out)]) == 0
    redone = json.loads((cut / "results.json").read_text())["rows"]
    assert [r["round"] for r in redone] == [0, 1]
    assert redone[1]["suites"] == next(r for r in doc["rows"] if r["round"] == 1)["suites"]  # the same numbers
    assert (out / "runs" / "search-s0" / "search" / "round-1" / "estimator.pt").stat().st_mtime_ns == kept


def test_a_failing_trial_is_reported_while_the_others_finish(tmp_path, capsys):
    out = tmp_path / "sweep"
    code = sweep.main([*BASE, "--policy", "random", "--seeds", "0", "--grid", f"estimator=none,{tmp_path}/gone.pt",
                       "--max-failures", "0", "--out", str(out)])
    assert code == 1
    assert "failed after 0 retries" in capsys.readouterr().err
    assert (out / "compare" / "estimator=None" / "seeds.md").is_file()


@pytest.mark.parametrize("args, message", [
    (["--grid", "reech=1"], "unknown run setting 'reech'"), (["--grid", "reach=abc"], "reach takes a number"),
    (["--set", "rounds=x"], "rounds takes a whole number"), (["--policy", "walk"], "--policy: 'walk': use one of"),
    (["--seeds", "a"], "comma-separated whole numbers"), (["--grid", "reach"], "write KEY=VALUE"),
    (["--grid", "rounds=1", "--set", "rounds=2"], "both gridded and set")])
def test_bad_grids_say_what_is_wrong(args, message, capsys):
    with pytest.raises(SystemExit):
        sweep.parse(args)
    assert message in capsys.readouterr().err


def test_an_unreachable_cluster_fails_at_once():
    with pytest.raises(RunError, match="no Ray cluster answers at 127.0.0.1:9"):
        check_address("127.0.0.1:9", timeout_s=2)
    assert parse_value("choose", "subject+background") == ["subject", "background"]
    grid = SweepConfig(["search", "random"], [0, 1], grid={"reach": [0.25, 0.5]})
    assert len(grid.trials()) == 8 and SweepConfig.trial_name(grid.trials()[0]) == "search-s0-reach=0.25"
