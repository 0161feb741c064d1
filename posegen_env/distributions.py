"""Random poses, body shapes and camera views: a narrow "public dataset" and a uniform reference.

The base samplers imitate what public 3D pose datasets cover: everyday library poses seen from
near-frontal, eye-level cameras. They are deliberately narrow, so that out-of-distribution
suites (unusual poses, views from above, behind or below) expose what an estimator trained on
them gets wrong. The uniform samplers cover the whole plausible space and serve as the
reference those suites are drawn against. Ranges are documented in docs/pose_space.md.

Every sampler has ``sample(n, rng)``, where ``rng`` is a ``np.random.Generator`` or a seed:
pose samplers return a dict of arrays, camera samplers a batched ``CameraParams``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from scipy.spatial.transform import Rotation

from posegen_env.body.pose_library import KEY_POSES, interpolate_poses, library_array, mirror_pose
from posegen_env.body.pose_space import BODY_POSE_DIM, BODY_POSE_HIGH, BODY_POSE_LOW, clip_to_limits
from posegen_env.render.camera import REFERENCE_WIDTH, CameraParams, focal_from_fov

NUM_BETAS = 10


def as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    """A Generator from a Generator (used as is), an integer seed, or None (fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, (int, np.integer)) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise ValueError(f"rng must be a numpy Generator, an int seed or None, got {type(rng).__name__}")


def _check_n(n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"number of samples n must be a non-negative int, got {n!r}")
    return int(n)


def _check_range(name: str, lo_hi, lower: float | None = None) -> tuple[float, float]:
    lo, hi = (float(v) for v in lo_hi)
    if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi):
        raise ValueError(f"{name} must be a finite (low, high) pair with low <= high, got {lo_hi!r}")
    if lower is not None and lo <= lower:
        raise ValueError(f"{name} must stay above {lower}, got {lo_hi!r}")
    return lo, hi


def _yaw(angles_rad: np.ndarray) -> Rotation:
    return Rotation.from_rotvec(np.stack([np.zeros_like(angles_rad), angles_rad, np.zeros_like(angles_rad)], -1))


# ----------------------------------------------------------------------------------------- cameras


@dataclass(frozen=True)
class RangeCameraSampler:
    """Cameras with every orbit parameter (and the field of view) uniform in its range."""

    azimuth_deg: tuple[float, float]
    elevation_deg: tuple[float, float]
    distance: tuple[float, float]
    roll_deg: tuple[float, float]
    fov_deg: tuple[float, float]

    def __post_init__(self):
        for f in fields(self):
            _check_range(f.name, getattr(self, f.name), lower=0.0 if f.name in ("distance", "fov_deg") else None)
        if not -90 <= self.elevation_deg[0] <= self.elevation_deg[1] <= 90:
            raise ValueError(f"elevation_deg must lie within [-90, 90], got {self.elevation_deg}")
        if self.fov_deg[1] >= 180:
            raise ValueError(f"fov_deg must stay below 180, got {self.fov_deg}")

    def sample(self, n: int, rng: np.random.Generator | int | None = None) -> CameraParams:
        n, rng = _check_n(n), as_rng(rng)
        u = {f.name: rng.uniform(*getattr(self, f.name), size=n) for f in fields(self)}  # type: ignore[call-overload]
        focal = np.array([focal_from_fov(f, REFERENCE_WIDTH) for f in u.pop("fov_deg")])
        return CameraParams(**u, focal_px=focal)


@dataclass(frozen=True)
class BaseCameraSampler(RangeCameraSampler):
    """Near-frontal, eye-level, upright cameras at a few metres: a typical lab/video capture."""

    azimuth_deg: tuple[float, float] = (-25.0, 25.0)
    elevation_deg: tuple[float, float] = (-5.0, 10.0)
    distance: tuple[float, float] = (2.5, 3.5)
    roll_deg: tuple[float, float] = (-3.0, 3.0)
    fov_deg: tuple[float, float] = (40.0, 50.0)


@dataclass(frozen=True)
class UniformCameraSampler(RangeCameraSampler):
    """Every reasonable view: all around, from below to steeply above, near and far, tilted."""

    azimuth_deg: tuple[float, float] = (0.0, 360.0)
    elevation_deg: tuple[float, float] = (-30.0, 70.0)
    distance: tuple[float, float] = (1.8, 6.0)
    roll_deg: tuple[float, float] = (-20.0, 20.0)
    fov_deg: tuple[float, float] = (25.0, 70.0)


# ------------------------------------------------------------------------------------------- poses


@dataclass(frozen=True)
class BasePoseSampler:
    """Library poses, lightly varied: the narrow distribution public datasets cover.

    Each sample: a random library pose, mirrored with ``p_mirror``, with probability
    ``p_interpolate`` slerped towards another library pose of similar global orientation
    (alpha up to ``max_alpha``, so the first pose dominates), Gaussian noise of ``noise_deg``
    per axis-angle component, clipped to the joint limits; a yaw jitter of +-``yaw_jitter_deg``;
    betas ~ N(0, ``betas_std``^2).

    Besides ``global_orient`` (n, 3), ``body_pose`` (n, 69) and ``betas`` (n, 10), ``sample``
    returns where each pose came from: ``pose_index`` and ``partner_index`` (into
    ``pose_library.pose_names()``, -1 for none), ``alpha`` and ``mirrored``.
    """

    noise_deg: float = 5.0
    p_mirror: float = 0.5
    p_interpolate: float = 0.5
    max_alpha: float = 0.5
    yaw_jitter_deg: float = 15.0
    betas_std: float = 0.5
    max_partner_angle_deg: float = 30.0  # only blend poses whose global orientations are this close

    def __post_init__(self):
        for name in ("p_mirror", "p_interpolate", "max_alpha"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {getattr(self, name)}")
        for name in ("noise_deg", "yaw_jitter_deg", "betas_std", "max_partner_angle_deg"):
            if not (np.isfinite(getattr(self, name)) and getattr(self, name) >= 0.0):
                raise ValueError(f"{name} must be finite and >= 0, got {getattr(self, name)}")

    def sample(self, n: int, rng: np.random.Generator | int | None = None) -> dict[str, np.ndarray]:
        n, rng = _check_n(n), as_rng(rng)
        lib_go, lib_bp = library_array()
        num = len(KEY_POSES)
        rot = Rotation.from_rotvec(lib_go)
        close = np.stack([(rot[i].inv() * rot).magnitude() for i in range(num)])
        close = close <= np.deg2rad(self.max_partner_angle_deg)
        np.fill_diagonal(close, False)

        idx = rng.integers(num, size=n)
        partner = np.full(n, -1)
        alpha = np.zeros(n)
        blend = rng.random(n) < self.p_interpolate
        for k in np.flatnonzero(blend):
            options = np.flatnonzero(close[idx[k]])
            if len(options):
                partner[k] = rng.choice(options)
                alpha[k] = rng.uniform(0.0, self.max_alpha)
        other = np.where(partner >= 0, partner, idx)
        go, bp = interpolate_poses((lib_go[idx], lib_bp[idx]), (lib_go[other], lib_bp[other]), alpha)

        mirrored = rng.random(n) < self.p_mirror
        mgo, mbp = mirror_pose(go, bp)
        go, bp = np.where(mirrored[:, None], mgo, go), np.where(mirrored[:, None], mbp, bp)

        bp = clip_to_limits(bp + rng.normal(0.0, np.deg2rad(self.noise_deg), size=(n, BODY_POSE_DIM)))
        yaw = rng.uniform(-1.0, 1.0, size=n) * np.deg2rad(self.yaw_jitter_deg)
        go = (_yaw(yaw) * Rotation.from_rotvec(go)).as_rotvec() if n else go
        betas = rng.normal(0.0, self.betas_std, size=(n, NUM_BETAS))
        return {"global_orient": go.reshape(n, 3), "body_pose": bp.reshape(n, BODY_POSE_DIM), "betas": betas,
                "pose_index": idx, "partner_index": partner, "alpha": alpha, "mirrored": mirrored}


@dataclass(frozen=True)
class UniformPoseSampler:
    """Every axis-angle component uniform within its joint limit; upright body, any heading.

    Far wider than any dataset (and often odd-looking), it is the reference for how much of
    the pose space an estimator handles. Betas ~ N(0, ``betas_std``^2).
    """

    betas_std: float = 1.0

    def __post_init__(self):
        if not (np.isfinite(self.betas_std) and self.betas_std >= 0.0):
            raise ValueError(f"betas_std must be finite and >= 0, got {self.betas_std}")

    def sample(self, n: int, rng: np.random.Generator | int | None = None) -> dict[str, np.ndarray]:
        n, rng = _check_n(n), as_rng(rng)
        bp = rng.uniform(BODY_POSE_LOW, BODY_POSE_HIGH, size=(n, BODY_POSE_DIM))
        yaw = rng.uniform(-np.pi, np.pi, size=n)
        go = np.stack([np.zeros(n), yaw, np.zeros(n)], axis=-1)
        betas = rng.normal(0.0, self.betas_std, size=(n, NUM_BETAS))
        return {"global_orient": go, "body_pose": bp, "betas": betas}
