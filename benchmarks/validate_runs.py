"""Score finished runs on the suites' validation split, to choose settings without the test suites.

    python benchmarks/validate_runs.py runs/reach-0.25 runs/reach-0.5 runs/baselines

Every round's fine-tuned estimator, and the pre-trained one, is evaluated on the validation split
of the four suites (the test suites' generators with other seeds, ``posegen_env.suites.suites``). Prints
the same tables as a run's ``results.md`` -- with a policy that occurs in several runs labelled by
its run directory -- and writes them to ``--json``. Settings chosen on these figures (such as the
learned policies' ``--reach``) leave the test figures an unbiased estimate.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from agents.loop.report import BASELINE, comparison, comparison_table, markdown_table
from agents.loop.run import RoundConfig, round_dir
from posegen_env.estimation.checkpoints import load_estimator
from posegen_env.render.avatar.loading import load_renderer
from posegen_env.suites.suites import evaluate_suites


def finished_rounds(run: Path) -> list[dict]:
    """The result rows of every round the run recorded, in its order."""
    return [r for r in json.loads((run / "results.json").read_text())["rows"] if r["policy"] != BASELINE]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path, help="run directories of train/run_agent.py")
    p.add_argument("--json", type=Path, default=Path("runs/validation.json"))
    args = p.parse_args(argv)
    for run in args.runs:
        if not (run / "results.json").is_file():
            p.error(f"{run} has no results.json; give run directories of train/run_agent.py")
    configs = [RoundConfig.read(run / "config.json") for run in args.runs]
    if len({(c.avatar, c.estimator, c.suite_samples, c.background_mix, c.backgrounds) for c in configs}) > 1:
        p.error("the runs start from different avatars, estimators, suite sizes or backgrounds; validate them "
                "separately")
    config = configs[0]
    avatar, background = load_renderer(config.avatar), config.background  # parsed once: it may list a folder
    rounds = {run: finished_rounds(run) for run in args.runs}
    counts = Counter(name for run in args.runs for name in dict.fromkeys(r["policy"] for r in rounds[run]))

    def scores(estimator) -> dict:
        return evaluate_suites(estimator, avatar, num_samples=config.suite_samples, split="validation",
                               background=background)

    rows = [{"policy": BASELINE, "round": 0, "suites": scores(load_estimator(config.estimator))}]
    for run in args.runs:
        for row in rounds[run]:
            name, k = row["policy"], row["round"]
            label = name if counts[name] == 1 else f"{name} ({run.name})"
            rows.append(row | {"policy": label,
                               "suites": scores(load_estimator(round_dir(run, name, k) / "estimator.pt"))})
    print("MPJPE (mm, 14 joints) on the validation split of each suite\n")
    print(markdown_table(rows))
    comp = comparison(rows)
    print("\n" + comparison_table(comp))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"runs": [str(r) for r in args.runs], "split": "validation", "rows": rows,
                                     "comparison": comp}, indent=1, default=float))
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
