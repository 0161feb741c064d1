"""Sweeps: a grid of ordinary runs (policies x seeds x any run setting) on Ray Tune.

Each trial is one run directory written by the round code (``SWEEP/runs/<trial>``), so every
tool that reads runs -- ``--resume``, ``merge_runs.py``, ``compare_seeds.py``, TensorBoard --
reads a sweep's trials too. Ray schedules them (a local instance by default, a cluster by
address), gives each its CPUs and GPU share, retries a failing one and reports each round as it
finishes. The state of a trial is its run directory, so resuming a sweep resumes each trial from
its last good round; finished trials only re-read their results.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
from dataclasses import asdict, dataclass, fields
from itertools import product
from pathlib import Path

from agents.loop.run import RoundConfig, RunError
from agents.policies import ORDER, check_policies, policy_list
from posegen_env.files import atomic_write
from posegen_env.settings import NO_FLAG, comma_ints, from_text, option

SWEEP_FORMAT = "posegen-sweep-v1"
NOT_GRIDDED = ("policies", "seed", "format")  # the sweep's own axes, and what no one sets
INSTALL_RAY = 'pip install -e ".[ray]"'
_HOST = re.compile(r"[A-Za-z0-9_.-]+|\[[0-9A-Fa-f:.]+\]")  # a name, an IPv4 address or a bracketed IPv6 one
ADDRESS_FORMS = ("HOST:PORT (e.g. 10.0.0.5:6379, as `ray start --head` prints it), ray://HOST:PORT (Ray Client), "
                 "auto (the cluster `ray start` started on this machine)")


@dataclass
class SweepConfig:
    """A sweep's settings (``sweep.json``); ``sweep.py``'s --policy and --seeds are derived from them."""

    policies: list[str] = option(factory=lambda: ["search", "random"], flag="policy", parse=policy_list,
                                 metavar="POLICY", help=f"comma-separated, of {', '.join(ORDER)}, or 'all'")
    seeds: list[int] = option(factory=lambda: [0, 1], parse=comma_ints, help="comma-separated seeds")
    # Run setting -> values, one trial per combination (--grid).
    grid: dict[str, list] = option(factory=dict, flag=NO_FLAG)
    settings: dict = option(factory=dict, flag=NO_FLAG)  # run settings every trial shares, e.g. rounds (--set)
    format: str = option(SWEEP_FORMAT, flag=NO_FLAG)

    def __post_init__(self):
        try:
            check_policies(self.policies)
        except ValueError as err:
            raise RunError(str(err)) from None
        if not self.seeds or len(set(self.seeds)) != len(self.seeds) or min(self.seeds) < 0:
            raise RunError(f"seeds {self.seeds}: give one or more distinct, non-negative seeds")
        for key, values in self.grid.items():
            if not values:
                raise RunError(f"--grid {key}: give at least one value")
        overlap = sorted(set(self.grid) & set(self.settings))
        if overlap:
            raise RunError(f"{', '.join(overlap)} both gridded and set; choose one")
        self.trial_config(self.trials()[0])  # every setting name and type is checked once, here
        self._check_points()

    def _check_points(self) -> None:
        """Each grid point's run settings, checked here: a bad value would otherwise be found only by
        every trial of the point on a Ray worker, after Ray started and after each trial's retries."""
        try:
            RoundConfig(**self.settings).check()
        except (TypeError, ValueError) as err:
            raise RunError(f"--set: {err}; give a valid value") from None
        first = [t for t in self.trials() if t["policy"] == self.policies[0] and t["seed"] == self.seeds[0]]
        for trial in first:  # one trial per grid point
            try:
                self.trial_config(trial).check()
            except (TypeError, ValueError) as err:
                raise RunError(f"--grid point {self.point(trial)}: {err}; drop or change that value") from None

    def trials(self) -> list[dict]:
        """One dict per trial: its policy, seed and grid values."""
        keys = list(self.grid)
        return [{"policy": p, "seed": s, **dict(zip(keys, values, strict=True))}
                for values in product(*(self.grid[k] for k in keys)) for p in self.policies for s in self.seeds]

    def trial_config(self, trial: dict) -> RoundConfig:
        values = self.settings | {k: v for k, v in trial.items() if k not in ("policy", "seed")}
        return RoundConfig(**values, policies=[trial["policy"]], seed=trial["seed"])

    def point(self, trial: dict) -> str:
        """The grid point of a trial (its grid values), "" without a grid."""
        return ",".join(f"{k}={trial[k]}" for k in self.grid)

    @staticmethod
    def trial_name(trial: dict) -> str:
        extra = "".join(f"-{k}={v}" for k, v in trial.items() if k not in ("policy", "seed"))
        return f"{trial['policy']}-s{trial['seed']}{extra}".replace("/", "_")

    def write(self, path: Path) -> None:
        atomic_write(path, lambda t: t.write_text(json.dumps(asdict(self), indent=1)))

    @classmethod
    def read(cls, path: Path) -> SweepConfig:
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise RunError(f"{path}: no readable sweep there ({err}); pass a directory written by sweep.py") from None
        if doc.get("format") != SWEEP_FORMAT:
            raise RunError(f"{path.parent} was written by another version (format {doc.get('format')!r})")
        return cls(**{k: v for k, v in doc.items() if k in {f.name for f in fields(cls)}})


def parse_value(key: str, text: str) -> object:
    """A run setting's value from text, read as its ``run_agent.py`` option reads it (a list as
    ``a+b``, since commas separate a grid's values)."""
    known = sorted(f.name for f in fields(RoundConfig) if f.name not in NOT_GRIDDED)
    if key not in known:
        raise RunError(f"unknown run setting {key!r}; settings are {', '.join(known)}")
    try:
        return from_text(RoundConfig, key, text)
    except ValueError as err:
        raise RunError(str(err)) from None


def require_tune() -> None:
    """Refuse, before a sweep writes anything, an environment without Ray Tune: it is an extra, and the
    sweep would otherwise die on an import after creating its directory."""
    try:
        import ray  # noqa: F401
        from ray import tune  # noqa: F401
    except ImportError as err:
        raise RunError(f"sweeps run on Ray Tune, which cannot be imported here ({err}); install it with "
                       f"`{INSTALL_RAY}` in PoseGen's checkout") from None


def parse_address(address: str | None, option: str = "--address") -> tuple[str, int] | None:
    """The host and port of a Ray cluster ``address`` (given as ``option``); None for the ones Ray
    resolves itself ("auto", "local", none). Ray refuses any other form only after it starts, with a
    bare ValueError."""
    if not address or address in ("auto", "local"):
        return None
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not _HOST.fullmatch(host) or not port.isdigit() or not 0 < int(port) < 65536:
        raise RunError(f"{option} {address!r} is not a Ray cluster address; give {ADDRESS_FORMS}, or "
                       f"{_run_here(option)}")
    return host.strip("[]"), int(port)


def check_address(address: str | None, timeout_s: float = 2.0, option: str = "--address") -> None:
    """Fail within seconds on a malformed address or one nothing answers at: ``ray.init`` would wait
    about 25 s, printing Ray's warnings, before it gives up."""
    where = parse_address(address, option)
    if where is None:
        return
    try:
        with socket.create_connection(where, timeout=timeout_s):
            return
    except OSError as err:
        reason = err.strerror or str(err) or type(err).__name__
    raise RunError(f"no Ray cluster answers at {address} ({reason}); start one with `ray start --head` or "
                   f"{_run_here(option)}")


def _run_here(option: str) -> str:
    return f"{'unset' if option.isupper() else 'leave out'} {option} to run on this machine"


def _trial(config: dict) -> None:
    """One trial on a Ray worker: the run's rounds (resumed from its directory), each reported to Tune."""
    import torch
    from ray import tune

    from agents.loop.report import ood_mean, suite_mpjpe
    from agents.loop.rounds import run_rounds

    torch.set_num_threads(max(1, int(config["cpus"])))  # the trial's CPUs, so trials do not oversubscribe
    sweep, trial = SweepConfig(**config["sweep"]), config["trial"]
    run_dir = Path(config["sweep_dir"]) / "runs" / SweepConfig.trial_name(trial)
    reported = []

    def report(row: dict) -> None:
        reported.append(row)
        tune.report({"round": row["round"], "ood_mean_mpjpe_mm": ood_mean(row),
                     "in_distribution_mpjpe_mm": suite_mpjpe(row, "in-distribution")})

    rows = run_rounds(run_dir, sweep.trial_config(trial), resume=(run_dir / "config.json").is_file(), on_round=report)
    if not reported:  # a trial finished before the sweep was resumed: its last round is still its result
        report(max((r for r in rows if r["policy"] == trial["policy"]), key=lambda r: r["round"]))


def run_sweep(sweep_dir: Path, sweep: SweepConfig, cpus_per_trial: float = 1.0, gpus_per_trial: float = 0.0,
              address: str | None = None, max_failures: int = 1, say=print) -> list[tuple[dict, str]]:
    """Every trial of ``sweep`` on Ray (local unless ``address``); returns the trials that failed after
    their retries, with their errors. Finished trials' run directories are in ``sweep_dir/runs``."""
    import os
    import time

    import ray
    from ray import tune

    check_address(address)
    env = {k: os.environ[k] for k in ("POSEGEN_CACHE", "POSEGEN_BODY_MODEL") if k in os.environ}
    ray.init(address=address, num_cpus=None if address else os.cpu_count(), include_dashboard=False,
             ignore_reinit_error=True, log_to_driver=False, runtime_env={"env_vars": env} if env else None)
    try:
        trials = sweep.trials()
        say(f"{len(trials)} trials on Ray ({ray.cluster_resources().get('CPU', 0):g} CPUs; {cpus_per_trial:g} CPU "
            f"and {gpus_per_trial:g} GPU per trial)")
        tuner = tune.Tuner(
            tune.with_resources(_trial, {"cpu": cpus_per_trial, "gpu": gpus_per_trial}),
            param_space={"trial": tune.grid_search(trials), "sweep": asdict(sweep),
                         "sweep_dir": str(sweep_dir.resolve()), "cpus": cpus_per_trial},
            run_config=tune.RunConfig(name=time.strftime("tune-%Y%m%d-%H%M%S"), storage_path=str(
                (sweep_dir / "ray").resolve()), failure_config=tune.FailureConfig(max_failures=max_failures),
                verbose=0))
        results = tuner.fit()
        outcomes = [results[i] for i in range(len(results))]
        return [((r.config or {}).get("trial", {}), str(r.error).strip().splitlines()[-1]) for r in outcomes
                if r.error]
    finally:
        ray.shutdown()


def _write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda t: t.write_text(text))


def finished(run: Path) -> bool:
    from agents.loop.run import read_run, rounds_done

    try:
        config, rows = read_run(run)
    except RunError:
        return False
    return all(rounds_done(rows, p) >= config.rounds for p in config.policies)


def compare(sweep_dir: Path, sweep: SweepConfig, say=print) -> list[Path]:
    """For each grid point: seeds.{md,json,png} (as compare_seeds.py writes them), aggregates.{md,json}
    (IQM, probability of improvement) and each seed's merged per-round tables; returns the folders."""
    from agents.analysis.merge import merge_runs
    from agents.analysis.seeds import aggregates, aggregates_table, final_rounds, summarise, write_summary

    written = []
    by_point: dict[str, list[dict]] = {}
    for trial in sweep.trials():
        by_point.setdefault(sweep.point(trial), []).append(trial)
    for point, trials in by_point.items():
        runs = [sweep_dir / "runs" / SweepConfig.trial_name(t) for t in trials]
        done = [r for r in runs if finished(r)]
        if not done:
            say(f"{point or 'the sweep'}: no finished trial to compare")
            continue
        out = sweep_dir / "compare" / point if point else sweep_dir / "compare"
        _, baseline, finals = final_rounds(done)
        say(write_summary(out, summarise(baseline, finals), "test"))
        agg = aggregates(baseline, finals)
        md = "# Interval estimates over seeds and OOD suites\n\n" + aggregates_table(agg) + "\n"
        _write_text(out / "aggregates.json", json.dumps(agg, indent=1))
        _write_text(out / "aggregates.md", md)
        say(md)
        for s in sweep.seeds:
            mine = [r for r, t in zip(runs, trials, strict=True) if t["seed"] == s and r in done]
            if len(mine) > 1:  # derived tables (of two or more policies), made again from the trials' runs
                shutil.rmtree(out / "merged" / f"seed-{s}", ignore_errors=True)
                merge_runs(mine, out / "merged" / f"seed-{s}", say=lambda _: None)
        written.append(out)
    return written
