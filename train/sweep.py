"""Sweep runs over policies x seeds (x any run setting) on Ray Tune, and compare them.

    python train/sweep.py --policy search,random --seeds 0,1 --out runs/sweep          # local Ray
    python train/sweep.py --policy all --seeds 0,1,2,3,4 --grid reach=0.25,0.5 --address HOST:6379
    python train/sweep.py --resume runs/sweep            # finish an interrupted sweep
    python train/sweep.py --quick --policy search,random --seeds 0,1 --out runs/quick-sweep

Each trial is an ordinary run directory (``SWEEP/runs/<policy>-s<seed>[-key=value]``) that
run_agent.py, merge_runs.py and compare_seeds.py read. At the end, for each grid point,
``SWEEP/compare/[<point>/]`` holds seeds.{md,json,png} (as compare_seeds.py writes them),
aggregates.{md,json} (interquartile mean and probability of improvement over random with
stratified-bootstrap intervals) and merged/seed-<s>/ per-round tables. Needs Ray:
``pip install -e ".[ray]"``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agents.analysis.sweep import SweepConfig, check_address, compare, parse_value, require_tune, run_sweep
from agents.loop.run import QUICK, RunError
from posegen_env.cli import run_script
from posegen_env.settings import add_options, from_args, given


def _key_values(items: list[str], option: str, many: bool) -> dict:
    out = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key or not text:
            raise RunError(f"{option} {item!r}: write KEY=VALUE" + (",VALUE..." if many else ""))
        try:
            out[key] = [parse_value(key, t) for t in text.split(",")] if many else parse_value(key, text)
        except RunError as err:
            raise RunError(f"{option} {item!r}: {err}") from None
    return out


def parse(argv=None) -> tuple[argparse.Namespace, SweepConfig]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    dests = add_options(p, SweepConfig)
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                   help="also sweep a run setting (a RoundConfig field, e.g. reach=0.25,0.5); repeatable")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a run setting every trial shares (e.g. rounds=1); repeatable")
    p.add_argument("--cpus-per-trial", type=float, default=1.0, help="CPUs (and torch threads) per trial")
    p.add_argument("--gpus-per-trial", type=float, default=0.0, help="GPU share per trial, e.g. 0.25")
    p.add_argument("--max-failures", type=int, default=1, help="retries of a failing trial before it is reported")
    p.add_argument("--address", default=None, help="a Ray cluster (HOST:PORT, ray://HOST:PORT or auto; default "
                                                   "$RAY_ADDRESS, else a local instance)")
    p.add_argument("--out", type=Path, default=None, help="sweep directory (default runs/sweep-<time>)")
    p.add_argument("--resume", type=Path, default=None, help="finish the sweep in this directory")
    p.add_argument("--quick", action="store_true", help="tiny runs for smoke tests")
    args = p.parse_args(argv)
    if args.cpus_per_trial <= 0 or args.gpus_per_trial < 0 or args.max_failures < 0:
        p.error("--cpus-per-trial must be positive, --gpus-per-trial and --max-failures not negative")
    try:
        grid = _key_values(args.grid, "--grid", many=True)
        quick = {k: v for k, v in QUICK.items() if k not in grid} if args.quick else {}  # a grid overrides --quick
        settings = quick | _key_values(args.set, "--set", many=False)
        sweep = from_args(SweepConfig, args, grid=grid, settings=settings)
    except (RunError, TypeError, ValueError) as err:
        p.error(str(err))
    if args.resume is not None:
        stored = SweepConfig.read(args.resume / "sweep.json")
        asked = args.grid or args.set or given(p, [*dests, "quick"], sys.argv[1:] if argv is None else argv)
        if asked and stored != sweep:
            p.error(f"--resume {args.resume}: that sweep has other settings ({stored.policies} x seeds "
                    f"{stored.seeds}, grid {stored.grid}, settings {stored.settings}); resume it without "
                    "--policy/--seeds/--grid/--set, or start a new sweep with --out")
        return args, stored
    return args, sweep


def main(argv=None) -> int:
    import os
    import time

    args, sweep = parse(argv)  # every grid point's run settings are checked here
    # What would fail only once Ray starts is refused before anything is written: no Ray Tune, or an
    # address that is malformed or answers nothing.
    require_tune()
    address = args.address or os.environ.get("RAY_ADDRESS") or None
    check_address(address, option="--address" if args.address else "RAY_ADDRESS")
    if args.resume is not None:
        out = args.resume
        print(f"resuming {out}: finished trials are kept, interrupted ones resume from their last round")
    else:
        out = args.out or Path("runs") / time.strftime("sweep-%Y%m%d-%H%M%S")
        if out.exists() and any(out.iterdir()):
            raise RunError(f"{out} already holds files; use --resume {out} to finish that sweep or another --out")
        out.mkdir(parents=True, exist_ok=True)
        sweep.write(out / "sweep.json")
    failed = run_sweep(out, sweep, args.cpus_per_trial, args.gpus_per_trial, address, args.max_failures)
    compare(out, sweep)
    for trial, error in failed:
        print(f"trial {SweepConfig.trial_name(trial)} failed after {args.max_failures} retries: {error}; "
              f"fix it and `python train/sweep.py --resume {out}`", file=sys.stderr)
    print(f"sweep directory: {out} (runs/, compare/)")
    return 1 if failed else 0


# What ends the script with one line instead of a traceback.
ERRORS = (RunError,)


if __name__ == "__main__":
    run_script(main, "sweep.py", ERRORS)
