"""Pinhole cameras in one convention used everywhere in PoseGen.

Convention (OpenCV): world is SMPL's (metres, y up, the body faces +z); a camera maps a
world point X to camera coordinates ``x_cam = R @ X + t`` with x right, y down, z forward,
and to pixels with ``K``. Pixel (0, 0) is the *centre* of the top-left pixel, so pixel
``(u, v)`` covers ``[u - 0.5, u + 0.5]``.

Orbit parameters place a camera around a target (usually the body centre):
azimuth 0 deg looks at the person's front (camera on +z), 90 deg at their left side
(camera on +x); elevation > 0 looks down from above; roll turns the image clockwise.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

WORLD_UP = np.array([0.0, 1.0, 0.0])
REFERENCE_WIDTH = 256  # image width (px) that ``CameraParams.focal_px`` refers to: the full frame crops are cut from


# Metres from the body beyond which a camera sees (almost) nothing of it: a capture stage is a few metres
# across, and T in millimetres puts cameras about 1000x too far.
MAX_CAMERA_DISTANCE = 50.0

@dataclass(frozen=True)
class Camera:
    """One pinhole camera: intrinsics ``K`` (3x3), rotation ``R`` (3x3), translation ``t`` (3,)."""

    K: np.ndarray
    R: np.ndarray
    t: np.ndarray
    width: int
    height: int

    def __post_init__(self):
        K, R, t = (np.asarray(a, dtype=np.float64) for a in (self.K, self.R, self.t))
        if K.shape != (3, 3) or R.shape != (3, 3) or t.shape != (3,):
            raise ValueError(f"Camera needs K (3,3), R (3,3), t (3,); got {K.shape}, {R.shape}, {t.shape}")
        if not (np.isfinite(K).all() and np.isfinite(R).all() and np.isfinite(t).all()):
            raise ValueError("Camera K, R and t must be finite (found NaN or inf)")
        if int(self.width) <= 0 or int(self.height) <= 0:
            raise ValueError(f"Camera image size must be positive, got {self.width}x{self.height}")
        object.__setattr__(self, "K", K)
        object.__setattr__(self, "R", R)
        object.__setattr__(self, "t", t)
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))

    @property
    def center(self) -> np.ndarray:
        """Camera centre in world coordinates."""
        return -self.R.T @ self.t

    def world_to_camera(self, points: np.ndarray) -> np.ndarray:
        return np.asarray(points, dtype=np.float64) @ self.R.T + self.t

    def project(self, points: np.ndarray) -> np.ndarray:
        """Pixel coordinates (..., 2) of world points (..., 3); points behind the camera give NaN."""
        cam = self.world_to_camera(points)
        z = cam[..., 2:3]
        uvw = cam @ self.K.T
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = uvw[..., :2] / z
        return np.where(z > 1e-9, uv, np.nan)

    def rays(self, supersample: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """World-space ray origins and unit directions, (H*s*W*s, 3) each, row-major.

        With ``supersample`` s > 1, each pixel gets an s x s grid of sub-pixel rays.
        """
        s = int(supersample)
        offsets = (np.arange(s) + 0.5) / s - 0.5
        u = (np.arange(self.width)[:, None] + offsets[None, :]).reshape(-1)
        v = (np.arange(self.height)[:, None] + offsets[None, :]).reshape(-1)
        uu, vv = np.meshgrid(u, v)
        return self.pixel_rays(uu.reshape(-1), vv.reshape(-1))

    def pixel_rays(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Ray origins and unit directions (N, 3) through pixel coordinates ``u``, ``v`` (N,)."""
        pix = np.stack([u, v, np.ones_like(u)], axis=-1).astype(np.float64)
        dirs = pix @ np.linalg.inv(self.K).T @ self.R  # camera -> world (R^T on row vectors)
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        return np.broadcast_to(self.center, dirs.shape).copy(), dirs

    def crop(self, center_xy, size: float, out_size: int) -> Camera:
        """The camera whose image is the square crop of side ``size`` px centred at ``center_xy``,
        resampled to ``out_size`` px. Rendering with it gives the crop directly (no resampling)."""
        if size <= 0 or out_size <= 0:
            raise ValueError(f"crop size and out_size must be positive, got {size} and {out_size}")
        scale = out_size / float(size)
        cx, cy = center_xy
        # Pixel-centre convention: crop pixel j's centre sits at (cx - size/2) + (j + 0.5) / scale.
        A = np.array(
            [[scale, 0.0, (size / 2.0 - cx) * scale - 0.5],
             [0.0, scale, (size / 2.0 - cy) * scale - 0.5],
             [0.0, 0.0, 1.0]]
        )
        return Camera(A @ self.K, self.R, self.t, out_size, out_size)

    def to_dict(self) -> dict:
        return {"K": self.K.tolist(), "R": self.R.tolist(), "t": self.t.tolist(),
                "width": self.width, "height": self.height}

    @classmethod
    def from_dict(cls, d: dict) -> Camera:
        return cls(np.array(d["K"]), np.array(d["R"]), np.array(d["t"]), d["width"], d["height"])


def intrinsics(focal_px: float, width: int, height: int) -> np.ndarray:
    """K with square pixels and the principal point at the image centre."""
    if not focal_px > 0:
        raise ValueError(f"focal length must be positive, got {focal_px}")
    return np.array([[focal_px, 0.0, (width - 1) / 2.0],
                     [0.0, focal_px, (height - 1) / 2.0],
                     [0.0, 0.0, 1.0]])


def focal_from_fov(fov_deg: float, width: int) -> float:
    """Focal length in pixels for a horizontal field of view in degrees."""
    if not 0 < fov_deg < 180:
        raise ValueError(f"field of view must be in (0, 180) degrees, got {fov_deg}")
    return 0.5 * width / np.tan(np.deg2rad(fov_deg) / 2.0)


def look_at(eye, target, roll_deg: float = 0.0, up=WORLD_UP) -> tuple[np.ndarray, np.ndarray]:
    """(R, t) of a camera at ``eye`` looking at ``target``, image up along ``up``, then rolled."""
    eye, target, up = (np.asarray(a, dtype=np.float64) for a in (eye, target, up))
    forward = target - eye
    norm = np.linalg.norm(forward)
    if norm < 1e-9:
        raise ValueError("camera position coincides with its target")
    forward /= norm
    right = np.cross(forward, up)
    if np.linalg.norm(right) < 1e-6:  # looking straight up or down: pick any horizontal right
        right = np.cross(forward, np.array([0.0, 0.0, 1.0]))
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    R = np.stack([right, down, forward])
    if roll_deg:
        c, s = np.cos(np.deg2rad(roll_deg)), np.sin(np.deg2rad(roll_deg))
        R = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) @ R
    return R, -R @ eye


def orbit_position(azimuth_deg, elevation_deg, distance, target=(0.0, 0.0, 0.0)) -> np.ndarray:
    """World position on a sphere around ``target`` (see the module docstring for the angles)."""
    az, el = np.deg2rad(azimuth_deg), np.deg2rad(elevation_deg)
    offset = np.array([np.cos(el) * np.sin(az), np.sin(el), np.cos(el) * np.cos(az)])
    return np.asarray(target, dtype=np.float64) + distance * offset


def orbit_camera(azimuth_deg: float, elevation_deg: float, distance: float, roll_deg: float = 0.0,
                 target=(0.0, 0.0, 0.0), focal_px: float | None = None, fov_deg: float = 40.0,
                 width: int = 128, height: int | None = None) -> Camera:
    """A camera on a sphere around ``target`` looking at it."""
    if not distance > 0:
        raise ValueError(f"camera distance must be positive, got {distance}")
    height = width if height is None else height
    focal = focal_from_fov(fov_deg, width) if focal_px is None else focal_px
    R, t = look_at(orbit_position(azimuth_deg, elevation_deg, distance, target), target, roll_deg)
    return Camera(intrinsics(focal, width, height), R, t, width, height)


def person_crop_box(joints_2d: np.ndarray, scale: float = 1.3, jitter: float = 0.0,
                    rng: np.random.Generator | None = None) -> tuple[np.ndarray, float]:
    """Square box (centre xy, side px) around projected joints, enlarged by ``scale``.

    ``jitter`` shifts the centre by up to ``jitter`` x side and rescales by up to +-``jitter``,
    the usual bounding-box augmentation of pose estimators.
    """
    pts = np.asarray(joints_2d, dtype=np.float64).reshape(-1, 2)
    pts = pts[np.isfinite(pts).all(axis=1)]
    if len(pts) == 0:
        raise ValueError("no joint projects in front of the camera; cannot place a person crop")
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    center = (lo + hi) / 2.0
    side = max(float((hi - lo).max()) * scale, 1.0)
    if jitter:
        rng = rng or np.random.default_rng()
        center = center + rng.uniform(-jitter, jitter, size=2) * side
        side *= 1.0 + rng.uniform(-jitter, jitter)
    return center, side


@dataclass(frozen=True)
class CameraParams:
    """A batch of orbit cameras (1-D arrays of equal length), independent of image size.

    ``focal_px`` is the focal length at ``ref_width`` pixels; ``to_camera`` rescales it to the
    requested width, so the field of view (what matters for the pose) is kept.
    """

    azimuth_deg: np.ndarray
    elevation_deg: np.ndarray
    distance: np.ndarray
    roll_deg: np.ndarray
    focal_px: np.ndarray
    ref_width: int = REFERENCE_WIDTH

    def __post_init__(self):
        arrays = {f.name: np.atleast_1d(np.asarray(getattr(self, f.name), dtype=np.float64))
                  for f in fields(self) if f.name != "ref_width"}
        shapes = {k: a.shape for k, a in arrays.items()}
        if len(set(shapes.values())) != 1 or any(a.ndim != 1 for a in arrays.values()):
            raise ValueError(f"camera parameters must be scalars or 1-D arrays of one length, got shapes {shapes}")
        for name, a in arrays.items():
            if not np.isfinite(a).all():
                raise ValueError(f"camera {name} contains NaN or inf")
            object.__setattr__(self, name, a)
        if (arrays["distance"] <= 0).any() or (arrays["focal_px"] <= 0).any():
            raise ValueError("camera distance and focal_px must be positive")
        if int(self.ref_width) <= 0:
            raise ValueError(f"ref_width must be positive, got {self.ref_width}")
        object.__setattr__(self, "ref_width", int(self.ref_width))

    def __len__(self) -> int:
        return len(self.azimuth_deg)

    def __getitem__(self, index) -> CameraParams:
        """A sub-batch (an int index keeps a batch of one)."""
        idx = np.atleast_1d(np.arange(len(self))[index])
        return replace(self, **{name: array[idx] for name, array in self.as_dict().items()})

    @property
    def fov_deg(self) -> np.ndarray:
        """Horizontal field of view of each camera, degrees."""
        return np.rad2deg(2.0 * np.arctan(0.5 * self.ref_width / self.focal_px))

    def as_dict(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "ref_width"}

    def to_camera(self, index: int = 0, target=(0.0, 0.0, 0.0), width: int = REFERENCE_WIDTH,
                  height: int | None = None) -> Camera:
        """The ``index``-th camera, orbiting ``target`` (the body's pelvis or centre, world metres)."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"camera index {index} out of range for a batch of {len(self)}")
        target = np.asarray(target, dtype=np.float64)
        if target.shape != (3,) or not np.isfinite(target).all():
            raise ValueError(f"camera target must be a finite (3,) world point, got {target!r}")
        focal = float(self.focal_px[index]) * width / self.ref_width
        return orbit_camera(float(self.azimuth_deg[index]), float(self.elevation_deg[index]),
                            float(self.distance[index]), float(self.roll_deg[index]), target=target,
                            focal_px=focal, width=width, height=height)

    def to_cameras(self, targets, width: int = REFERENCE_WIDTH, height: int | None = None) -> list[Camera]:
        """One Camera per entry; ``targets`` is (3,) for all or (n, 3), one per camera."""
        t = np.asarray(targets, dtype=np.float64)
        t = np.broadcast_to(t, (len(self), 3)) if t.shape == (3,) else t
        if t.shape != (len(self), 3):
            raise ValueError(f"targets must have shape (3,) or ({len(self)}, 3), got {np.shape(targets)}")
        return [self.to_camera(i, t[i], width, height) for i in range(len(self))]
