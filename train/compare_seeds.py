"""Compare sampling policies over several seeds: per-seed results, mean (sd) and the lead over a
baseline policy with a 95 % bootstrap interval.

    for s in 0 1 2; do
        python train/run_agent.py --policy search,random --seed $s --out runs/seed-$s
    done
    python train/compare_seeds.py runs/seed-* --out runs/seeds

The runs must be finished and differ only in --policy and --seed, or in settings none of a run's
policies reads (the reward of a run of ``random`` alone, say). Each policy's last round counts
once per seed. Scores come from the test suites recorded in each run; ``--split validation``
re-scores every final estimator on the suites' validation split instead, the one to choose
settings on. Writes seeds.md, seeds.json and seeds.png (each seed's result per suite) to --out.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agents.analysis.seeds import final_rounds, rescore, summarise, write_summary
from agents.loop.run import RunError
from posegen_env.cli import run_script
from posegen_env.suites.suites import SPLITS


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path, help="finished run directories of run_agent.py")
    p.add_argument("--out", type=Path, default=Path("runs/seeds"), help="where seeds.md/.json/.png go")
    p.add_argument("--split", choices=SPLITS, default="test",
                   help="test: the scores the runs recorded; validation: re-score the final estimators")
    p.add_argument("--reference", default="random", help="the policy every other one's lead is measured against")
    p.add_argument("--round", type=int, default=None, metavar="K",
                   help="compare round K of every run (default: each run's last round), e.g. round 2 of 5-round runs")
    args = p.parse_args(argv)
    if args.round is not None and args.round < 1:
        p.error(f"--round {args.round}: give a round number, 1 or more")
    config, baseline, finals = final_rounds(args.runs, args.round)
    if args.split != "test":
        baseline, finals = rescore(config, baseline, finals, args.split)
    summary = summarise(baseline, finals, reference=args.reference)
    if args.reference not in summary["policies"]:
        print(f"note: no run of {args.reference!r} given, so no leads are computed", file=sys.stderr)
    print(write_summary(args.out, summary, args.split))
    print(f"wrote {args.out}/seeds.md, seeds.json and seeds.png")
    return 0


# What ends the script with one line instead of a traceback.
ERRORS = (RunError,)


if __name__ == "__main__":
    run_script(main, "compare_seeds.py", ERRORS)
