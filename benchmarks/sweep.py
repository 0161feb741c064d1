"""Wall time of a policy x seed sweep on local Ray against the same runs one after another.

    python benchmarks/sweep.py --policy search,random --seeds 0,1 --out runs/bench-sweep
    python benchmarks/sweep.py --set rounds=1 --out runs/bench-sweep        # half the size

Runs ``train/sweep.py`` (``--cpus-per-trial``, default 1: as many trials at once as cores), then
each of its trials as a plain ``train/run_agent.py`` run (all cores, torch's default threads), back
to back, and prints both wall times, their ratio, each run's final OOD mean, and whether the
sweep's ``seeds.md`` equals ``compare_seeds.py`` on the sweep's own runs.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd: list[str]) -> float:
    started = time.time()
    subprocess.run([sys.executable, *cmd], cwd=ROOT, check=True)
    return time.time() - started


def _ood_mean(run: Path, policy: str) -> float:
    from agents.loop.report import ood_mean
    from agents.loop.run import read_run

    _, rows = read_run(run)
    return ood_mean(max((r for r in rows if r["policy"] == policy), key=lambda r: r["round"]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--policy", default="search,random")
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="passed to sweep.py; "
                   "run_agent.py gets the same as --key value")
    p.add_argument("--cpus-per-trial", default="1")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    out = args.out.resolve()
    sets = [a for kv in args.set for a in ("--set", kv)]
    flags = [a for kv in args.set for a in (f"--{kv.partition('=')[0].replace('_', '-')}", kv.partition("=")[2])]

    swept = _run(["train/sweep.py", "--policy", args.policy, "--seeds", args.seeds, *sets,
                  "--cpus-per-trial", args.cpus_per_trial, "--out", str(out / "sweep")])
    trials = [(pol, int(s)) for pol in args.policy.split(",") for s in args.seeds.split(",")]
    one_by_one = 0.0
    for pol, s in trials:
        one_by_one += _run(["train/run_agent.py", "--policy", pol, "--seed", str(s), *flags,
                            "--out", str(out / "sequential" / f"{pol}-s{s}")])

    runs = [out / "sweep" / "runs" / f"{pol}-s{s}" for pol, s in trials]
    _run(["train/compare_seeds.py", *map(str, runs), "--out", str(out / "by-hand")])
    same = (out / "by-hand" / "seeds.md").read_text() == (out / "sweep" / "compare" / "seeds.md").read_text()
    print(f"\n{len(trials)} runs: sweep {swept / 60:.1f} min, one after another {one_by_one / 60:.1f} min, "
          f"ratio {one_by_one / swept:.2f}x")
    print("| run | OOD mean in the sweep (1 thread) | OOD mean alone (default threads) |\n|---|---:|---:|")
    for (pol, s), run in zip(trials, runs, strict=True):
        alone = out / "sequential" / f"{pol}-s{s}"
        print(f"| {pol}-s{s} | {_ood_mean(run, pol):.1f} | {_ood_mean(alone, pol):.1f} |")
    print(f"sweep's seeds.md equals compare_seeds.py on its runs: {same}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
