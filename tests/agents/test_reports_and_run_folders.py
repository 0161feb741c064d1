"""What a run leaves for people: plots that say which round they show, an examine report honest about one seed,
and a finished run folder without the lock and PID files of the process that wrote it."""

import json
import os
import time
from types import SimpleNamespace

import numpy as np
import pytest
import run_agent

from agents.loop import examine_report, report
from agents.loop import rounds as rounds_module
from agents.loop.run import RunError, run_lock
from posegen_env.estimation.spec import EstimatorError
from tests.agents.test_resume_reliability import hold_run

pytestmark = pytest.mark.usefixtures("private_cache")  # renders go to a cache of their own
LOCKS = (".posegen.lock", ".posegen.pid")


@pytest.fixture
def figures(monkeypatch):
    """The figures the report functions save, by file name, kept for inspection."""
    saved = {}
    real = report.save_plot

    def keep(fig, path):
        saved[path.name] = fig
        real(fig, path)
    monkeypatch.setattr(report, "save_plot", keep)
    return saved


def _texts(fig) -> str:
    return "\n".join([t.get_text() for t in fig.texts] + [t.get_text() for ax in fig.axes for t in ax.texts]
                     + [ax.get_title() for ax in fig.axes] + [fig._suptitle.get_text() if fig._suptitle else ""])


def test_rewards_plot_marks_each_round_boundary_and_says_whose_reward_it_is(tmp_path, figures):
    curves = {"ppo": [(k * 2048 + s, 0.4 - 0.1 * k + s / 1e4) for k in range(3) for s in (512, 1024, 2048)]}
    report.plot_rewards(tmp_path, curves, {2: 2048, 3: 4096})
    fig = figures["rewards.png"]
    ax = fig.axes[0]
    verticals = sorted(line.get_xdata()[0] for line in ax.lines if len(set(line.get_xdata())) == 1)
    assert verticals == [2048, 4096]
    said = _texts(fig)
    assert "round 2: fine-tuned estimator" in said and "round 3: fine-tuned estimator" in said
    assert "each round's estimator" in said and "estimator got better" in said
    assert (tmp_path / "plots" / "rewards.png").stat().st_size > 1000


def test_rewards_plot_of_one_round_or_no_learned_policy_draws_no_boundary(tmp_path, figures):
    report.plot_rewards(tmp_path, {"ppo": [(512, 0.3), (1024, 0.35)]}, {2: 2048})  # beyond the curve
    assert not [line for line in figures["rewards.png"].axes[0].lines if len(set(line.get_xdata())) == 1]
    report.plot_rewards(tmp_path, {}, {})
    assert "No learned policy" in _texts(figures["rewards.png"])


def test_sample_space_plot_says_which_round_it_shows(tmp_path, figures):
    rng = np.random.default_rng(0)
    samples = {name: {key: rng.uniform(-60, 60, 20) for key in
                      ("azimuth_deg", "elevation_deg", "pitch_deg", "roll_deg", "mpjpe_mm")} | {"round": 3}
               for name in ("random", "ppo")}
    report.plot_sample_space(tmp_path, samples)
    fig = figures["sample_space.png"]
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["random, round 3", "ppo, round 3"]
    assert "last round" in fig._suptitle.get_text()


def test_final_plots_hand_on_the_round_boundaries_and_the_round_of_the_samples(tmp_path, monkeypatch):
    config = SimpleNamespace(policies=["ppo"], rounds=3, learn_steps=2048, choose=None)
    for k in (1, 2, 3):
        out = rounds_module.round_dir(tmp_path, "ppo", k)
        (out / "dataset").mkdir(parents=True)
        (out / "dataset" / "dataset.json").write_text("{}")
        (out / "learning.json").write_text(json.dumps({"curve": [[1024, 0.1 * k], [2048, 0.2 * k]]}))
    data = SimpleNamespace(extras={"action": np.zeros((4, 85), np.float32), "mpjpe_mm": np.full(4, 100.0)})
    monkeypatch.setattr(rounds_module, "load_dataset", lambda path, check_images=True: data)
    got = {}
    monkeypatch.setattr(rounds_module, "plot_rewards", lambda run_dir, curves, starts: got.update(starts=starts))
    monkeypatch.setattr(rounds_module, "plot_sample_space", lambda run_dir, samples: got.update(samples=samples))
    rounds_module.final_plots(tmp_path, config)
    assert got["starts"] == {2: 2048, 3: 4096}
    assert got["samples"]["ppo"]["round"] == 3


def _records(seeds: int) -> list[dict]:
    errors = {"search": 180.0, "search (untrained)": 150.0, "anchor": 140.0, "random": 120.0}
    return [{"policy": label, "seed": s, "mean_error_mm": e + 3.0 * s, "samples": 32, "no_detection_pct": 0.0,
             "implausible_pct": 0.0} for label, e in errors.items() for s in range(seeds)]


def test_examine_report_with_one_seed_reports_no_spread_instead_of_zero():
    summary = examine_report.summarise(_records(1), ["search"])
    assert summary["rows"]["search"]["spread_mm"] is None
    assert summary["verdicts"]["search"]["anchor"]["beats"] is None
    md = examine_report.comparison_markdown(summary)
    assert "spread of 0.0" not in md and "| search | 1 | 180.0 | none (one seed) |" in md
    assert "no spread to report (one seed; run three or more seeds to see run-to-run spread)" in md
    assert "search against anchor: +40.0 mm" in md


def test_examine_report_with_three_seeds_weighs_the_margin_against_the_spread():
    summary = examine_report.summarise(_records(3), ["search"])
    assert summary["rows"]["search"]["spread_mm"] == pytest.approx(3.0)
    assert summary["verdicts"]["search"]["anchor"]["beats"] is True
    md = examine_report.comparison_markdown(summary)
    assert "search beats anchor by more than the run-to-run spread: +40.0 mm against a spread of 3.0 mm." in md
    assert "no spread to report" not in md


class _Runner:
    def __init__(self, run_dir, config, say, device):
        pass

    def close(self):
        pass


def _quiet_rounds(monkeypatch, during):
    """run_rounds with no rounds: ``during(run_dir)`` runs where the rounds would, holding the run."""
    monkeypatch.setattr(rounds_module, "RoundRunner", _Runner)
    monkeypatch.setattr(rounds_module, "_run_all", lambda run, rows, on_round: during())
    return SimpleNamespace(write=lambda path: path.write_text("{}"))


def test_a_finished_run_leaves_no_lock_or_pid_file(tmp_path, monkeypatch):
    run = tmp_path / "run"

    def during():
        assert all((run / name).exists() for name in LOCKS)
        assert (run / ".posegen.pid").read_text() == str(os.getpid())
        with pytest.raises(RunError, match=f"run in use by PID {os.getpid()}"):  # still one writer at a time
            with run_lock(run):
                pass
    rounds_module.run_rounds(run, _quiet_rounds(monkeypatch, during))
    assert not [name for name in LOCKS if (run / name).exists()]
    with run_lock(run):  # and it is free for a resume
        pass


def test_a_failed_run_releases_the_lock_and_leaves_no_lock_files(tmp_path, monkeypatch):
    run = tmp_path / "run"

    def during():
        raise RuntimeError("a round failed")
    with pytest.raises(RuntimeError, match="a round failed"):
        rounds_module.run_rounds(run, _quiet_rounds(monkeypatch, during))
    assert not [name for name in LOCKS if (run / name).exists()]
    with run_lock(run):
        pass


def test_a_failed_start_leaves_no_lock_files(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(EstimatorError):
        run_agent.main(["--quick", "--policy", "random", "--estimator", str(tmp_path / "missing.pt"),
                        "--out", str(out)])
    assert not [name for name in LOCKS if (out / name).exists()]


def test_a_killed_run_leaves_stale_lock_files_that_the_next_run_takes_over(tmp_path, monkeypatch):
    run = tmp_path / "run"
    run.mkdir()
    holder = hold_run(run)
    try:
        assert holder.stdout.readline().strip() == "held"
    finally:
        holder.kill()
        holder.wait()
    assert (run / ".posegen.pid").read_text() == str(holder.pid)  # killed: no chance to clean up
    time.sleep(0.1)
    rounds_module.run_rounds(run, _quiet_rounds(monkeypatch, lambda: None))
    assert not [name for name in LOCKS if (run / name).exists()]
