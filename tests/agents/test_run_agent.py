"""train/run_agent.py end to end: every policy's quick round, outputs, resume, and bad input."""

import json
import shutil
from dataclasses import replace
from pathlib import Path

import compare_seeds
import merge_runs
import numpy as np
import pytest
import run_agent
import torch

from agents.analysis.merge import merge_runs as merge
from agents.analysis.seeds import final_rounds, summarise
from agents.loop import rounds as rounds_module
from agents.loop import run as run_module
from agents.policies import POLICIES, make_policy
from agents.policies.anchored import Anchoring
from posegen_env.data.dataset import load_dataset
from posegen_env.device import resolve_device

pytestmark = pytest.mark.usefixtures("private_cache")  # renders go to a cache of their own


@pytest.fixture(scope="module")
def quick_all(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "all"
    assert run_agent.main(["--quick", "--policy", "all", "--out", str(out)]) == 0
    return out


def test_quick_round_of_every_policy_writes_all_outputs(quick_all):
    doc = json.loads((quick_all / "results.json").read_text())
    policies = {r["policy"] for r in doc["rows"]}
    assert policies == set(POLICIES) | {"pretrained"}
    assert set(doc["comparison"]) == set(POLICIES)
    runtime = {"torch": torch.__version__, "device": str(resolve_device()),
               "torch_threads": torch.get_num_threads()}
    for row in doc["rows"]:  # what bit-for-bit repetition depends on is recorded with each round
        if row["policy"] != "pretrained":
            assert row["runtime"] == runtime
    for name in POLICIES:
        round_dir = quick_all / name / "round-1"
        data = load_dataset(round_dir / "dataset")
        assert len(data) == run_agent.QUICK["samples"]
        assert data.extras["action"].shape == (len(data), 85)
        assert (round_dir / "estimator.pt").is_file() and (round_dir / "hardest.png").is_file()
    for name in ("search", "ppo", "sac"):
        assert any((quick_all / name / "round-1").glob(f"{name}.*"))
    for plot in ("suites_vs_round.png", "rewards.png", "sample_space.png"):
        assert (quick_all / "plots" / plot).stat().st_size > 1000
    assert "| search | 1 |" in (quick_all / "results.md").read_text()
    config = run_module.RoundConfig.read(quick_all / "config.json")
    assert config.reward["mode"] == "raw"  # the rounds' default: anchoring bounds the samples, no cap needed
    assert (quick_all / "results.csv").read_text().startswith("policy,round")
    assert any((quick_all / "tensorboard").rglob("events.out.tfevents*"))


def test_collection_drops_duplicates(tmp_path):
    from agents.loop.collect import collect
    from posegen_env.envs.vector_env import PoseGenVectorEnv

    class Constant(make_policy("random").__class__):
        def act(self, contexts, rng):
            return np.zeros((len(contexts), 85))

    env = PoseGenVectorEnv(num_envs=4)
    got = collect(Constant(), env, 6, max_draws_factor=2)
    assert len(got) == 1 and got.duplicates == got.drawn - 1 - got.implausible


def test_resume_after_interruption_and_corrupt_checkpoint(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    real = rounds_module.RoundRunner.finetune

    def interrupted(self, name, k, got, curve):
        if k == 2:  # after round 2 wrote its policy and dataset, before its estimator
            raise KeyboardInterrupt
        return real(self, name, k, got, curve)

    monkeypatch.setattr(rounds_module.RoundRunner, "finetune", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_agent.main(["--quick", "--policy", "search", "--rounds", "2", "--out", str(out)])
    assert [r["round"] for r in json.loads((out / "results.json").read_text())["rows"]] == [0, 1]
    assert (out / "search" / "round-2" / "dataset").is_dir()  # written, yet the round is not recorded
    round1 = (out / "search" / "round-1" / "estimator.pt").stat().st_mtime_ns
    monkeypatch.setattr(rounds_module.RoundRunner, "finetune", real)
    config = json.loads((out / "config.json").read_text())
    assert config["rounds"] == 2  # --quick keeps an explicit --rounds
    assert run_agent.main(["--resume", str(out)]) == 0
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert sorted(r["round"] for r in rows if r["policy"] == "search") == [1, 2]
    assert (out / "search" / "round-1" / "estimator.pt").stat().st_mtime_ns == round1  # round 1 not redone

    (out / "search" / "round-2" / "estimator.pt").write_bytes(b"not a checkpoint")
    (out / "search" / "round-1" / "search.npz").write_bytes(b"truncated")
    capsys.readouterr()
    assert run_agent.main(["--resume", str(out)]) == 0
    said = capsys.readouterr().out
    assert "round 1 redone from round 0" in said and "search policy state unreadable" in said  # a round is a unit
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert sorted(r["round"] for r in rows if r["policy"] == "search") == [1, 2]
    assert any("search.npz" in f for r in rows if r["round"] == 1 for f in r.get("fallbacks", []))  # tables show it
    assert "## Fallbacks" in (out / "results.md").read_text()


def test_incompatible_run_directory_and_bad_arguments(tmp_path, capsys):
    old = tmp_path / "old"
    old.mkdir()
    (old / "config.json").write_text(json.dumps({"format": "posegen-run-v0"}))
    with pytest.raises(run_module.RunError, match="incompatible version"):
        run_agent.main(["--resume", str(old)])
    with pytest.raises(SystemExit):
        run_agent.main(["--resume", str(tmp_path / "nothing")])
    assert "not a PoseGen run" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_agent.main(["--policy", "dqn"])
    assert "--policy: 'dqn': use one of" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_agent.main(["--samples", "0"])
    with pytest.raises(SystemExit):
        run_agent.main(["--reach", "3"])
    assert "reach must be in (0, 2]" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_agent.main(["--uniform-share", "1.5"])
    assert "--uniform-share must be in [0, 1]" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_agent.main(["--device", "gpu0"])
    assert "unknown device 'gpu0'" in capsys.readouterr().err
    with pytest.raises(run_module.RunError, match="already holds a run"):
        run_agent.main(["--out", str(old)])
    with pytest.raises(SystemExit):
        run_agent.main(["--choose", "camera"])
    assert "choose must name each of" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_agent.main(["--background-mix", "plain=1,sky=2"])
    assert "background mix must weight some of" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_agent.main(["--backgrounds", str(tmp_path / "no-photos")])
    assert "does not exist" in capsys.readouterr().err


def test_a_quick_run_on_a_cast_whose_actions_choose_subject_and_background(cast_file, tmp_path):
    out = tmp_path / "run"
    assert run_agent.main(["--quick", "--policy", "search", "--avatar", str(cast_file), "--out", str(out),
                           "--background-mix", "plain=1,texture=1", "--choose", "subject,background"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["choose"] == ["subject", "background"] and config["background_mix"] == "plain=1,texture=1"
    data = load_dataset(out / "search" / "round-1" / "dataset")
    assert data.extras["action"].shape[1] == 87
    assert set(data.extras["subject"].astype(int).tolist()) <= {0, 1}  # never the held-out person_2


def test_runs_before_the_anchor_settings_resume_with_the_anchors_they_used(tmp_path):
    config = run_module.RoundConfig(reach=0.7, uniform_share=0.4)
    config.write(tmp_path / "config.json")
    read = run_module.RoundConfig.read(tmp_path / "config.json")
    assert (read.reach, read.uniform_share) == (0.7, 0.4)
    doc = json.loads((tmp_path / "config.json").read_text())
    del doc["reach"], doc["uniform_share"]
    (tmp_path / "config.json").write_text(json.dumps(doc))
    read = run_module.RoundConfig.read(tmp_path / "config.json")
    assert read.anchoring == Anchoring(reach=0.25, uniform_share=0.0)


def test_validation_benchmark_scores_every_round_on_the_validation_split(quick_all, tmp_path, capsys):
    import validate_runs

    validate_runs.main([str(quick_all), "--json", str(tmp_path / "val.json")])
    doc = json.loads((tmp_path / "val.json").read_text())
    assert doc["split"] == "validation" and set(doc["comparison"]) == set(POLICIES)
    test_rows = json.loads((quick_all / "results.json").read_text())["rows"]
    for row, test_row in zip(doc["rows"], test_rows, strict=True):
        assert (row["policy"], row["round"]) == (test_row["policy"], test_row["round"])
        assert row["suites"] != test_row["suites"]  # other images than the test suites'
    assert "| random |" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        validate_runs.main([str(tmp_path)])


def test_config_differences_compare_rewards_spelt_out_in_full():
    spelt_out = run_module.RoundConfig(reward={"mode": "raw", "metric": "mpjpe", "cap_mm": 300.0})
    assert run_module.RoundConfig().differences(spelt_out) == []
    assert run_module.RoundConfig().differences(run_module.RoundConfig(reward={})) == ["reward"]


def _split_run(run: Path, out: Path, policies: list[str], **changes) -> Path:
    """A run of only ``policies``, cut out of ``run`` as if it had been run on its own."""
    doc = json.loads((run / "config.json").read_text()) | {"policies": policies} | changes
    out.mkdir()
    (out / "config.json").write_text(json.dumps(doc))
    rows = json.loads((run / "results.json").read_text())["rows"]
    rows = [r for r in rows if r["policy"] in policies + ["pretrained"]]
    (out / "results.json").write_text(json.dumps({"rows": rows}))
    for name in policies:
        shutil.copytree(run / name, out / name)
    shutil.copytree(run / "tensorboard", out / "tensorboard")
    return out


def test_runs_of_different_policies_merge_into_one_comparison(quick_all, tmp_path, capsys):
    a = _split_run(quick_all, tmp_path / "a", ["search", "random"])
    # prior reads neither the reward nor the reach, so its run may differ in them
    b = _split_run(quick_all, tmp_path / "b", ["prior"], reward={"mode": "capped", "cap_mm": 200.0}, reach=1.0)
    assert merge_runs.main([str(a), str(b), "--out", str(tmp_path / "merged")]) == 0
    merged = tmp_path / "merged"
    doc = json.loads((merged / "results.json").read_text())
    original = json.loads((quick_all / "results.json").read_text())
    wanted = [r for r in original["rows"] if r["policy"] in ("pretrained", "search", "random", "prior")]
    key = lambda r: (r["policy"], r["round"])  # noqa: E731
    assert sorted(doc["rows"], key=key) == sorted(wanted, key=key)
    assert set(doc["comparison"]) == {"search", "random", "prior"}
    without_anchor = {k: v for k, v in original["comparison"]["search"].items() if k != "vs_anchor_pct"}
    assert doc["comparison"]["search"] == without_anchor  # anchor was not merged
    merged_config = run_module.RoundConfig.read(merged / "config.json")
    assert merged_config.policies == ["search", "random", "prior"]
    assert merged_config.differences(run_module.RoundConfig.read(a / "config.json"), ("policies",)) == []
    assert load_dataset(merged / "prior" / "round-1" / "dataset").extras["action"].shape[1] == 85
    for plot in ("suites_vs_round.png", "rewards.png", "sample_space.png"):
        assert (merged / "plots" / plot).stat().st_size > 1000
    assert any((merged / "tensorboard" / "a").rglob("events.out.tfevents*"))
    assert "| prior | 1 |" in capsys.readouterr().out

    with pytest.raises(run_module.RunError, match="already holds files"):
        merge([a, b], merged)
    with pytest.raises(run_module.RunError, match="differs from .* in seed"):
        merge([a, _split_run(quick_all, tmp_path / "c", ["prior"], seed=5)], tmp_path / "m2")
    with pytest.raises(run_module.RunError, match="'random' is in both"):
        merge([a, _split_run(quick_all, tmp_path / "d", ["random"])], tmp_path / "m3")
    with pytest.raises(run_module.RunError, match="config.json missing"):
        merge([a, tmp_path / "nothing"], tmp_path / "m4")
    assert not (tmp_path / "m2").exists() and not list(tmp_path.glob(".m*"))  # nothing half-written is left
    with pytest.raises(SystemExit):
        merge_runs.main([str(a)])
    assert "--out" in capsys.readouterr().err


def _set_ood_mean(run: Path, policy: str, mpjpe_mm: float) -> None:
    """Make ``policy``'s last round in ``run`` score exactly ``mpjpe_mm`` on every OOD suite."""
    doc = json.loads((run / "results.json").read_text())
    last = max(r["round"] for r in doc["rows"] if r["policy"] == policy)
    for r in doc["rows"]:
        if (r["policy"], r["round"]) == (policy, last):
            for suite in ("novel-views", "novel-poses", "hard"):
                r["suites"][suite]["eval14"]["mpjpe_mm"] = mpjpe_mm
    (run / "results.json").write_text(json.dumps(doc))


def test_seeds_compare_into_means_and_a_bootstrap_lead(quick_all, tmp_path, capsys):
    runs = []
    for seed, (search, random) in enumerate([(200.0, 240.0), (210.0, 260.0), (220.0, None)]):
        policies = ["search", "random"] if random else ["search"]
        run = _split_run(quick_all, tmp_path / f"seed{seed}", policies, seed=seed)
        _set_ood_mean(run, "search", search)
        if random:
            _set_ood_mean(run, "random", random)
        runs.append(run)
    # prior draws no anchors and learns nothing: its run may differ in the anchoring and reward settings
    runs.append(_split_run(quick_all, tmp_path / "prior", ["prior"], seed=3, reach=1.0, reward={"mode": "band"}))
    out = tmp_path / "seeds"
    assert compare_seeds.main([*map(str, runs), "--out", str(out)]) == 0
    doc = json.loads((out / "seeds.json").read_text())
    search = doc["policies"]["search"]
    assert search["seeds"] == [0, 1, 2] and search["mean"] == 210.0 and search["sd"] == 10.0
    assert doc["policies"]["random"]["mean"] == 250.0
    assert search["lead_pct"] == 16.0  # 1 - 210 / 250
    low, high = search["lead_ci95_pct"]
    assert 100 * (1 - 220 / 240) <= low < 16.0 < high <= 100 * (1 - 200 / 260)
    assert "lead_ci95_pct" not in doc["policies"]["prior"]  # one seed: no interval
    _, baseline, finals = final_rounds(runs)
    assert summarise(baseline, finals)["policies"]["search"]["lead_ci95_pct"] == [low, high]  # same seed, same draws
    twice = finals + [replace(f, seed=f.seed + 10) for f in finals if f.policy in ("search", "random")]
    low2, high2 = summarise(baseline, twice)["policies"]["search"]["lead_ci95_pct"]
    assert low < low2 < 16.0 < high2 < high  # the same results from twice the seeds: a narrower interval
    assert (out / "seeds.png").stat().st_size > 1000
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("| search |"))
    assert line.startswith("| search | 0, 1, 2 | 200.0, 210.0, 220.0 |") and "| 210.0 (10.0) |" in line
    assert len(search["blend_alpha"]) == 3  # the guard's blend per seed, the main source of seed-to-seed spread

    assert compare_seeds.main([*map(str, runs[:2]), "--split", "validation", "--out", str(tmp_path / "val")]) == 0
    val = json.loads((tmp_path / "val" / "seeds.json").read_text())
    assert val["split"] == "validation" and val["policies"]["search"]["mean"] != 205.0  # re-scored, not the rows

    with pytest.raises(run_module.RunError, match="differs from .* in samples"):
        final_rounds([runs[0], _split_run(quick_all, tmp_path / "other", ["search"], seed=7, samples=7)])
    with pytest.raises(run_module.RunError, match="differs from .* in reach"):
        final_rounds([runs[0], _split_run(quick_all, tmp_path / "reach", ["search"], seed=8, reach=1.0)])
    with pytest.raises(run_module.RunError, match="differs from .* in reward"):
        final_rounds([runs[0], _split_run(quick_all, tmp_path / "capped", ["search"], seed=6,
                                          reward={"mode": "capped"})])
    with pytest.raises(run_module.RunError, match="search with seed 0 is in both"):
        final_rounds([runs[0], _split_run(quick_all, tmp_path / "again", ["search"], seed=0)])
    unfinished = _split_run(quick_all, tmp_path / "unfinished", ["search"], seed=9)
    rows = json.loads((unfinished / "results.json").read_text())["rows"]
    (unfinished / "results.json").write_text(json.dumps({"rows": [r for r in rows if r["policy"] != "search"]}))
    with pytest.raises(run_module.RunError, match="finished 0 of 1 rounds"):
        final_rounds([runs[0], unfinished])
    assert final_rounds(runs[:2], at_round=1)[2] == final_rounds(runs[:2])[2]  # round 1 is these runs' last
    with pytest.raises(run_module.RunError, match=r"finished 1 of 2 rounds.*--resume .*seed0 --rounds 2"):
        final_rounds(runs[:2], at_round=2)
    with pytest.raises(run_module.RunError, match="config.json missing"):
        final_rounds([tmp_path / "nothing"])
