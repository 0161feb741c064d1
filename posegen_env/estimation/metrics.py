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
from functools import lru_cache
from typing import Any, overload

import numpy as np
import torch

from posegen_env.body.joint_sets import get_joint_set
from posegen_env.body.joints import NUM_JOINTS, ROOT_JOINT

M_TO_MM = 1000.0
PCK_THRESHOLD_MM = 150.0

_MAX_LISTED = 5  # how many offending sample indices an error message lists

Array = np.ndarray | torch.Tensor
Joints = Sequence[int] | None
Root = int | Sequence[int] | None


def _as_tensors(pred: Any, gt: Any) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Both inputs as float64 tensors on the device of the tensor given (the CPU for numpy), and whether the
    result goes back as numpy (neither was a tensor). The metrics are scores, not losses: inputs are detached,
    as an SVD's gradient is unstable where singular values repeat."""
    tensors = [x for x in (pred, gt) if isinstance(x, torch.Tensor)]
    device = tensors[0].device if tensors else torch.device("cpu")

    def convert(x: Any) -> torch.Tensor:
        if isinstance(x, torch.Tensor):
            return x.detach().to(device=device, dtype=torch.float64)
        return torch.from_numpy(np.array(x, dtype=np.float64)).to(device)  # a copy: any strides, never shared

    return convert(pred), convert(gt), not tensors


def _out(x: torch.Tensor, as_numpy: bool) -> Array:
    return x.numpy() if as_numpy else x


def _bad_samples(x: torch.Tensor) -> list[int]:
    return torch.nonzero(~torch.isfinite(x).flatten(1).all(dim=1)).flatten().tolist()


def _check_pair(pred: Any, gt: Any) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Validate a prediction / ground-truth pair, so bad data fails loudly instead of averaging to NaN.

    Returns them as ``_as_tensors`` does. One finiteness check of both (a single device sync); the offending
    samples are only looked up for the message."""
    pred, gt, as_numpy = _as_tensors(pred, gt)
    for name, x in (("predictions", pred), ("ground truth", gt)):
        if x.ndim != 3 or x.shape[-1] != 3 or x.shape[1] == 0:
            raise ValueError(
                f"{name} must have shape (N, J, 3) with J >= 1 (e.g. (N, {NUM_JOINTS}, 3)), got {tuple(x.shape)}; "
                "add a batch axis for a single pose"
            )
    if pred.shape != gt.shape:
        raise ValueError(f"predictions and ground truth shapes differ: {tuple(pred.shape)} vs {tuple(gt.shape)}")
    if not bool(torch.isfinite(pred).all() & torch.isfinite(gt).all()):
        for name, x in (("predictions contain", pred), ("ground truth contains", gt)):
            bad = _bad_samples(x)
            if bad:
                listed = ", ".join(str(i) for i in bad[:_MAX_LISTED]) + (", ..." if len(bad) > _MAX_LISTED else "")
                raise ValueError(f"{name} NaN or inf values for samples [{listed}] ({len(bad)} of {len(x)} samples)")
    return pred, gt, as_numpy


def _joint_index(joints: Sequence[int] | np.ndarray | None, num_joints: int) -> tuple[int, ...]:
    if joints is None:
        return tuple(range(num_joints))
    idx = np.asarray(joints)
    if idx.ndim != 1 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"joints must be a non-empty 1-D sequence of integer indices, got {joints!r}")
    if idx.min() < -num_joints or idx.max() >= num_joints:
        raise ValueError(f"joint indices {idx.tolist()} out of range for {num_joints} joints")
    return tuple(int(i) % num_joints for i in idx)


@lru_cache(maxsize=64)
def _on_device(idx: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """Joint indices as a tensor on ``device``, made once: a list index is copied to the GPU at every use,
    and each copy waits for the GPU."""
    return torch.tensor(idx, device=device)


def _joints_of(x: torch.Tensor, idx: tuple[int, ...]) -> torch.Tensor:
    return x[:, _on_device(idx, x.device)]


def _root_relative(x: torch.Tensor, root: Root) -> torch.Tensor:
    """``x`` less its root joint, or the mean of several (a skeleton rooted between the hips)."""
    if root is None:
        return x
    idx = [int(root)] if isinstance(root, int | np.integer) else [int(r) for r in root]
    if not idx or not all(-x.shape[1] <= r < x.shape[1] for r in idx):
        raise ValueError(f"root joint(s) {root} out of range for {x.shape[1]} joints")
    return x - _joints_of(x, tuple(r % x.shape[1] for r in idx)).mean(dim=1, keepdim=True)


def _procrustes(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    mu_p, mu_g = pred.mean(dim=1, keepdim=True), gt.mean(dim=1, keepdim=True)
    x, y = pred - mu_p, gt - mu_g
    cov = torch.einsum("nji,njk->nik", x, y)  # sum_j x_j y_j^T, (N, 3, 3)
    u, sv, vt = torch.linalg.svd(cov)
    v, ut = vt.transpose(1, 2), u.transpose(1, 2)
    d = torch.sign(torch.linalg.det(v @ ut))
    fix = torch.ones_like(sv)
    fix[:, -1] = torch.where(d == 0, 1.0, d)
    rot = v @ (fix[:, :, None] * ut)  # V diag(1, 1, d) U^T
    var_x = (x**2).sum(dim=(1, 2))
    # A prediction collapsed to one point has no scale to fit; it maps onto the gt centroid.
    fitted = var_x > 0
    scale = torch.where(fitted, (sv * fix).sum(dim=1) / torch.where(fitted, var_x, 1.0), 0.0)
    return scale[:, None, None] * x @ rot.transpose(1, 2) + mu_g


@overload
def procrustes_align(pred: torch.Tensor, gt: Any) -> torch.Tensor: ...
@overload
def procrustes_align(pred: Any, gt: torch.Tensor) -> torch.Tensor: ...
@overload
def procrustes_align(pred: Any, gt: Any) -> np.ndarray: ...
def procrustes_align(pred: Any, gt: Any) -> Array:
    """Best similarity transform (rotation, uniform scale, translation) of ``pred`` onto ``gt``, per sample.

    Least-squares solution via SVD of the cross-covariance (Umeyama), batched. The determinant correction
    keeps the rotation proper (det = +1): a mirrored skeleton is a wrong pose, not a rigid motion,
    and must not be aligned away. Returns the transformed ``pred``, (N, J, 3), in the input unit.

    Like every metric here: float64 numpy for array inputs; when either input is a tensor, computed in
    float64 on its device (CPU or CUDA, no round trip through numpy; the other input is moved there)
    and returned as a float64 tensor there.
    """
    pred, gt, as_numpy = _check_pair(pred, gt)
    return _out(_procrustes(pred, gt), as_numpy)


def _per_joint_errors(pred: torch.Tensor, gt: torch.Tensor, joints: Joints, aligned: bool,
                      root: Root) -> torch.Tensor:
    idx = _joint_index(joints, pred.shape[1])
    if aligned:
        p, g = _procrustes(_joints_of(pred, idx), _joints_of(gt, idx)), _joints_of(gt, idx)
    else:
        p, g = _joints_of(_root_relative(pred, root), idx), _joints_of(_root_relative(gt, root), idx)
    return torch.linalg.vector_norm(p - g, dim=-1) * M_TO_MM


@overload
def per_joint_errors(pred: torch.Tensor, gt: Any, joints: Joints = ..., aligned: bool = ..., *,
                     root: Root = ...) -> torch.Tensor: ...
@overload
def per_joint_errors(pred: Any, gt: torch.Tensor, joints: Joints = ..., aligned: bool = ..., *,
                     root: Root = ...) -> torch.Tensor: ...
@overload
def per_joint_errors(pred: Any, gt: Any, joints: Joints = ..., aligned: bool = ..., *,
                     root: Root = ...) -> np.ndarray: ...
def per_joint_errors(pred: Any, gt: Any, joints: Joints = None, aligned: bool = False, *,
                     root: Root = ROOT_JOINT) -> Array:
    """Euclidean error of each joint in mm, (N, J), for inputs in metres.

    ``aligned=False``: root-aligned (joint ``root``, or the mean of several, subtracted before selecting
    ``joints``, so the root need not be in the subset; ``root=None`` when inputs are already
    root-relative or have no root).
    ``aligned=True``: Procrustes-aligned, with the transform fitted on the selected joints only.
    """
    pred, gt, as_numpy = _check_pair(pred, gt)
    return _out(_per_joint_errors(pred, gt, joints, aligned, root), as_numpy)


@overload
def mpjpe(pred: torch.Tensor, gt: Any, joints: Joints = ..., *, root: Root = ...) -> torch.Tensor: ...
@overload
def mpjpe(pred: Any, gt: torch.Tensor, joints: Joints = ..., *, root: Root = ...) -> torch.Tensor: ...
@overload
def mpjpe(pred: Any, gt: Any, joints: Joints = ..., *, root: Root = ...) -> np.ndarray: ...
def mpjpe(pred: Any, gt: Any, joints: Joints = None, *, root: Root = ROOT_JOINT) -> Array:
    """Mean per-joint position error after root alignment, (N,) mm; inputs (N, J, 3) in metres."""
    pred, gt, as_numpy = _check_pair(pred, gt)
    return _out(_per_joint_errors(pred, gt, joints, False, root).mean(dim=1), as_numpy)


@overload
def pa_mpjpe(pred: torch.Tensor, gt: Any, joints: Joints = ...) -> torch.Tensor: ...
@overload
def pa_mpjpe(pred: Any, gt: torch.Tensor, joints: Joints = ...) -> torch.Tensor: ...
@overload
def pa_mpjpe(pred: Any, gt: Any, joints: Joints = ...) -> np.ndarray: ...
def pa_mpjpe(pred: Any, gt: Any, joints: Joints = None) -> Array:
    """Procrustes-aligned MPJPE, (N,) mm: the error left once global rotation, scale and position are forgiven."""
    pred, gt, as_numpy = _check_pair(pred, gt)
    return _out(_per_joint_errors(pred, gt, joints, True, None).mean(dim=1), as_numpy)


@overload
def pck3d(pred: torch.Tensor, gt: Any, threshold_mm: float = ..., joints: Joints = ..., *,
          root: Root = ...) -> torch.Tensor: ...
@overload
def pck3d(pred: Any, gt: torch.Tensor, threshold_mm: float = ..., joints: Joints = ..., *,
          root: Root = ...) -> torch.Tensor: ...
@overload
def pck3d(pred: Any, gt: Any, threshold_mm: float = ..., joints: Joints = ..., *, root: Root = ...) -> np.ndarray: ...
def pck3d(pred: Any, gt: Any, threshold_mm: float = PCK_THRESHOLD_MM, joints: Joints = None, *,
          root: Root = ROOT_JOINT) -> Array:
    """Fraction (0..1) of joints within ``threshold_mm`` (inclusive) after root alignment, (N,).

    Complements MPJPE: it is not dominated by a few wildly wrong joints.
    """
    pred, gt, as_numpy = _check_pair(pred, gt)
    errors = _per_joint_errors(pred, gt, joints, False, root)
    return _out((errors <= threshold_mm).to(errors.dtype).mean(dim=1), as_numpy)


def evaluate_poses(pred: Any, gt: Any, joint_set: Any = "smpl24") -> dict[str, Any]:
    """All standard metrics for a batch of poses (metres) in ``joint_set`` (a name or ``JointSet``), as a
    JSON-serialisable dict.

    Both are root-aligned on the set's root. For "eval14" (the set's standard evaluation subset, 14
    joints where the set has them) and "all" (every joint of the set): batch-mean ``mpjpe_mm``,
    ``pa_mpjpe_mm``, ``pck3d_150_pct`` (percent) and ``per_joint_mpjpe_mm`` keyed by joint name; plus
    ``num_samples`` and ``joint_set``.
    """
    pred, gt, _ = _check_pair(pred, gt)
    joint_set = get_joint_set(joint_set)
    if pred.shape[1] != len(joint_set):
        raise ValueError(f"the {joint_set.name} joint set has {len(joint_set)} joints; got {pred.shape[1]}")
    if len(pred) == 0:
        raise ValueError("evaluate_poses needs at least one sample; the batch is empty")
    results: dict[str, Any] = {"num_samples": len(pred), "joint_set": joint_set.name}
    root = joint_set.root_index
    for subset, names in (("eval14", joint_set.eval_joints), ("all", joint_set.joints)):
        idx = joint_set.index(names)
        errors = _per_joint_errors(pred, gt, idx, False, root)
        results[subset] = {
            "mpjpe_mm": float(errors.mean()),
            "pa_mpjpe_mm": float(_per_joint_errors(pred, gt, idx, True, None).mean()),
            "pck3d_150_pct": float((errors <= PCK_THRESHOLD_MM).to(errors.dtype).mean() * 100.0),
            "per_joint_mpjpe_mm": dict(zip(names, errors.mean(dim=0).tolist(), strict=True)),
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
