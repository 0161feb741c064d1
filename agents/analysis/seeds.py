"""Comparing sampling policies over seeds: means, spreads and the lead over a baseline with its uncertainty.

One run per policy is not evidence: the same settings end two default rounds apart from seed to
seed by about as much as policies differ from one another (``benchmarks/RESULTS.md`` has the
spreads). Most of that spread is how far the in-distribution guard blended each fine-tuned
estimator back (its α, listed per seed). So a claim such as "``search`` leads ``random``" is made
over runs with different ``--seed``s and otherwise equal settings, with a bootstrap confidence
interval that resamples each policy's seeds independently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from scipy import stats
from tqdm import tqdm

from agents.loop.report import BASELINE, changes, ood_mean, save_plot, suite_mpjpe
from agents.loop.run import RoundConfig, RunError, check_comparable, read_run, round_dir, rounds_done
from posegen_env.estimation.checkpoints import load_estimator
from posegen_env.files import atomic_write
from posegen_env.render.avatar.loading import load_renderer
from posegen_env.suites.suites import (
    OUT_OF_DISTRIBUTION,
    SUITES,
    evaluate_suites,
)

VARY = ("policies", "seed")  # what may differ between the runs of one comparison


@dataclass
class FinalRound:
    """A policy's last round in one run: what the comparison counts as one seed's result."""

    policy: str
    seed: int
    run: Path
    round: int
    row: dict  # the round's result row (its ``suites`` are on the split being compared)


def final_rounds(runs: list[Path], at_round: int | None = None) -> tuple[RoundConfig, dict, list[FinalRound]]:
    """The last round (or round ``at_round``) of every policy of every run, and the pre-trained row of
    the first run.

    The runs must agree in every setting their policies read, the policies and the seed apart, be
    finished (up to ``at_round``), and hold each (policy, seed) once: the same seed twice would count
    one result twice. ``at_round`` compares runs of different lengths at a round they all reached."""
    if not runs:
        raise RunError("give at least one run directory")
    runs = [Path(run) for run in runs]
    read = [read_run(run) for run in runs]
    configs = [config for config, _ in read]
    vary = VARY if at_round is None else (*VARY, "rounds")  # compared at one round, their lengths may differ
    ref = check_comparable(runs, configs, vary, "--policy and --seed" + ("" if at_round is None else " (and --rounds)"))
    found: list[FinalRound] = []
    seen: dict[tuple[str, int], Path] = {}
    for run, (config, rows) in zip(runs, read, strict=True):
        wanted = config.rounds if at_round is None else at_round
        for name in config.policies:
            done = rounds_done(rows, name)
            if done < wanted:
                more = f" --rounds {wanted}" if wanted > config.rounds else ""
                raise RunError(f"{run}: {name} has finished {done} of {wanted} rounds; finish it with "
                               f"`python train/run_agent.py --resume {run}{more}` first")
            if (name, config.seed) in seen:
                raise RunError(f"{name} with seed {config.seed} is in both {seen[name, config.seed]} and {run}; "
                               "pass each seed of a policy once")
            seen[name, config.seed] = run
            row = next(r for r in rows if r["policy"] == name and r["round"] == wanted)
            found.append(FinalRound(name, config.seed, run, wanted, row))
    baseline = next(r for r in read[0][1] if r["policy"] == BASELINE)
    return configs[ref], baseline, found


def rescore(config: RoundConfig, baseline: dict, finals: list[FinalRound], split: str,
            device=None) -> tuple[dict, list[FinalRound]]:
    """The pre-trained and the final estimators scored on another split of the suites (``validation``
    to choose settings without looking at the test suites); the runs' rows hold the test split."""
    avatar, background = load_renderer(config.avatar), config.background  # parsed once: it may list a folder

    def scores(path) -> dict:
        return evaluate_suites(load_estimator(path, device), avatar, num_samples=config.suite_samples, split=split,
                               background=background)

    baseline = baseline | {"suites": scores(config.estimator)}
    finals = [replace(f, row=f.row | {"suites": scores(round_dir(f.run, f.policy, f.round) / "estimator.pt")})
              for f in tqdm(finals, desc=f"scoring on the {split} split", unit="estimator")]
    return baseline, finals


def _lead_pct(mine: np.ndarray, reference: np.ndarray, axis: int = -1) -> np.ndarray | float:
    """How much lower (%) ``mine``'s mean OOD error is than ``reference``'s, along ``axis``."""
    return 100.0 * (1.0 - mine.mean(axis=axis) / reference.mean(axis=axis))


def _lead_ci95(mine: np.ndarray, reference: np.ndarray, resamples: int, seed: int) -> list[float]:
    """95 % bootstrap interval of the lead, each policy's seeds resampled on their own.

    Percentile rather than BCa: BCa's jackknife correction from two or three seeds is itself
    noise, and it has no answer (NaN) when every resampled lead is the same."""
    ci = stats.bootstrap((mine, reference), _lead_pct, n_resamples=resamples, vectorized=True, paired=False,
                         confidence_level=0.95, method="percentile",
                         random_state=np.random.default_rng(seed)).confidence_interval
    return [round(float(ci.low), 2), round(float(ci.high), 2)]


def summarise(baseline: dict, finals: list[FinalRound], reference: str = "random", resamples: int = 10000,
              seed: int = 0) -> dict:
    """Per policy: seeds, OOD mean per seed, mean and standard deviation, per-suite means, and the lead
    over ``reference`` (``None`` where it is absent) with a 95 % bootstrap interval when both have two
    or more seeds (``resamples`` draws from ``seed``, the same for every policy)."""
    by_policy: dict[str, list[FinalRound]] = {}
    for f in sorted(finals, key=lambda f: f.seed):
        by_policy.setdefault(f.policy, []).append(f)
    ood = {name: np.array([ood_mean(f.row) for f in fs]) for name, fs in by_policy.items()}
    out: dict = {"baseline": {"ood_mean_mpjpe_mm": round(ood_mean(baseline), 2),
                        "in_distribution_mpjpe_mm": round(suite_mpjpe(baseline, "in-distribution"), 2)},
           "reference": reference, "policies": {}}
    for name, fs in by_policy.items():
        values = ood[name]
        rec = {"seeds": [f.seed for f in fs], "runs": [str(f.run) for f in fs], "rounds": [f.round for f in fs],
               "ood_mean_mpjpe_mm": [round(float(v), 2) for v in values],
               "mean": round(float(values.mean()), 2),
               "sd": round(float(values.std(ddof=1)), 2) if len(values) > 1 else None,
               "per_seed_suites": {s: [round(suite_mpjpe(f.row, s), 2) for f in fs] for s in SUITES},
               "suite_means_mpjpe_mm": {s: round(float(np.mean([suite_mpjpe(f.row, s) for f in fs])), 2)
                                        for s in SUITES},
               # the in-distribution guard's blend of the last fine-tuning (None: it kept the previous weights)
               "blend_alpha": [f.row.get("blend_alpha") for f in fs],
               "ood_change_pct": round(100.0 * (values.mean() / ood_mean(baseline) - 1.0), 2),
               "worst_in_distribution_change_pct": max(changes(f.row, baseline)[1] for f in fs)}
        if reference in ood and name != reference:
            ref = ood[reference]
            rec["lead_pct"] = round(float(_lead_pct(values, ref)), 2)
            if len(values) > 1 and len(ref) > 1:  # one seed has no spread to resample
                rec["lead_ci95_pct"] = _lead_ci95(values, ref, resamples, seed)
        out["policies"][name] = rec
    return out


def seeds_table(summary: dict) -> str:
    """``summarise()`` as Markdown: one line per policy."""
    ref = summary["reference"]
    short = {"novel-views": "views", "novel-poses": "poses", "hard": "hard"}
    heads = ["policy", "seeds", "OOD mean per seed", "blend α per seed", "mean (sd)",
             " / ".join(short[s] for s in OUT_OF_DISTRIBUTION), "OOD change %", "worst in-dist change %",
             f"lead over {ref} % (95 % CI)"]
    lines = ["| " + " | ".join(heads) + " |", "|---|---|---|---|---:|---|---:|---:|---:|"]
    for name, p in summary["policies"].items():
        spread = f"{p['mean']:.1f}" + (f" ({p['sd']:.1f})" if p["sd"] is not None else "")
        lead = ""
        if "lead_pct" in p:
            lead = f"{p['lead_pct']:+.1f}"
            if "lead_ci95_pct" in p:
                lo, hi = p["lead_ci95_pct"]
                lead += f" ({lo:+.1f} to {hi:+.1f})"
        lines.append("| " + " | ".join([
            name, ", ".join(map(str, p["seeds"])), ", ".join(f"{v:.1f}" for v in p["ood_mean_mpjpe_mm"]),
            ", ".join("kept" if a is None else f"{a:g}" for a in p["blend_alpha"]), spread,
            " / ".join(f"{p['suite_means_mpjpe_mm'][s]:.1f}" for s in OUT_OF_DISTRIBUTION),
            f"{p['ood_change_pct']:+.1f}", f"{p['worst_in_distribution_change_pct']:+.1f}", lead]) + " |")
    return "\n".join(lines)


def plot_seeds(summary: dict, path: Path) -> None:
    """Each seed's result as a dot, the policy's mean as a bar, per OOD suite and for their mean."""
    names = list(summary["policies"])
    panels = [*OUT_OF_DISTRIBUTION, "OOD mean"]
    fig = Figure(figsize=(3.2 * len(panels), 3.4))
    axes = fig.subplots(1, len(panels))
    for ax, panel in zip(axes, panels, strict=True):
        for i, name in enumerate(names):
            p = summary["policies"][name]
            values = (p["ood_mean_mpjpe_mm"] if panel == "OOD mean" else p["per_seed_suites"][panel])
            jitter = np.linspace(-0.15, 0.15, len(values)) if len(values) > 1 else np.zeros(1)
            ax.scatter(i + jitter, values, s=14, color=f"C{i}", zorder=3)
            ax.hlines(np.mean(values), i - 0.3, i + 0.3, color=f"C{i}", lw=2)
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
        ax.set_title(panel)
        ax.grid(alpha=0.3, axis="y")
    axes[0].set_ylabel("MPJPE (mm), last round")
    save_plot(fig, path)


def write_summary(out: Path, summary: dict, split: str) -> str:
    """seeds.md, seeds.json and seeds.png in ``out``; returns the Markdown."""
    rounds = sorted({k for rec in summary["policies"].values() for k in rec["rounds"]})
    which = f"Round {rounds[0]} of each run" if len(rounds) == 1 else "Last round of each run"
    md = (f"# Policies over seeds ({split} split)\n\n{which}; OOD mean = mean MPJPE (mm, 14 joints) "
          f"over the out-of-distribution suites; pre-trained {summary['baseline']['ood_mean_mpjpe_mm']:.1f} mm.\n\n"
          + seeds_table(summary) + "\n")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "seeds.json", lambda t: t.write_text(json.dumps(summary | {"split": split}, indent=1)))
    atomic_write(out / "seeds.md", lambda t: t.write_text(md))
    plot_seeds(summary, out / "seeds.png")
    return md


def _normalised_scores(baseline: dict, finals: list[FinalRound], policy: str) -> np.ndarray:
    """(seeds, OOD suites): each final MPJPE over the pre-trained one on that suite (lower is better)."""
    fs = sorted((f for f in finals if f.policy == policy), key=lambda f: f.seed)
    return np.array([[suite_mpjpe(f.row, s) / suite_mpjpe(baseline, s) for s in OUT_OF_DISTRIBUTION] for f in fs])


def _stratified(scores: np.ndarray, rng: np.random.Generator, resamples: int) -> np.ndarray:
    """Bootstrap copies of ``scores`` (seeds, tasks), seeds resampled within each task (rliable's scheme)."""
    n, tasks = scores.shape
    pick = rng.integers(n, size=(resamples, n, tasks))
    return scores[pick, np.arange(tasks)]


def _iqm(scores: np.ndarray) -> np.ndarray:
    """Interquartile mean over the last two axes (pooled seeds x tasks): robust to one odd seed."""
    flat = scores.reshape(*scores.shape[:-2], -1)
    return stats.trim_mean(flat, 0.25, axis=-1)


def _p_improvement(mine: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """P(a seed of mine has a lower error than a seed of the reference), averaged over tasks (ties count half)."""
    less = (mine[..., :, None, :] < ref[..., None, :, :]).mean(axis=(-3, -2))
    ties = (mine[..., :, None, :] == ref[..., None, :, :]).mean(axis=(-3, -2))
    return (less + 0.5 * ties).mean(axis=-1)


def aggregates(baseline: dict, finals: list[FinalRound], reference: str = "random", resamples: int = 2000,
               seed: int = 0) -> dict:
    """Per policy, over its seeds and the OOD suites (errors relative to the pre-trained estimator's): the
    interquartile mean and the probability of improvement over ``reference``, with 95 % stratified-bootstrap
    intervals (percentile), as rliable reports them."""
    rng = np.random.default_rng(seed)
    scores = {p: _normalised_scores(baseline, finals, p) for p in dict.fromkeys(f.policy for f in finals)}
    out: dict = {"reference": reference, "score": "final MPJPE / pre-trained MPJPE per OOD suite", "policies": {}}
    for name, mine in scores.items():
        boot = _stratified(mine, rng, resamples)
        rec = {"iqm": round(float(_iqm(mine)), 4),
               "iqm_ci95": [round(float(v), 4) for v in np.percentile(_iqm(boot), [2.5, 97.5])]}
        if reference in scores and name != reference:
            ref = scores[reference]
            rec["p_improvement"] = round(float(_p_improvement(mine, ref)), 3)
            rec["p_improvement_ci95"] = [round(float(v), 3) for v in np.percentile(
                _p_improvement(boot, _stratified(ref, rng, resamples)), [2.5, 97.5])]
        out["policies"][name] = rec
    return out


def aggregates_table(agg: dict) -> str:
    lines = [f"| policy | IQM of error / pre-trained (95 % CI) | P(improvement over {agg['reference']}) (95 % CI) |",
             "|---|---:|---:|"]
    for name, r in agg["policies"].items():
        p = (f"{r['p_improvement']:.2f} ({r['p_improvement_ci95'][0]:.2f} to {r['p_improvement_ci95'][1]:.2f})"
             if "p_improvement" in r else "")
        lines.append(f"| {name} | {r['iqm']:.3f} ({r['iqm_ci95'][0]:.3f} to {r['iqm_ci95'][1]:.3f}) | {p} |")
    return "\n".join(lines)
