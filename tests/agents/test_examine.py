"""Examine mode on a plain callable that is not a torch module, with some samples it finds no person in."""

import json

import examine
import numpy as np
import pytest
import torch

from posegen_env.body.joint_sets import JOINT_SETS
from posegen_env.data.dataset import load_dataset

DETECTOR = '''
import numpy as np
import torch

MEAN_POSE = torch.tensor(np.random.default_rng(0).normal(0, 0.3, (17, 3)), dtype=torch.float32)
CALLS = []

def detector(images):
    """H36M-17 joints in metres; no person (NaN) in the darker crops, as a detector that misses."""
    CALLS.append(len(images))
    out = MEAN_POSE.expand(len(images), 17, 3).clone()
    out[images.mean(dim=(1, 2, 3)) < THRESHOLD] = float("nan")
    return out

detector.joint_set = "h36m17"
THRESHOLD = 0.0
'''


pytestmark = pytest.mark.usefixtures("private_cache")  # renders go to a cache of their own


def test_examine_a_detector_that_sometimes_finds_no_one(tmp_path):
    source = tmp_path / "detector.py"
    # the median brightness of the crops, so that about half find no person
    source.write_text(DETECTOR.replace("THRESHOLD = 0.0", "THRESHOLD = 0.45"))
    out = tmp_path / "examined"
    assert examine.main(["--quick", "--estimator", f"{source}:detector", "--avatar", "avatar", "--background-mix",
                         "plain", "--policy", "search,random,anchor", "--out", str(out)]) == 0
    summary = json.loads((out / "comparison.json").read_text())
    rows = summary["rows"]
    assert set(rows) == {"search (untrained)", "search", "random", "anchor"}
    assert 0 < rows["random"]["no_detection_pct"] < 100
    assert all(row["seeds"] == 1 for row in rows.values()) and "vs_random" in rows["anchor"]
    assert "search (untrained)" in summary["verdicts"]["search"]
    assert list(summary["per_joint_mm"]["random"]) == list(JOINT_SETS["h36m17"].joints)
    data = load_dataset(out / "random" / "seed-0" / "dataset")
    assert len(data) == 32 and set(np.unique(data.extras["detected"])) == {0, 1}
    missed = data.extras["detected"] == 0
    assert np.allclose(data.extras["mpjpe_mm"][missed], 500.0)  # a miss scores the no-detection error
    assert (out / "search-untrained" / "seed-0" / "hardest.png").is_file()
    for plot in ("error_maps.png", "per_joint.png"):
        assert (out / plot).stat().st_size > 5000
    assert "no detection %" in (out / "comparison.md").read_text()


def test_examine_refuses_bad_settings(tmp_path, capsys):
    for args, message in [(["--policy", "search,walk"], "--policy: 'search,walk': use one of"),
                          (["--seeds", ""], "give one or more distinct seeds"),
                          (["--seeds", "a,b"], "comma-separated whole numbers"),
                          (["--samples", "0"], "--samples must be a positive whole number"),
                          (["--no-detection-mm", "-1"], "--no-detection-mm must be positive")]:
        with pytest.raises(SystemExit):
            examine.parse([*args, "--out", str(tmp_path / "x")])
        assert message in capsys.readouterr().err


def test_a_detector_nan_outside_examine_mode_says_where_nan_is_allowed():
    from posegen_env.envs.task import PoseGenTask
    from posegen_env.estimation.spec import EstimatorError

    def blind(images):
        return torch.full((len(images), 24, 3), float("nan"))

    task = PoseGenTask(estimator=blind)
    with pytest.raises(EstimatorError, match="only in examine mode"):
        task.evaluate(np.zeros((2, task.action_dim)), [np.random.default_rng(k) for k in range(2)])


def test_run_agent_examine_runs_examine_mode(tmp_path):
    import run_agent

    out = tmp_path / "via_run_agent"
    assert run_agent.main(["--examine", "--quick", "--avatar", "avatar", "--background-mix", "plain",
                           "--policy", "random", "--out", str(out)]) == 0
    assert json.loads((out / "comparison.json").read_text())["rows"]["random"]["samples"] == 32


def test_examine_runs_the_sb3_agents_from_their_untrained_start(tmp_path):
    """PPO and SAC act before they learn (their initial networks), so examine mode compares them too."""
    out = tmp_path / "sb3"
    assert examine.main(["--quick", "--avatar", "avatar", "--background-mix", "plain", "--policy", "ppo,sac",
                         "--learn-steps", "16", "--samples", "16", "--out", str(out)]) == 0
    rows = json.loads((out / "comparison.json").read_text())["rows"]
    assert set(rows) == {"ppo (untrained)", "ppo", "sac (untrained)", "sac"}
    assert all(row["samples"] == 16 for row in rows.values())
