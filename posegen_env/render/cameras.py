"""A batch of pinhole cameras as tensors, so that placing cameras, cutting crops and casting rays
stay on the device that renders (``Camera`` in ``camera.py`` is the single camera users and files
hold, in the same convention: ``x_cam = R @ X + t``, OpenCV axes, pixel (0, 0) at the centre of
the top-left pixel).

Camera placement runs in float64 (cheap: a few numbers per camera), so crops and labels do not
depend on the device; only the per-pixel work downstream runs in float32.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from posegen_env.render.camera import Camera, CameraParams


def matvec(matrices: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
    """``matrices`` (..., 3, 3) times ``vectors`` (..., 3), as plain arithmetic: millions of 3x3
    products (one per ray or pixel) are memory-bound work, which a batched matrix product runs slowly."""
    return (matrices * vectors.unsqueeze(-2)).sum(dim=-1)


@dataclass(frozen=True)
class Cameras:
    """B cameras of one image size: intrinsics ``K`` (B, 3, 3), rotations ``R`` (B, 3, 3) and
    translations ``t`` (B, 3), float64 tensors on one device."""

    K: torch.Tensor
    R: torch.Tensor
    t: torch.Tensor
    width: int
    height: int

    def __len__(self) -> int:
        return self.K.shape[0]

    @property
    def device(self) -> torch.device:
        return self.K.device

    @property
    def centres(self) -> torch.Tensor:
        """Camera centres (B, 3) in world coordinates."""
        return -torch.einsum("bji,bj->bi", self.R, self.t)

    def select(self, index: torch.Tensor | slice) -> Cameras:
        return Cameras(self.K[index], self.R[index], self.t[index], self.width, self.height)

    def world_to_camera(self, points: torch.Tensor) -> torch.Tensor:
        """Camera-frame coordinates (B, P, 3) of world points (B, P, 3), one set per camera."""
        return torch.einsum("bij,bpj->bpi", self.R, points.to(self.R.dtype)) + self.t[:, None]

    def project(self, points: torch.Tensor) -> torch.Tensor:
        """Pixel coordinates (B, P, 2) of world points (B, P, 3); points behind a camera give NaN."""
        cam = self.world_to_camera(points)
        z = cam[..., 2:3]
        uv = torch.einsum("bij,bpj->bpi", self.K, cam)[..., :2] / z
        return torch.where(z > 1e-9, uv, torch.full_like(uv, float("nan")))

    def pixel_directions(self, image: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Unit world directions (N, 3) of the rays through pixel coordinates ``u``, ``v`` (N,) of
        cameras ``image`` (N,); the rays start at ``centres[image]``."""
        pixel = torch.stack([u, v, torch.ones_like(u)], dim=-1).to(self.K.dtype)
        to_world = self.R.transpose(1, 2) @ torch.linalg.inv(self.K)  # pixel -> world direction, per camera
        world = matvec(to_world[image], pixel)
        return world / torch.linalg.vector_norm(world, dim=1, keepdim=True)

    def crop(self, centre: torch.Tensor, side: torch.Tensor, out_size: int) -> Cameras:
        """The cameras whose images are the square crops of side ``side`` (B,) px centred at
        ``centre`` (B, 2), resampled to ``out_size`` px (``Camera.crop`` for a batch)."""
        if out_size <= 0 or bool((side <= 0).any()):
            raise ValueError(f"crop sides and out_size must be positive, got {side.min().item()} and {out_size}")
        scale = out_size / side.to(self.K.dtype)
        A = torch.zeros_like(self.K)
        A[:, 0, 0], A[:, 1, 1], A[:, 2, 2] = scale, scale, 1.0
        A[:, 0, 2] = (side / 2.0 - centre[:, 0]) * scale - 0.5
        A[:, 1, 2] = (side / 2.0 - centre[:, 1]) * scale - 0.5
        return Cameras(A @ self.K, self.R, self.t, out_size, out_size)

    def to_list(self) -> list[Camera]:
        """Each camera as a ``Camera`` (numpy), e.g. to store or to hand to code that takes one."""
        K, R, t = (a.cpu().numpy() for a in (self.K, self.R, self.t))
        return [Camera(K[b], R[b], t[b], self.width, self.height) for b in range(len(self))]

    @staticmethod
    def from_list(cameras: Sequence[Camera], device: torch.device | str = "cpu") -> Cameras:
        """A batch of ``Camera`` objects of one image size."""
        sizes = {(c.height, c.width) for c in cameras}
        if len(sizes) != 1:
            raise ValueError(f"all cameras of one batch must share an image size, got {sorted(sizes)}")
        (height, width), = sizes
        K, R, t = (torch.as_tensor(np.stack([getattr(c, a) for c in cameras]), dtype=torch.float64, device=device)
                   for a in ("K", "R", "t"))
        return Cameras(K, R, t, width, height)


def look_at(eye: torch.Tensor, target: torch.Tensor, roll_deg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(R (B, 3, 3), t (B, 3)) of cameras at ``eye`` (B, 3) looking at ``target`` (B, 3), image up
    along the world's +y, then rolled clockwise by ``roll_deg`` (B,) (``camera.look_at`` for a batch)."""
    forward = target - eye
    norm = torch.linalg.vector_norm(forward, dim=1, keepdim=True)
    if bool((norm < 1e-9).any()):
        raise ValueError("camera position coincides with its target")
    forward = forward / norm
    up = forward.new_tensor([0.0, 1.0, 0.0]).expand_as(forward)
    right = torch.linalg.cross(forward, up)
    vertical = torch.linalg.vector_norm(right, dim=1, keepdim=True) < 1e-6  # looking straight up or down
    right = torch.where(vertical, torch.linalg.cross(forward, forward.new_tensor([0.0, 0.0, 1.0]).expand_as(forward)),
                        right)
    right = right / torch.linalg.vector_norm(right, dim=1, keepdim=True)
    down = torch.linalg.cross(forward, right)
    R = torch.stack([right, down, forward], dim=1)
    roll = torch.deg2rad(roll_deg.to(R.dtype))
    c, s = torch.cos(roll), torch.sin(roll)
    zero, one = torch.zeros_like(c), torch.ones_like(c)
    turn = torch.stack([torch.stack([c, -s, zero], 1), torch.stack([s, c, zero], 1), torch.stack([zero, zero, one], 1)],
                       dim=1)
    R = turn @ R
    return R, -torch.einsum("bij,bj->bi", R, eye)


def orbit_cameras(params: CameraParams, targets: torch.Tensor, width: int) -> Cameras:
    """Square cameras of ``width`` px orbiting ``targets`` (B, 3) world points (the bodies' pelvises)
    as ``params`` says (``CameraParams.to_camera`` for a batch, on the targets' device)."""
    device, f64 = targets.device, torch.float64
    az, el, dist, roll, focal = (torch.as_tensor(a, dtype=f64, device=device) for a in
                                 (params.azimuth_deg, params.elevation_deg, params.distance, params.roll_deg,
                                  params.focal_px))
    targets = targets.to(f64)
    az, el = torch.deg2rad(az), torch.deg2rad(el)
    offset = torch.stack([torch.cos(el) * torch.sin(az), torch.sin(el), torch.cos(el) * torch.cos(az)], dim=1)
    R, t = look_at(targets + dist[:, None] * offset, targets, roll)
    K = torch.zeros(len(az), 3, 3, dtype=f64, device=device)
    K[:, 0, 0] = K[:, 1, 1] = focal * width / params.ref_width
    K[:, 0, 2] = K[:, 1, 2] = (width - 1) / 2.0
    K[:, 2, 2] = 1.0
    return Cameras(K, R, t, width, width)


def crop_jitter(rngs: Sequence[np.random.Generator], jitter: float) -> np.ndarray:
    """Each crop's box jitter (N, 3): a centre shift (x, y) and a rescaling, in fractions of the box
    side, drawn from the crop's own generator in the order ``camera.person_crop_box`` draws them."""
    if not jitter:
        return np.zeros((len(rngs), 3))
    # One call of three draws is the same stream as person_crop_box's two calls (two, then one).
    return np.array([rng.uniform(-jitter, jitter, size=3) for rng in rngs]).reshape(-1, 3)


def person_crop_boxes(joints2d: torch.Tensor, scale: float, jitter: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Square boxes (centres (B, 2), sides (B,) px) around projected joints (B, J, 2), enlarged by
    ``scale`` and moved by ``jitter`` (B, 3) from ``crop_jitter`` (``camera.person_crop_box`` for a batch)."""
    finite = torch.isfinite(joints2d).all(dim=-1, keepdim=True)
    if not bool(finite.any(dim=1).all()):
        raise ValueError("no joint projects in front of the camera; cannot place a person crop")
    inf = torch.full_like(joints2d, float("inf"))
    lo = torch.where(finite, joints2d, inf).amin(dim=1)
    hi = torch.where(finite, joints2d, -inf).amax(dim=1)
    centre = (lo + hi) / 2.0
    side = torch.clamp((hi - lo).amax(dim=1) * scale, min=1.0)
    jitter = jitter.to(joints2d)
    return centre + jitter[:, :2] * side[:, None], side * (1.0 + jitter[:, 2])
