"""Merge run directories that ran different policies with the same settings into one comparison.

``--policy all`` runs the policies one after another. Run them side by side instead (one per
machine, GPU or CPU core, each with its own ``--out``) and merge the runs: every policy starts
from the same pre-trained estimator and gets the same budget, so rows from runs whose settings
agree compare exactly as rows of one run. Settings that none of a run's policies reads (the
reward for ``random``) may differ; the merged config takes them from the run that reads the
most. The merged directory is a run like any other: its tables and plots cover every policy,
and ``--resume`` finishes rounds a merged run had not done.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from agents.loop.report import BASELINE, plot_suites, write_tables
from agents.loop.rounds import final_plots
from agents.loop.run import RoundConfig, RunError, check_comparable, read_run, rounds_done
from posegen_env.files import install_directory, staging_directory


def _check_compatible(runs: list[Path], configs: list[RoundConfig]) -> int:
    ref = check_comparable(runs, configs, ("policies",), "--policy")
    seen: dict[str, Path] = {}
    for run, config in zip(runs, configs, strict=True):
        for name in config.policies:
            if name in seen:
                raise RunError(f"policy {name!r} is in both {seen[name]} and {run}; merge runs of different policies")
            seen[name] = run
    return ref


def merge_runs(runs: list[Path], out: Path, say=print) -> list[dict]:
    """Write ``out``: every run's policy directories, rows, TensorBoard logs, and fresh tables and plots."""
    runs = [Path(r) for r in runs]
    if len(runs) < 2:
        raise RunError("merging needs at least two run directories")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise RunError(f"{out} already holds files; merge into a new directory")
    read = [read_run(run) for run in runs]
    configs = [config for config, _ in read]
    ref = _check_compatible(runs, configs)
    names = [name for config in configs for name in config.policies]
    config = replace(configs[ref], policies=names)  # the settings every policy read
    rows = [r for r in read[0][1] if r["policy"] == BASELINE]  # the same pre-trained estimator in every run
    staged = staging_directory(out)
    try:
        for run, (run_config, run_rows) in zip(runs, read, strict=True):
            rows += [r for r in run_rows if r["policy"] in run_config.policies]
            for name in run_config.policies:
                if (run / name).is_dir():
                    shutil.copytree(run / name, staged / name)
            if (run / "tensorboard").is_dir():
                shutil.copytree(run / "tensorboard", staged / "tensorboard" / run.name, dirs_exist_ok=True)
        config.write(staged / "config.json")
        write_tables(staged, rows)
        plot_suites(staged, rows)
        final_plots(staged, config)
        install_directory(staged, out, lambda d: None)  # ``out`` is empty, checked above
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    unfinished = [name for name in names if rounds_done(rows, name) < config.rounds]
    if unfinished:
        say(f"not every round is done ({', '.join(unfinished)}); finish them with "
            f"`python train/run_agent.py --resume {out}`")
    return rows
