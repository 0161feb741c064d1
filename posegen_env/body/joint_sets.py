"""Joint sets: the skeletons estimators output (SMPL-24, H36M-17, LSP-14, COCO-17, HybrIK-29, custom).

Every joint of a set is a named *body point* defined on the body model: one of SMPL's 24 joints,
a surface landmark (a named vertex: nose, ears, head top, toes, fingertips), or a fixed blend of
those for points the body does not define itself (H36M's thorax and spine, the hips' centre).
Ground truth in any set is therefore computed from the pose and shape stored with every crop,
and two sets are compared on the points they share, by name. A user with the real SMPL model
can instead give a set its own vertex regressor (e.g. ``J_regressor_h36m.npy``).
The definitions are tabulated in docs/estimators.md.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, overload

import numpy as np
import torch

from posegen_env.body.joints import EVAL_JOINT_NAMES, JOINT_INDEX, SMPL_JOINT_NAMES

SMPL_HEAD_TOP_VERTEX = 411  # the head-top vertex of SMPL's own 6890-vertex mesh (as SPIN and HybrIK use)

# Surface landmarks: body point -> the body model's vertex-id name (smplx's naming).
LANDMARKS = {
    "nose": "nose", "left_eye": "leye", "right_eye": "reye", "left_ear": "lear", "right_ear": "rear",
    "head_top": "head_top",
    "left_big_toe": "LBigToe", "right_big_toe": "RBigToe", "left_small_toe": "LSmallToe",
    "right_small_toe": "RSmallToe", "left_heel": "LHeel", "right_heel": "RHeel",
    **{f"{side}_{finger}_tip": f"{side[0]}{finger}" for side in ("left", "right")
       for finger in ("thumb", "index", "middle", "ring", "pinky")},
}
# Points the body has no joint or vertex for: weights over other body points.
# thorax: the top of the sternum, between the shoulders and just below SMPL's neck joint;
# spine (H36M): halfway up the torso, between the pelvis and the thorax;
# hip_centre: the root of skeletons without a pelvis (LSP, COCO).
DERIVED = {
    "thorax": {"neck": 0.5, "left_shoulder": 0.25, "right_shoulder": 0.25},
    "spine": {"pelvis": 0.5, "neck": 0.25, "left_shoulder": 0.125, "right_shoulder": 0.125},
    "hip_centre": {"left_hip": 0.5, "right_hip": 0.5},
}
BODY_POINTS = SMPL_JOINT_NAMES + tuple(LANDMARKS) + tuple(DERIVED)


class JointSetError(ValueError):
    """A joint set, joint name or regressor that cannot be used, and what to use instead."""


def _suggest(name: str, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(options), n=3)
    return f" (did you mean {', '.join(close)}?)" if close else ""


@dataclass(frozen=True)
class JointSet:
    """An estimator's skeleton: its joints (body point names, in output order), the standard
    evaluation subset of them, and the points averaged as its root. ``regressor`` (J, V), when
    given, computes every joint from the posed vertices instead of the named definitions."""

    name: str
    joints: tuple[str, ...]
    eval_joints: tuple[str, ...]
    root: tuple[str, ...]
    regressor: np.ndarray | None = field(default=None, compare=False, repr=False)

    def __len__(self) -> int:
        return len(self.joints)

    @property
    def labels(self) -> tuple[str, ...]:
        return self.joints

    def index(self, names: Sequence[str]) -> tuple[int, ...]:
        missing = [n for n in names if n not in self.joints]
        if missing:
            raise JointSetError(f"the {self.name} joint set has no {', '.join(missing)}; its joints are "
                                f"{', '.join(self.joints)}")
        return tuple(self.joints.index(n) for n in names)

    @property
    def eval_index(self) -> tuple[int, ...]:
        return self.index(self.eval_joints)

    @property
    def root_index(self) -> tuple[int, ...]:
        return self.index(self.root)

    @property
    def mirror(self) -> tuple[int, ...]:
        """Each joint's left/right partner in the set (itself on the centre line or without one)."""
        def partner(n: str) -> str:
            swapped = n.replace("left_", "@").replace("right_", "left_").replace("@", "right_")
            return swapped if swapped in self.joints else n
        return tuple(self.joints.index(partner(n)) for n in self.joints)


def _eval_subset(joints: Sequence[str], subset: Sequence[str]) -> tuple[str, ...]:
    return tuple(n for n in subset if n in joints)


_LIMBS = ("right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle", "right_wrist",
          "right_elbow", "right_shoulder", "left_shoulder", "left_elbow", "left_wrist")
H36M_JOINTS = ("pelvis", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle", "spine",
               "thorax", "nose", "head_top", "left_shoulder", "left_elbow", "left_wrist", "right_shoulder",
               "right_elbow", "right_wrist")
LSP_JOINTS = _LIMBS + ("neck", "head_top")
COCO_JOINTS = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
               "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
               "right_knee", "left_ankle", "right_ankle")
HYBRIK_JOINTS = SMPL_JOINT_NAMES + ("head_top", "left_middle_tip", "right_middle_tip", "left_big_toe",
                                    "right_big_toe")
JOINT_SETS = {
    "smpl24": JointSet("smpl24", SMPL_JOINT_NAMES, EVAL_JOINT_NAMES, ("pelvis",)),
    # H36M's 14-joint protocol (as HMR and SPIN evaluate): the limbs, the thorax as neck, the head top
    "h36m17": JointSet("h36m17", H36M_JOINTS, _LIMBS + ("thorax", "head_top"), ("pelvis",)),
    "lsp14": JointSet("lsp14", LSP_JOINTS, LSP_JOINTS, ("left_hip", "right_hip")),
    "coco17": JointSet("coco17", COCO_JOINTS, _LIMBS, ("left_hip", "right_hip")),  # COCO has no neck or head top
    "hybrik29": JointSet("hybrik29", HYBRIK_JOINTS, EVAL_JOINT_NAMES, ("pelvis",)),
}
_ALIASES = {"smpl": "smpl24", "h36m": "h36m17", "human36m": "h36m17", "human36m17": "h36m17", "lsp": "lsp14",
            "coco": "coco17", "hybrik": "hybrik29"}
_EVAL_NAMES = set(EVAL_JOINT_NAMES) | {n for s in JOINT_SETS.values() for n in s.eval_joints}


def custom_joint_set(names: Sequence[str], name: str = "custom") -> JointSet:
    """A set of the given body points, evaluated on those of them a built-in set evaluates."""
    names = tuple(str(n) for n in names)
    unknown = [n for n in names if n not in BODY_POINTS]
    if unknown:
        hints = "".join(_suggest(n, BODY_POINTS) for n in unknown[:1])
        raise JointSetError(f"unknown joint name(s) {', '.join(unknown)}{hints}; a custom joint set names body "
                            f"points: {', '.join(BODY_POINTS)}")
    if not names or len(set(names)) != len(names):
        repeats = sorted({n for n in names if names.count(n) > 1})
        raise JointSetError(f"a custom joint set needs distinct joint names; repeated: {', '.join(repeats) or 'none'}"
                            + ("" if names else " (the list is empty)"))
    root = ("pelvis",) if "pelvis" in names else ("left_hip", "right_hip") if {"left_hip", "right_hip"} <= set(
        names) else names
    return JointSet(name, names, tuple(n for n in names if n in _EVAL_NAMES) or names, root)


def _read_regressor(regressor) -> np.ndarray:
    if isinstance(regressor, (str, Path)):
        path = Path(regressor)
        try:
            loaded = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise JointSetError(f"cannot read the joint regressor {path}: {err}; save it with np.save") from None
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                key = "J_regressor_h36m" if "J_regressor_h36m" in loaded.files else loaded.files[0]
                regressor = loaded[key]
        else:
            regressor = loaded
    array = np.asarray(regressor, dtype=np.float32)
    if array.ndim != 2 or not np.isfinite(array).all():
        raise JointSetError(f"a joint regressor must be a finite (joints, vertices) matrix, got shape {array.shape}")
    return array


def get_joint_set(spec, regressor=None) -> JointSet:
    """A JointSet from a JointSet, a built-in name (any case or punctuation: "H36M-17", "smpl_24",
    "coco") or a list of body point names; ``regressor`` (an array or .npy/.npz path) gives its joints."""
    if isinstance(spec, JointSet):
        joint_set = spec
    elif isinstance(spec, str):
        key = re.sub(r"[^a-z0-9]", "", spec.lower())
        key = _ALIASES.get(key, key)
        if key not in JOINT_SETS:
            raise JointSetError(f"unknown joint set {spec!r}{_suggest(key, list(JOINT_SETS))}; built-in sets are "
                                f"{', '.join(JOINT_SETS)}, or pass a list of joint names")
        joint_set = JOINT_SETS[key]
    elif isinstance(spec, Sequence):
        joint_set = custom_joint_set(spec)
    else:
        raise JointSetError(f"a joint set is a name ({', '.join(JOINT_SETS)}) or a list of joint names, got "
                            f"{type(spec).__name__}")
    if regressor is None:
        return joint_set
    array = _read_regressor(regressor)
    if array.shape[0] != len(joint_set):
        raise JointSetError(f"the regressor has {array.shape[0]} rows, but the {joint_set.name} set has "
                            f"{len(joint_set)} joints; expected shape ({len(joint_set)}, number of body vertices)")
    return replace(joint_set, regressor=array)


def shared_joints(a: JointSet, b: JointSet | Sequence[str]) -> tuple[str, ...]:
    """The joints of ``a`` that ``b`` also has, in ``a``'s order: what two sets can be compared on."""
    other = set(b.joints if isinstance(b, JointSet) else b)
    return tuple(n for n in a.joints if n in other)


def _vertex(body, point: str) -> int:
    key = LANDMARKS[point]
    if key in body.landmarks:
        return int(body.landmarks[key])
    if point == "head_top" and body.num_vertices == 6890:
        return SMPL_HEAD_TOP_VERTEX
    raise JointSetError(f"the body model {body.path.name} has no '{key}' vertex for {point}; use the shipped body, "
                        "or an SMPL file (smplx's vertex ids), or pass a joint regressor for the set")


def body_points(body, output, names: Sequence[str], regressor: np.ndarray | None = None) -> torch.Tensor:
    """Body points ``names`` (B, len(names), 3) of a posed body (``BodyModel`` output), world frame."""
    vertices = output.vertices
    if regressor is not None:
        if regressor.shape[1] != vertices.shape[1]:
            raise JointSetError(f"the joint regressor covers {regressor.shape[1]} vertices, but the body has "
                                f"{vertices.shape[1]}; use the regressor made for this body model")
        return torch.einsum("jv,bvc->bjc", torch.as_tensor(regressor, dtype=vertices.dtype,
                                                           device=vertices.device), vertices)

    def point(name: str) -> torch.Tensor:
        if name in JOINT_INDEX:
            return output.joints[:, JOINT_INDEX[name]]
        if name in LANDMARKS:
            return vertices[:, _vertex(body, name)]
        if name in DERIVED:
            return sum((w * point(n) for n, w in DERIVED[name].items()), torch.zeros_like(output.joints[:, 0]))
        raise JointSetError(f"unknown body point {name!r}{_suggest(name, BODY_POINTS)}")

    return torch.stack([point(n) for n in names], dim=1)


def root_relative(joints: np.ndarray | torch.Tensor, joint_set: JointSet) -> np.ndarray | torch.Tensor:
    """``joints`` (N, J, 3) less the mean of the set's root joints (numpy or torch, as given)."""
    idx = list(joint_set.root_index)
    return joints - joints[:, idx].mean(axis=1, keepdims=True) if isinstance(joints, np.ndarray) else \
        joints - joints[:, idx].mean(dim=1, keepdim=True)


@overload
def ground_truth(joint_set: JointSet, body: Any, pose: torch.Tensor, betas: Any, R: Any,
                 batch: int = ...) -> torch.Tensor: ...
@overload
def ground_truth(joint_set: JointSet, body: Any, pose: Any, betas: torch.Tensor, R: Any,
                 batch: int = ...) -> torch.Tensor: ...
@overload
def ground_truth(joint_set: JointSet, body: Any, pose: Any, betas: Any, R: torch.Tensor,
                 batch: int = ...) -> torch.Tensor: ...
@overload
def ground_truth(joint_set: JointSet, body: Any, pose: Any, betas: Any, R: Any, batch: int = ...) -> np.ndarray: ...
@torch.no_grad()
def ground_truth(joint_set: JointSet, body: Any, pose: Any, betas: Any, R: Any,
                 batch: int = 512) -> np.ndarray | torch.Tensor:
    """Root-relative camera-frame joints (N, J, 3) in metres of ``joint_set``, for bodies posed with
    ``pose`` (N, 72: global orientation then body pose) and ``betas`` seen by cameras of rotation
    ``R`` (N, 3, 3); the camera translation cancels out of root-relative joints. Float32: a tensor on the
    body's device when any input is a tensor (the scoring of a step stays there), numpy otherwise."""
    as_numpy = not any(isinstance(a, torch.Tensor) for a in (pose, betas, R))
    pose, betas, R = (torch.as_tensor(np.asarray(a, np.float32) if not isinstance(a, torch.Tensor) else a,
                                      dtype=torch.float32, device=body.device) for a in (pose, betas, R))
    root = list(joint_set.root_index)
    out = [torch.zeros((0, len(joint_set), 3), dtype=torch.float32, device=body.device)]
    for start in range(0, len(pose), batch):
        s = slice(start, start + batch)
        posed = body(pose[s, :3], pose[s, 3:], betas[s])
        world = body_points(body, posed, joint_set.joints, joint_set.regressor)
        cam = torch.einsum("nij,nkj->nki", R[s].to(world.device), world)
        out.append((cam - cam[:, root].mean(dim=1, keepdim=True)).float())
    joints = torch.cat(out)
    return joints.cpu().numpy() if as_numpy else joints
