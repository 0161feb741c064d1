"""What a run of alternating rounds shows people: result tables (Markdown, JSON, CSV) and plots."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from PIL import Image

from posegen_env.files import atomic_write
from posegen_env.suites.suites import OUT_OF_DISTRIBUTION, SUITES

BASELINE = "pretrained"
COMPARED_WITH = ("random", "prior", "anchor")  # the fixed policies every learned one is measured against


def suite_mpjpe(row: dict, suite: str) -> float:
    return row["suites"][suite]["eval14"]["mpjpe_mm"]


def ood_mean(row: dict) -> float:
    """Mean MPJPE over the out-of-distribution suites: the figure PoseGen exists to lower."""
    return float(np.mean([suite_mpjpe(row, s) for s in OUT_OF_DISTRIBUTION]))


def changes(row: dict, reference: dict) -> tuple[float, float]:
    """Relative change (%) of the OOD mean and of the in-distribution MPJPE against ``reference``."""
    ood = 100 * (ood_mean(row) / ood_mean(reference) - 1)
    in_dist = 100 * (suite_mpjpe(row, "in-distribution") / suite_mpjpe(reference, "in-distribution") - 1)
    return round(ood, 2), round(in_dist, 2)


def flat_rows(rows: list[dict]) -> list[dict]:
    """One flat record per (policy, round), relative to the pre-trained estimator."""
    base = next((r for r in rows if r["policy"] == BASELINE), None)
    out = []
    for r in rows:
        rec = {"policy": r["policy"], "round": r["round"], "samples": r.get("samples", 0),
               "learn_steps": r.get("learn_steps", 0), "collected_mpjpe_mm": r.get("collected_mpjpe_mm")}
        rec |= {f"{s}_mpjpe_mm": round(suite_mpjpe(r, s), 2) for s in SUITES}
        rec["ood_mean_mpjpe_mm"] = round(ood_mean(r), 2)
        if base is not None:
            rec["ood_change_pct"], rec["in_distribution_change_pct"] = changes(r, base)
        out.append(rec)
    return out


def markdown_table(rows: list[dict]) -> str:
    flat = flat_rows(rows)
    cols = ["policy", "round", "samples", *[f"{s}_mpjpe_mm" for s in SUITES], "ood_mean_mpjpe_mm", "ood_change_pct",
            "in_distribution_change_pct"]
    heads = ["policy", "round", "samples", *SUITES, "OOD mean", "OOD change %", "in-dist change %"]
    lines = ["| " + " | ".join(heads) + " |", "|---|---:|" + "---:|" * (len(heads) - 2)]
    for rec in flat:
        cells = []
        for c in cols:
            v = rec.get(c, "")
            cells.append(f"{v:+.1f}" if c.endswith("_pct") and v != "" else
                         f"{v:.1f}" if isinstance(v, float) else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def comparison(rows: list[dict]) -> dict:
    """Each policy's last round against the pre-trained estimator and the fixed baselines."""
    base = next((r for r in rows if r["policy"] == BASELINE), None)
    final: dict[str, dict] = {}
    for r in rows:
        if r["policy"] != BASELINE and r["round"] >= final.get(r["policy"], {"round": -1})["round"]:
            final[r["policy"]] = r
    if base is None:
        return {}
    out = {}
    for name, r in final.items():
        ood_change, in_dist_change = changes(r, base)
        rec = {"round": r["round"], "ood_mean_mpjpe_mm": round(ood_mean(r), 2), "ood_reduction_pct": -ood_change,
               "in_distribution_change_pct": in_dist_change}
        for other in COMPARED_WITH:
            if other in final and other != name:
                rec[f"vs_{other}_pct"] = -changes(r, final[other])[0]
        out[name] = rec
    return out


def comparison_table(comp: dict) -> str:
    """``comparison()`` as Markdown."""
    md = ("| policy | OOD mean (mm) | OOD reduction % | in-dist change % | "
          + " | ".join(f"vs {b} %" for b in COMPARED_WITH) + " |\n|---|" + "---:|" * (3 + len(COMPARED_WITH)) + "\n")
    for name, c in comp.items():
        versus = [f"{c[f'vs_{b}_pct']:+.1f}" if f"vs_{b}_pct" in c else "" for b in COMPARED_WITH]
        md += (f"| {name} | {c['ood_mean_mpjpe_mm']:.1f} | {c['ood_reduction_pct']:+.1f} | "
               f"{c['in_distribution_change_pct']:+.1f} | " + " | ".join(versus) + " |\n")
    return md


def write_tables(run_dir: Path, rows: list[dict]) -> str:
    """results.json / results.csv / results.md in ``run_dir``; returns the Markdown."""
    md = "# Results\n\nMPJPE (mm, 14 joints) per test suite after each round.\n\n" + markdown_table(rows) + "\n"
    comp = comparison(rows)
    if comp:
        md += "\n## Comparison (last round of each policy)\n\n" + comparison_table(comp)
    notes = [f"- {r['policy']} round {r['round']}: {what}" for r in rows for what in r.get("fallbacks", [])]
    if notes:
        md += "\n\n## Fallbacks (damaged files found on resume)\n\n" + "\n".join(notes) + "\n"
    atomic_write(run_dir / "results.json", lambda t: t.write_text(json.dumps(
        {"rows": rows, "comparison": comp}, indent=1, default=float)))
    flat = flat_rows(rows)
    buf = io.StringIO()
    if flat:
        writer = csv.DictWriter(buf, fieldnames=list(dict.fromkeys(k for rec in flat for k in rec)))
        writer.writeheader()
        writer.writerows(flat)
    atomic_write(run_dir / "results.csv", lambda t: t.write_text(buf.getvalue()))
    atomic_write(run_dir / "results.md", lambda t: t.write_text(md))
    return md


def save_plot(fig, path: Path) -> None:
    """PNG with a 256-colour palette: plots have few colours, and scatter plots shrink several times."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    image = Image.open(buf).convert("RGB").quantize(256)
    atomic_write(path, lambda tmp: image.save(tmp, format="png", optimize=True))


def plot_suites(run_dir: Path, rows: list[dict]) -> None:
    """Test-suite MPJPE against round, one line per policy (round 0 = the pre-trained estimator)."""
    base = next((r for r in rows if r["policy"] == BASELINE), None)
    policies = list(dict.fromkeys(r["policy"] for r in rows if r["policy"] != BASELINE))
    panels = [*SUITES, "OOD mean"]
    fig = Figure(figsize=(3.2 * len(panels), 3.2))
    axes = fig.subplots(1, len(panels))
    for ax, panel in zip(axes, panels, strict=True):
        value = ood_mean if panel == "OOD mean" else (lambda r, s=panel: suite_mpjpe(r, s))
        for p in policies:
            mine = sorted((r for r in rows if r["policy"] == p), key=lambda r: r["round"])
            pts = ([(0, value(base))] if base else []) + [(r["round"], value(r)) for r in mine]
            ax.plot(*zip(*pts, strict=True), marker="o", label=p)
        ax.set_title(panel)
        ax.set_xlabel("round")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("MPJPE (mm)")
    if policies:
        axes[-1].legend(fontsize=8)
    save_plot(fig, run_dir / "plots" / "suites_vs_round.png")


def plot_rewards(run_dir: Path, curves: dict[str, list[tuple[int, float]]],
                 round_starts: dict[int, int] | None = None) -> None:
    """Mean reward of each learning batch against environment steps, per learned policy.

    Each round learns against the estimator the round before fine-tuned, so the reward drops at a round
    boundary when fine-tuning worked; ``round_starts`` (round -> its first step) marks those boundaries so
    the drop does not read as learning getting worse."""
    fig = Figure(figsize=(7, 4.2))
    ax = fig.subplots()
    for name, pts in curves.items():
        if pts:
            steps, values = zip(*pts, strict=True)
            ax.plot(steps, values, label=name, lw=1)
    last = max((s for pts in curves.values() for s, _ in pts), default=0)
    boundaries = {k: step for k, step in sorted((round_starts or {}).items()) if 0 < step < last}
    for k, step in boundaries.items():
        ax.axvline(step, color="0.35", ls="--", lw=0.9)
        ax.text(step, 0.98, f"round {k}: fine-tuned estimator", transform=ax.get_xaxis_transform(), rotation=90,
                ha="center", va="top", fontsize=7, color="0.2",
                bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "0.6", "lw": 0.5, "alpha": 0.9})
    ax.set_title("Learning reward, against each round's estimator", fontsize=10)
    ax.set_xlabel("environment steps (all rounds)")
    ax.set_ylabel("mean reward per batch")
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(fontsize=8)
        note = ("The reward grows with the error of the estimator a round faces. Each round faces the estimator "
                "fine-tuned at the end of the round before, so a drop at a dashed line means the estimator got "
                "better, not that the policy learned worse." if boundaries else
                "The reward grows with the error of the estimator the round faces (round 1: the pre-trained one).")
    else:
        note = "No learned policy in this run: fixed policies do not learn, so there is no reward curve."
    fig.text(0.5, -0.02, note, ha="center", va="top", fontsize=7.5, wrap=True)
    save_plot(fig, run_dir / "plots" / "rewards.png")


def plot_sample_space(run_dir: Path, samples: dict[str, dict]) -> None:
    """Where each policy's collected samples lie: camera azimuth/elevation and body tilt, coloured by error.

    Written once, at the end of a run, from each policy's last round (``samples[name]["round"]``): the title
    says which round, as the samples move from round to round while the estimator they face is fine-tuned."""
    names = list(samples)
    if not names:
        return
    fig = Figure(figsize=(3.4 * len(names), 6.4))
    axes = fig.subplots(2, len(names), squeeze=False)
    fig.subplots_adjust(wspace=0.35, hspace=0.3)
    for k, name in enumerate(names):
        s = samples[name]
        top, bottom = axes[0, k], axes[1, k]
        dots = {"c": s["mpjpe_mm"], "s": 4, "lw": 0, "cmap": "viridis", "vmin": 0, "vmax": 500}
        sc = top.scatter(s["azimuth_deg"], s["elevation_deg"], **dots)
        top.set_title(f"{name}, round {s['round']}" if "round" in s else name, fontsize=10)
        top.set_xlim(-180, 180)
        top.set_ylim(-60, 85)
        top.set_xlabel("camera azimuth (deg)")
        bottom.scatter(s["pitch_deg"], s["roll_deg"], **dots)
        bottom.set_xlim(-90, 90)
        bottom.set_ylim(-90, 90)
        bottom.set_xlabel("body pitch (deg)")
    axes[0, 0].set_ylabel("camera elevation (deg)")
    axes[1, 0].set_ylabel("body roll (deg)")
    fig.colorbar(sc, ax=axes.ravel().tolist(), label="MPJPE (mm) of the estimator the round collected against")
    fig.suptitle("Samples collected in each policy's last round", fontsize=11)
    save_plot(fig, run_dir / "plots" / "sample_space.png")
