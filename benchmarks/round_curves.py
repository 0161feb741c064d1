"""Test-suite error over the rounds, one curve per sampler and seed: does a learned sampler keep
gaining after a fixed distribution has been learned?

    python benchmarks/round_curves.py runs/anchor-s0 runs/anchor-s1 runs/fresh-s0 runs/fresh-s1 \
        --out docs/images/round_curves.png

Each run's policies are labelled by name plus the learning settings in which the run differs from
the defaults (``search, fresh_share=0.5``), so variants of one policy get curves of their own.
Prints the table (mean over seeds per round) and writes the plot: OOD mean and in-distribution
MPJPE against the round, round 0 being the pre-trained estimator.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from agents.loop.report import BASELINE, ood_mean, suite_mpjpe  # noqa: E402
from agents.loop.run import LEARNING_SETTINGS, RoundConfig, read_run  # noqa: E402
from agents.policies import POLICIES  # noqa: E402


def label(policy: str, config: RoundConfig) -> str:
    """The policy's name and the learning settings in which its run differs from the defaults."""
    if not POLICIES[policy].learns:
        return policy
    changed = [f"{k}={getattr(config, k)}" for k in config.differences(RoundConfig()) if k in LEARNING_SETTINGS]
    return ", ".join([policy, *changed])


def curves(runs: list[Path]) -> dict[str, dict[int, dict[int, tuple[float, float]]]]:
    """label -> seed -> round -> (OOD mean, in-distribution) in mm; round 0 is the pre-trained estimator."""
    out: dict[str, dict[int, dict[int, tuple[float, float]]]] = defaultdict(lambda: defaultdict(dict))
    for run in runs:
        config, rows = read_run(run)
        base = next(r for r in rows if r["policy"] == BASELINE)
        for row in rows:
            if row["policy"] == BASELINE:
                continue
            key = label(row["policy"], config)
            out[key][config.seed][0] = (ood_mean(base), suite_mpjpe(base, "in-distribution"))
            out[key][config.seed][row["round"]] = (ood_mean(row), suite_mpjpe(row, "in-distribution"))
    return out


def table(data: dict) -> str:
    rounds = sorted({k for seeds in data.values() for per in seeds.values() for k in per})
    lines = ["| sampler | seeds | " + " | ".join(f"round {k}" for k in rounds) + " |",
             "|---|---|" + "---:|" * len(rounds)]
    for key, seeds in sorted(data.items()):
        cells = []
        for k in rounds:
            values = [per[k][0] for per in seeds.values() if k in per]
            cells.append(f"{np.mean(values):.1f}" + (f" ({len(values)})" if len(values) != len(seeds) else "")
                         if values else "")
        lines.append(f"| {key} | {', '.join(map(str, sorted(seeds)))} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(data: dict, path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for c, (key, seeds) in enumerate(sorted(data.items())):
        for i, (_, per) in enumerate(sorted(seeds.items())):
            ks = sorted(per)
            for j, ax in enumerate(axes):
                ax.plot(ks, [per[k][j] for k in ks], marker="o", color=colours[c % len(colours)], alpha=0.8,
                        label=key if i == 0 and j == 0 else None, linestyle="-" if i == 0 else "--")
    axes[0].set(title="OOD mean of the test suites (held-out people)", xlabel="round", ylabel="MPJPE (mm)")
    axes[1].set(title="in-distribution suite", xlabel="round", ylabel="MPJPE (mm)")
    axes[0].legend(fontsize=8)
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path, help="run directories of train/run_agent.py (finished or not)")
    p.add_argument("--out", type=Path, default=Path("round_curves.png"))
    args = p.parse_args()
    data = curves(args.runs)
    print(table(data))
    plot(data, args.out)
    print(f"\nplot: {args.out} (solid: the first seed, dashed: the others)")


if __name__ == "__main__":
    main()
