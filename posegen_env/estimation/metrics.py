"""Standard 3D pose metrics: MPJPE, PA-MPJPE, PCK3D and per-joint errors, vectorised over a batch.

Inputs are joint positions in **metres**, shaped (N, J, 3) -- SMPL's 24 joints or another joint
set (``body/joint_sets.py``) -- as numpy arrays or torch tensors. Every error is reported in **millimetres**,
the unit the pose-estimation literature quotes, so numbers can be compared with published ones.

MPJPE and PCK3D first subtract each skeleton's root (pelvis, joint 0, or the set's root), so a
global offset of the prediction costs nothing; PA-MPJPE additionally removes rotation and scale (Procrustes), so it
measures only the articulated pose.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from posegen_env.body.joint_sets import get_joint_set
from posegen_env.body.joints import NUM_JOINTS, ROOT_JOINT

M_TO_MM = 1000.0
PCK_THRESHOLD_MM = 150.0

_MAX_LISTED = 5  # how many offending sample indices an error message lists


def _to_numpy(x: Any) -> np.ndarray:
    """Torch tensors (on any device, with or without grad) and array-likes -> float64 numpy."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _bad_samples(x: np.ndarray) -> np.ndarray:
    return np.flatnonzero(~np.isfinite(x).all(axis=(1, 2)))


def _check_pair(pred: Any, gt: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate a prediction / ground-truth pair, so bad data fails loudly instead of averaging to NaN."""
    pred, gt = _to_numpy(pred), _to_numpy(gt)
    for name, x in (("predictions", pred), ("ground truth", gt)):
        if x.ndim != 3 or x.shape[-1] != 3 or x.shape[1] == 0:
            raise ValueError(
                f"{name} must have shape (N, J, 3) with J >= 1 (e.g. (N, {NUM_JOINTS}, 3)), got {x.shape}; "
                "add a batch axis for a single pose"
            )
    if pred.shape != gt.shape:
        raise ValueError(f"predictions and ground truth shapes differ: {pred.shape} vs {gt.shape}")
    for name, x in (("predictions contain", pred), ("ground truth contains", gt)):
        bad = _bad_samples(x)
        if bad.size:
            listed = ", ".join(str(i) for i in bad[:_MAX_LISTED]) + (", ..." if bad.size > _MAX_LISTED else "")
            raise ValueError(f"{name} NaN or inf values for samples [{listed}] ({bad.size} of {len(x)} samples)")
    return pred, gt


def _joint_index(joints: Sequence[int] | np.ndarray | None, num_joints: int) -> np.ndarray:
    if joints is None:
        return np.arange(num_joints)
    idx = np.asarray(joints)
    if idx.ndim != 1 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"joints must be a non-empty 1-D sequence of integer indices, got {joints!r}")
    if idx.min() < -num_joints or idx.max() >= num_joints:
        raise ValueError(f"joint indices {idx.tolist()} out of range for {num_joints} joints")
    return idx


def _root_relative(x: np.ndarray, root: int | Sequence[int] | None) -> np.ndarray:
    """``x`` less its root joint, or the mean of several (a skeleton rooted between the hips)."""
    if root is None:
        return x
    idx = [root] if isinstance(root, int | np.integer) else list(root)
    if not idx or not all(-x.shape[1] <= r < x.shape[1] for r in idx):
        raise ValueError(f"root joint(s) {root} out of range for {x.shape[1]} joints")
    return x - x[:, idx].mean(axis=1, keepdims=True)


def procrustes_align(pred: Any, gt: Any) -> np.ndarray:
    """Best similarity transform (rotation, uniform scale, translation) of ``pred`` onto ``gt``, per sample.

    Least-squares solution via SVD of the cross-covariance (Umeyama). The determinant correction
    keeps the rotation proper (det = +1): a mirrored skeleton is a wrong pose, not a rigid motion,
    and must not be aligned away. Returns the transformed ``pred``, (N, J, 3), in the input unit.
    """
    pred, gt = _check_pair(pred, gt)
    mu_p, mu_g = pred.mean(axis=1, keepdims=True), gt.mean(axis=1, keepdims=True)
    x, y = pred - mu_p, gt - mu_g
    cov = np.einsum("nji,njk->nik", x, y)  # sum_j x_j y_j^T, (N, 3, 3)
    u, sv, vt = np.linalg.svd(cov)
    v = np.swapaxes(vt, 1, 2)
    d = np.sign(np.linalg.det(v @ np.swapaxes(u, 1, 2)))
    d[d == 0] = 1.0
    fix = np.ones_like(sv)
    fix[:, -1] = d
    rot = v @ (fix[:, :, None] * np.swapaxes(u, 1, 2))  # V diag(1, 1, d) U^T
    var_x = (x**2).sum(axis=(1, 2))
    # A prediction collapsed to one point has no scale to fit; it maps onto the gt centroid.
    scale = np.divide((sv * fix).sum(axis=1), var_x, out=np.zeros_like(var_x), where=var_x > 0)
    return scale[:, None, None] * x @ np.swapaxes(rot, 1, 2) + mu_g


def per_joint_errors(
    pred: Any,
    gt: Any,
    joints: Sequence[int] | None = None,
    aligned: bool = False,
    *,
    root: int | Sequence[int] | None = ROOT_JOINT,
) -> np.ndarray:
    """Euclidean error of each joint in mm, (N, J), for inputs in metres.

    ``aligned=False``: root-aligned (joint ``root``, or the mean of several, subtracted before selecting
    ``joints``, so the root need not be in the subset; ``root=None`` when inputs are already
    root-relative or have no root).
    ``aligned=True``: Procrustes-aligned, with the transform fitted on the selected joints only.
    """
    pred, gt = _check_pair(pred, gt)
    idx = _joint_index(joints, pred.shape[1])
    if aligned:
        p, g = procrustes_align(pred[:, idx], gt[:, idx]), gt[:, idx]
    else:
        p, g = _root_relative(pred, root)[:, idx], _root_relative(gt, root)[:, idx]
    return np.linalg.norm(p - g, axis=-1) * M_TO_MM


def mpjpe(pred: Any, gt: Any, joints: Sequence[int] | None = None, *,
          root: int | Sequence[int] | None = ROOT_JOINT) -> np.ndarray:
    """Mean per-joint position error after root alignment, (N,) mm; inputs (N, J, 3) in metres."""
    return per_joint_errors(pred, gt, joints, root=root).mean(axis=1)


def pa_mpjpe(pred: Any, gt: Any, joints: Sequence[int] | None = None) -> np.ndarray:
    """Procrustes-aligned MPJPE, (N,) mm: the error left once global rotation, scale and position are forgiven."""
    return per_joint_errors(pred, gt, joints, aligned=True).mean(axis=1)


def pck3d(
    pred: Any,
    gt: Any,
    threshold_mm: float = PCK_THRESHOLD_MM,
    joints: Sequence[int] | None = None,
    *,
    root: int | Sequence[int] | None = ROOT_JOINT,
) -> np.ndarray:
    """Fraction (0..1) of joints within ``threshold_mm`` (inclusive) after root alignment, (N,).

    Complements MPJPE: it is not dominated by a few wildly wrong joints.
    """
    return (per_joint_errors(pred, gt, joints, root=root) <= threshold_mm).mean(axis=1)


def evaluate_poses(pred: Any, gt: Any, joint_set: Any = "smpl24") -> dict[str, Any]:
    """All standard metrics for a batch of poses (metres) in ``joint_set`` (a name or ``JointSet``), as a
    JSON-serialisable dict.

    Both are root-aligned on the set's root. For "eval14" (the set's standard evaluation subset, 14
    joints where the set has them) and "all" (every joint of the set): batch-mean ``mpjpe_mm``,
    ``pa_mpjpe_mm``, ``pck3d_150_pct`` (percent) and ``per_joint_mpjpe_mm`` keyed by joint name; plus
    ``num_samples`` and ``joint_set``.
    """
    pred, gt = _check_pair(pred, gt)
    joint_set = get_joint_set(joint_set)
    if pred.shape[1] != len(joint_set):
        raise ValueError(f"the {joint_set.name} joint set has {len(joint_set)} joints; got {pred.shape[1]}")
    if len(pred) == 0:
        raise ValueError("evaluate_poses needs at least one sample; the batch is empty")
    results: dict[str, Any] = {"num_samples": len(pred), "joint_set": joint_set.name}
    root = joint_set.root_index
    for subset, names in (("eval14", joint_set.eval_joints), ("all", joint_set.joints)):
        idx = joint_set.index(names)
        errors = per_joint_errors(pred, gt, idx, root=root)
        results[subset] = {
            "mpjpe_mm": float(errors.mean()),
            "pa_mpjpe_mm": float(pa_mpjpe(pred, gt, idx).mean()),
            "pck3d_150_pct": float((errors <= PCK_THRESHOLD_MM).mean() * 100.0),
            "per_joint_mpjpe_mm": {name: float(e) for name, e in zip(names, errors.mean(axis=0), strict=True)},
        }
    return results


def format_table(results: Mapping[str, Mapping[str, Any]]) -> str:
    """Markdown table of ``evaluate_poses`` outputs, one row per name (e.g. test suite).

    The first three metric columns use the set's evaluation subset, the last all its joints.
    """
    header = "| name | samples | MPJPE-14 (mm) | PA-MPJPE-14 (mm) | PCK3D@150-14 (%) | MPJPE-all (mm) |"
    lines = [header, "|---|---:|---:|---:|---:|---:|"]
    for name, r in results.items():
        e14, every = r["eval14"], r.get("all", r.get("all24"))  # "all24": result files before joint sets
        cells = [
            str(name).replace("|", "\\|"),
            str(r["num_samples"]),
            f"{e14['mpjpe_mm']:.1f}",
            f"{e14['pa_mpjpe_mm']:.1f}",
            f"{e14['pck3d_150_pct']:.1f}",
            f"{every['mpjpe_mm']:.1f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
