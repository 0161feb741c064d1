"""Joint-angle limits of SMPL's body pose: what counts as an anatomically plausible pose.

Every sampler, optimiser and pose library in PoseGen keeps poses inside these limits, so that
"hard" poses found later are hard for the estimator, not impossible for a human.

A body pose is SMPL's ``body_pose``: 23 joints (``SMPL_JOINT_NAMES[1:]``) x axis-angle (radians),
each joint relative to its parent in the world-aligned rest frame (T-pose, y up, facing +z).
The limits bound each axis-angle *component* separately (PoseExaminer's constraint table); see
docs/pose_space.md for the table and the few ranges widened here.
"""

from __future__ import annotations

import numpy as np

from posegen_env.body.joints import MIRROR_JOINTS, NUM_BODY_JOINTS, SMPL_JOINT_NAMES

BODY_JOINT_NAMES = SMPL_JOINT_NAMES[1:]
BODY_POSE_DIM = 3 * NUM_BODY_JOINTS  # 69

# Partner of each *body* joint (index 0 = left_hip), and the sign each axis-angle component takes
# under the left/right mirror x -> -x: a rotation (x, y, z) becomes (x, -y, -z).
BODY_MIRROR = tuple(m - 1 for m in MIRROR_JOINTS[1:])
MIRROR_SIGN = np.array([1.0, -1.0, -1.0])

_HAND_RANGE = (-15.0, 15.0)  # SMPL's hand joints are not in the table; they barely move the body.

# [min, max] degrees for the axis-angle components x, y, z of each body joint.
_LIMITS = {
    # Hip flexion is -x. The table's -95 cannot reach a deep squat or knees-up floor sitting
    # (~120 deg of flexion, the usual clinical range), so it is widened to -125.
    "left_hip": ((-125, 60), (-60, 90), (-30, 90)),
    "right_hip": ((-125, 60), (-90, 60), (-90, 30)),
    "spine1": ((-20, 90), (-45, 45), (-45, 45)),
    "left_knee": ((-5, 160), (-30, 30), (-10, 10)),
    "right_knee": ((-5, 160), (-30, 30), (-10, 10)),
    "spine2": ((-5, 30), (-30, 30), (-30, 30)),
    "left_ankle": ((-45, 75), (-30, 30), (-15, 15)),
    "right_ankle": ((-45, 75), (-30, 30), (-15, 15)),
    "spine3": ((-15, 30), (-30, 30), (-30, 30)),
    "left_foot": ((-3, 3), (-3, 3), (-3, 3)),
    "right_foot": ((-3, 3), (-3, 3), (-3, 3)),
    "neck": ((-60, 60), (-60, 60), (-30, 30)),
    "left_collar": ((-30, 30), (-60, 45), (-45, 45)),
    "right_collar": ((-30, 30), (-45, 60), (-45, 45)),
    "head": ((-30, 30), (-45, 45), (-15, 15)),
    "left_shoulder": ((-60, 60), (-135, 45), (-135, 90)),
    "right_shoulder": ((-60, 60), (-45, 135), (-90, 135)),
    "left_elbow": ((-45, 45), (-150, 0), (-5, 5)),
    "right_elbow": ((-45, 45), (0, 150), (-5, 5)),
    "left_wrist": ((-90, 60), (-45, 45), (-90, 90)),
    "right_wrist": ((-90, 60), (-45, 45), (-90, 90)),
    "left_hand": (_HAND_RANGE,) * 3,
    "right_hand": (_HAND_RANGE,) * 3,
}

JOINT_LIMITS_DEG = np.array([_LIMITS[name] for name in BODY_JOINT_NAMES], dtype=np.float64)  # (23, 3, 2)
JOINT_LIMITS_DEG.setflags(write=False)
JOINT_LIMITS_RAD = np.deg2rad(JOINT_LIMITS_DEG)
JOINT_LIMITS_RAD.setflags(write=False)
BODY_POSE_LOW = JOINT_LIMITS_RAD[..., 0].reshape(-1)  # (69,)
BODY_POSE_HIGH = JOINT_LIMITS_RAD[..., 1].reshape(-1)


def mirror_limits(limits_deg: np.ndarray) -> np.ndarray:
    """The limit table of the mirrored body: partners swapped, y/z ranges negated (min<->max).

    A table is mirror-consistent when ``mirror_limits(t) == t``; then mirroring a pose inside
    the limits keeps it inside.
    """
    lim = np.asarray(limits_deg, dtype=np.float64)[list(BODY_MIRROR)]
    signed = lim * MIRROR_SIGN[:, None]
    return np.sort(signed, axis=-1)


def check_pose_array(x, dim: int, name: str) -> np.ndarray:
    """``x`` as float64 with last dimension ``dim`` and only finite values, else a clear ValueError."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 0 or arr.shape[-1] != dim:
        raise ValueError(
            f"{name} must have shape (..., {dim}) (axis-angle radians), got shape {arr.shape}; "
            f"reshape it to (..., {dim})"
        )
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf; every axis-angle component must be finite")
    return arr


def limit_violation(body_pose) -> np.ndarray:
    """Total distance (radians) of each pose outside the limits, shape ``body_pose.shape[:-1]``.

    Sum over all 69 components of how far each lies outside its [min, max]; 0 inside. Being a
    distance rather than a flag, it can serve as a penalty for optimisers.
    """
    pose = check_pose_array(body_pose, BODY_POSE_DIM, "body_pose")
    below = np.clip(BODY_POSE_LOW - pose, 0.0, None)
    above = np.clip(pose - BODY_POSE_HIGH, 0.0, None)
    return (below + above).sum(axis=-1)


def is_within_limits(body_pose, tol: float = 1e-6) -> bool | np.ndarray:
    """True where a pose lies inside the limits (up to ``tol`` radians in total)."""
    v = limit_violation(body_pose)
    return bool(v <= tol) if v.ndim == 0 else v <= tol


def clip_to_limits(body_pose) -> np.ndarray:
    """The pose with every component clipped into its range (a projection, not a re-sampling)."""
    pose = check_pose_array(body_pose, BODY_POSE_DIM, "body_pose")
    return np.clip(pose, BODY_POSE_LOW, BODY_POSE_HIGH)
