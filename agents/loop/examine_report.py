"""What examine mode shows: how hard each policy's samples are, and where the estimator fails.

Policies are compared by the mean error of the samples they collect at equal budgets (mean and
run-to-run spread over seeds), against ``random``, ``anchor`` and, for a learned policy, its own
untrained start. A learned policy earns its place only if it beats its start and ``anchor`` by more
than that spread. Where the estimator fails is shown as error maps over camera azimuth and
elevation and over body tilt, per-joint errors in its own joint set, and the error per subject and
per background kind.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from agents.loop.report import save_plot
from posegen_env.envs.action_space import ROOT_SLICE, ROOT_TILT_DEG, decode
from posegen_env.files import atomic_write

REFERENCES = ("random", "anchor")
UNTRAINED = " (untrained)"
MAP_BINS = {"azimuth_deg": np.linspace(-180, 180, 13), "elevation_deg": np.linspace(-60, 90, 11),
            "pitch_deg": np.linspace(-90, 90, 10), "roll_deg": np.linspace(-90, 90, 10)}


def summarise(records: list[dict], policies: list[str]) -> dict:
    """Per row (policy or untrained start): mean ± spread over seeds of its samples' error, its
    no-detection and implausible rates, ratios to the references, and the verdict for learned ones.

    One seed has no run-to-run spread: its ``spread_mm`` is None (not 0.0, which would read as a measured
    spread of nothing), and so are a verdict's ``spread_mm`` and ``beats`` when either side has one seed."""
    rows: dict[str, dict] = {}
    labels = list(dict.fromkeys(r["policy"] for r in records))
    for label in labels:
        mine = [r for r in records if r["policy"] == label]
        errors = np.array([r["mean_error_mm"] for r in mine])
        rows[label] = {"seeds": len(mine), "samples": int(np.mean([r["samples"] for r in mine])),
                       "mean_error_mm": float(errors.mean()),
                       "spread_mm": float(errors.std(ddof=1)) if len(mine) > 1 else None,
                       "per_seed_mm": errors.round(2).tolist(),
                       "no_detection_pct": float(np.mean([r["no_detection_pct"] for r in mine])),
                       "implausible_pct": float(np.mean([r["implausible_pct"] for r in mine]))}
    for label, row in rows.items():
        for ref in REFERENCES:
            if ref in rows and ref != label:
                row[f"vs_{ref}"] = row["mean_error_mm"] / rows[ref]["mean_error_mm"]
    verdicts = {}
    for name in policies:
        start = rows.get(name + UNTRAINED)
        if start is None:
            continue
        learned = rows[name]
        row = {}
        for other_label in (name + UNTRAINED, "anchor"):
            if other_label in rows:
                other = rows[other_label]
                margin = learned["mean_error_mm"] - other["mean_error_mm"]
                spreads = (learned["spread_mm"], other["spread_mm"])
                spread = None if None in spreads else max(spreads)
                row[other_label] = {"margin_mm": margin, "spread_mm": spread,
                                    "beats": None if spread is None else bool(margin > spread)}
        learned["vs_untrained"] = learned["mean_error_mm"] / start["mean_error_mm"]
        verdicts[name] = row
    return {"rows": rows, "verdicts": verdicts}


def _spread_cell(spread_mm: float | None) -> str:
    return "none (one seed)" if spread_mm is None else f"{spread_mm:.1f}"


def comparison_markdown(summary: dict) -> str:
    """The comparison table and one verdict line per learned policy and reference; with one seed the verdict
    gives the margin alone, as there is no run-to-run spread to weigh it against."""
    rows = summary["rows"]
    lines = ["| policy | seeds | mean error of its samples (mm) | spread (mm) | x random | x anchor | x untrained | "
             "no detection % | implausible draws % |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for label, r in rows.items():
        def ratio(key: str, row: dict = r) -> str:
            return f"{row[key]:.2f}" if key in row else ""
        lines.append(f"| {label} | {r['seeds']} | {r['mean_error_mm']:.1f} | {_spread_cell(r['spread_mm'])} | "
                     f"{ratio('vs_random')} | {ratio('vs_anchor')} | {ratio('vs_untrained')} | "
                     f"{r['no_detection_pct']:.1f} | {r['implausible_pct']:.1f} |")
    for name, against in summary["verdicts"].items():
        for other, v in against.items():
            if v["spread_mm"] is None:
                lines.append(f"\n{name} against {other}: {v['margin_mm']:+.1f} mm in the mean error of its samples; no "
                             "spread to report (one seed; run three or more seeds to see run-to-run spread).")
                continue
            verb = "beats" if v["beats"] else "does not beat"
            lines.append(f"\n{name} {verb} {other} by more than the run-to-run spread: "
                         f"{v['margin_mm']:+.1f} mm against a spread of {v['spread_mm']:.1f} mm.")
    return "\n".join(lines)


def breakdowns(records: list[dict]) -> dict:
    """Mean error of all collected samples per subject and per background kind."""
    by_subject: dict[str, list[float]] = defaultdict(list)
    by_background: dict[str, list[float]] = defaultdict(list)
    for r in records:
        for s, e in zip(r["subjects"] or ["the one person"] * len(r["errors"]), r["errors"], strict=True):
            by_subject[s].append(float(e))
        for b, e in zip(r["backgrounds"] if r["backgrounds"] is not None else [], r["errors"], strict=False):
            by_background[json.loads(b).get("kind", "?") if b else "?"].append(float(e))
    return {"subject": {k: float(np.mean(v)) for k, v in sorted(by_subject.items())},
            "background": {k: float(np.mean(v)) for k, v in sorted(by_background.items())}}


def _coordinates(record: dict) -> dict[str, np.ndarray]:
    actions = np.asarray(record["actions"], np.float64)
    cams = decode(actions, record["choose"]).cameras
    tilt = actions[:, ROOT_SLICE] * ROOT_TILT_DEG
    azimuth = (cams.azimuth_deg + 180.0) % 360.0 - 180.0
    return {"azimuth_deg": azimuth, "elevation_deg": cams.elevation_deg, "pitch_deg": tilt[:, 0],
            "roll_deg": tilt[:, 1]}


def _binned(x, y, values, bx, by) -> np.ndarray:
    total, _, _ = np.histogram2d(x, y, [bx, by], weights=values)
    count, _, _ = np.histogram2d(x, y, [bx, by])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan).T


def plot_error_maps(path: Path, records: list[dict]) -> None:
    """Mean error over camera azimuth x elevation and body pitch x roll: one row per policy, all seeds."""
    labels = list(dict.fromkeys(r["policy"] for r in records))
    fig = Figure(figsize=(9, 3.2 * len(labels)))
    axes = fig.subplots(len(labels), 2, squeeze=False)
    fig.subplots_adjust(hspace=0.45, wspace=0.3)
    image = None
    for row, label in enumerate(labels):
        mine = [r for r in records if r["policy"] == label]
        coords = [_coordinates(r) for r in mine]
        errors = np.concatenate([r["errors"] for r in mine])
        for col, (kx, ky) in enumerate((("azimuth_deg", "elevation_deg"), ("pitch_deg", "roll_deg"))):
            x, y = (np.concatenate([c[k] for c in coords]) for k in (kx, ky))
            grid = _binned(x, y, errors, MAP_BINS[kx], MAP_BINS[ky])
            ax = axes[row, col]
            image = ax.imshow(grid, origin="lower", aspect="auto", cmap="magma", vmin=0, vmax=500,
                              extent=(MAP_BINS[kx][0], MAP_BINS[kx][-1], MAP_BINS[ky][0], MAP_BINS[ky][-1]))
            ax.set_xlabel(kx.replace("_deg", " (deg)").replace("_", " "))
            ax.set_ylabel(ky.replace("_deg", " (deg)").replace("_", " "))
            ax.set_title(f"{label}: {'camera' if col == 0 else 'body tilt'}", fontsize=9)
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), label="mean error (mm); blank: no samples")
    save_plot(fig, path)


def plot_per_joint(path: Path, records: list[dict], joints: tuple[str, ...]) -> dict[str, list[float]]:
    """Per-joint error of detected samples (the estimator's own joints), one bar group per policy."""
    labels = list(dict.fromkeys(r["policy"] for r in records))
    means = {label: np.nanmean([r["per_joint_mm"] for r in records if r["policy"] == label], axis=0).tolist()
             for label in labels}
    fig = Figure(figsize=(max(6.0, 0.45 * len(joints) * max(1, len(labels)) / 2), 3.6))
    ax = fig.subplots()
    width = 0.8 / max(len(labels), 1)
    for k, label in enumerate(labels):
        ax.bar(np.arange(len(joints)) + k * width, means[label], width, label=label)
    ax.set_xticks(np.arange(len(joints)) + 0.4 - width / 2, joints, rotation=70, fontsize=7)
    ax.set_ylabel("root-relative error (mm)")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7)
    save_plot(fig, path)
    return means


def write_report(out_dir: Path, records: list[dict], policies: list[str], joints: tuple[str, ...]) -> dict:
    """comparison.{md,json}, error_maps.png and per_joint.png in ``out_dir``; returns the summary."""
    summary = summarise(records, policies)
    per_joint = plot_per_joint(out_dir / "per_joint.png", records, joints)
    summary["per_joint_mm"] = {label: dict(zip(joints, values, strict=True)) for label, values in per_joint.items()}
    summary["breakdown"] = breakdowns(records)
    summary["curves"] = {f"{r['policy']} seed {r['seed']}": r["curve"] for r in records if r["curve"]}
    plot_error_maps(out_dir / "error_maps.png", records)
    md = ("# Examine mode\n\nMean error of each policy's collected samples at equal budgets (a sample with no "
          "detection scores the no-detection error).\n\n" + comparison_markdown(summary) +
          "\n\n## Error by subject and background\n\n" +
          "\n".join(f"- {kind} {key}: {value:.1f} mm" for kind, table in summary["breakdown"].items()
                    for key, value in table.items()) + "\n")
    atomic_write(out_dir / "comparison.json", lambda t: t.write_text(json.dumps(summary, indent=1, default=float)))
    atomic_write(out_dir / "comparison.md", lambda t: t.write_text(md))
    summary["markdown"] = md
    return summary
