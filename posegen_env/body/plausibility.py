"""Self-penetration of limbs: a cheap plausibility check for poses that joint limits alone allow.

Each limb and the torso is a capsule around a bone segment (radii below the real limb's, so
touching -- arms folded on the chest, hands on knees -- is not penalised, only limbs passing
through each other or the torso). The depth of the deepest overlap between any two capsules
that do not share a joint is the penalty, in metres.
"""

from __future__ import annotations

from functools import lru_cache
from itertools import combinations
from typing import Any, overload

import numpy as np
import torch

from posegen_env.body.joints import JOINT_INDEX, NUM_JOINTS

# (from joint, to joint, capsule radius in metres)
CAPSULES = (
    ("pelvis", "spine3", 0.07),
    ("spine3", "head", 0.05),
    ("left_shoulder", "left_elbow", 0.025),
    ("left_elbow", "left_wrist", 0.02),
    ("right_shoulder", "right_elbow", 0.025),
    ("right_elbow", "right_wrist", 0.02),
    ("left_hip", "left_knee", 0.045),
    ("left_knee", "left_ankle", 0.03),
    ("right_hip", "right_knee", 0.045),
    ("right_knee", "right_ankle", 0.03),
)
_POINTS = 12  # samples along each segment: enough for a ~3 cm spacing on the longest bone
_SEGMENTS = np.array([[JOINT_INDEX[a], JOINT_INDEX[b]] for a, b, _ in CAPSULES])
_RADII = np.array([r for _, _, r in CAPSULES])
_NEAR = {  # chained segments always touch at their shared joint; thighs start right beside the torso
    frozenset(p) for p in [("pelvis", "left_hip"), ("pelvis", "right_hip"), ("spine3", "left_shoulder"),
                           ("spine3", "right_shoulder"), ("left_hip", "right_hip")]
}


def _adjacent(i: int, j: int) -> bool:
    a, b = CAPSULES[i][:2], CAPSULES[j][:2]
    if set(a) & set(b):
        return True
    return any(frozenset((x, y)) in _NEAR for x in a for y in b)


PAIRS = np.array([(i, j) for i, j in combinations(range(len(CAPSULES)), 2) if not _adjacent(i, j)])


@lru_cache(maxsize=8)
def _tables(device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Segments, pairs, the pairs' summed radii and the sample positions on ``device``, made once per device
    (copying them to a GPU at every call would make each call wait for it)."""
    return (torch.as_tensor(_SEGMENTS, device=device), torch.as_tensor(PAIRS, device=device),
            torch.as_tensor(_RADII[PAIRS].sum(axis=1), device=device),
            torch.linspace(0.0, 1.0, _POINTS, dtype=torch.float64, device=device)[:, None])


@overload
def penetration_depth(joints: torch.Tensor) -> torch.Tensor: ...
@overload
def penetration_depth(joints: Any) -> np.ndarray: ...
def penetration_depth(joints: Any) -> np.ndarray | torch.Tensor:
    """Deepest capsule overlap (metres, >= 0) of each posed skeleton; ``joints`` is (N, 24, 3) or (24, 3).

    A tensor is scored on its own device in float64 and gives a float64 tensor there (a step's scoring stays
    on the GPU); anything else gives float64 numpy, computed the same way on the CPU.
    """
    as_numpy = not isinstance(joints, torch.Tensor)
    j = torch.from_numpy(np.array(joints, dtype=np.float64)) if as_numpy else joints.detach().double()
    shape, single = tuple(j.shape), j.ndim == 2
    j = j[None] if single else j
    if j.ndim != 3 or tuple(j.shape[1:]) != (NUM_JOINTS, 3):
        raise ValueError(f"joints must have shape (N, {NUM_JOINTS}, 3), got {shape}")
    segments, pairs, radii, s = _tables(j.device)
    start, end = j[:, segments[:, 0]], j[:, segments[:, 1]]  # (N, S, 3)
    points = start[:, :, None] + s * (end - start)[:, :, None]  # (N, S, P, 3)
    a, b = points[:, pairs[:, 0]], points[:, pairs[:, 1]]  # (N, Q, P, 3)
    dist = torch.linalg.vector_norm(a[:, :, :, None] - b[:, :, None], dim=-1).amin(dim=(-1, -2))  # (N, Q)
    depth = (radii - dist).clamp(min=0.0).amax(dim=1)
    out = depth.numpy() if as_numpy else depth
    return out[0] if single else out
