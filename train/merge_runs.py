"""Merge runs of different policies, made with the same settings, into one comparison.

Run policies side by side (one per machine, GPU or CPU core), then merge:

    python train/run_agent.py --policy search --out runs/a &
    python train/run_agent.py --policy random --out runs/b &
    wait; python train/merge_runs.py runs/a runs/b --out runs/compared

The merged directory holds every policy's rounds, results.{md,json,csv} with the comparison,
plots/ and the TensorBoard logs, as a ``--policy search,random`` run would.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from agents.analysis.merge import merge_runs
from agents.loop.report import markdown_table
from agents.loop.run import RunError
from posegen_env.cli import run_script


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path, help="run directories written by run_agent.py")
    p.add_argument("--out", type=Path, required=True, help="a new directory for the merged run")
    args = p.parse_args(argv)
    rows = merge_runs(args.runs, args.out)
    print(markdown_table(rows))
    print(f"\nmerged run: {args.out}; see results.md and plots/")
    return 0


# What ends the script with one line instead of a traceback.
ERRORS = (RunError,)


if __name__ == "__main__":
    run_script(main, "merge_runs.py", ERRORS)
