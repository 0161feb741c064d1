"""Fitting an avatar to a multi-view capture: ray bank, photometric loss, held-out PSNR.

A new subject of a cast is fitted on a shared geometry (``new_subject``): its density stays
frozen and only its colour (features and MLP) is fitted.

Loading a capture checks its files; what only shows against the body or the pixels (no training
images, distortion the pinhole rays cannot model, cameras that miss the body, empty masks, no
rays at all) is checked here, before and while the ray bank is built, as a ``FitError``
instead of a NaN loss or a traceback deep in torch.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from posegen_env.files import listing
from posegen_env.render.avatar.field import CanonicalField, shell_voxels
from posegen_env.render.avatar.proxy import SkinnedProxy
from posegen_env.render.avatar.renderer import AvatarRenderer, RayHits, march
from posegen_env.render.camera import MAX_CAMERA_DISTANCE, Camera

if TYPE_CHECKING:  # the capture format is the data layer's; fitting only reads its arrays
    from posegen_env.data.capture import Capture

_POSE_KEYS = ("global_orient", "body_pose", "betas", "transl")  # a capture's SMPL arrays, in the body's order


class FitError(ValueError):
    """A capture that loads but cannot be fitted (no frames, distortion, cameras that miss the body, empty
    masks), with what to fix."""


_JOINT_CHUNK = 64  # frames posed at once when checking which cameras see the body
_MIN_BODY_PIXELS = 2.0  # a camera sees the body when its joints span at least this many pixels


@dataclass
class RayBank:
    """Every training ray that enters the body shell, with its target colour and opacity."""

    rays: RayHits
    rgb: torch.Tensor  # (N, 3) in [0, 1], composited on the capture background
    alpha: torch.Tensor  # (N,)
    missed_foreground: int  # foreground pixels whose ray missed the shell (should be ~0)

    def __len__(self) -> int:
        return self.rgb.shape[0]

    def batch(self, index: torch.Tensor) -> tuple[RayHits, torch.Tensor, torch.Tensor]:
        return self.rays.select(index), self.rgb[index], self.alpha[index]


def new_avatar(body_model, voxel_size: float = 0.01, shell: float = 0.03, features: int = 8,
               proxy_faces: int = 3000, inflate: float = 0.01, band: float = 0.06, num_samples: int = 12,
               background=(255, 255, 255)) -> AvatarRenderer:
    """An untrained avatar for ``body_model``: empty-ish field on a shell around its rest surface."""
    voxels, origin, dims = shell_voxels(body_model.rest_vertices(), body_model.faces, voxel_size, shell)
    field = CanonicalField(voxels, origin, dims, voxel_size, features=features)
    proxy = SkinnedProxy.from_body(body_model, face_count=proxy_faces, inflate=inflate, band=band)
    return AvatarRenderer(body_model, field, proxy, num_samples, background)


def new_subject(geometry: AvatarRenderer, background=None) -> AvatarRenderer:
    """An avatar for a new subject on ``geometry``'s density (frozen) and proxy, its colour starting
    from the geometry's own."""
    background = geometry.background if background is None else tuple(background)
    avatar = AvatarRenderer(geometry.body, copy.deepcopy(geometry.field), geometry.proxy, geometry.num_samples,
                            background)
    freeze_geometry(avatar)
    return avatar.train()


def freeze_geometry(avatar: AvatarRenderer) -> None:
    """Keep the density fixed: the gradient then reaches only the colour (features and MLP)."""
    avatar.field.density.requires_grad_(False)


def fitted_parameters(field: CanonicalField) -> tuple[list[torch.nn.Parameter], list[torch.nn.Parameter]]:
    """The voxel tables and the MLP parameters a fit updates (without the density when it is frozen)."""
    voxels = [p for p in (field.density, field.colour) if p.requires_grad]
    return voxels, list(field.mlp.parameters())


def _frame_pose(capture: Capture, frame: int):
    p = capture.frame_params(frame)
    return p["global_orient"], p["body_pose"], p["betas"], p["transl"]


def _sees(camera: Camera, joints: np.ndarray) -> bool:
    """Whether ``camera`` sees a posed body, its ``joints`` (J, 3): one in front of it and inside its
    image, and the body at least ``_MIN_BODY_PIXELS`` across (far cameras, T in mm, see a speck)."""
    uv = camera.project(joints)  # NaN behind the camera: every comparison below is False
    u, v = uv.T
    inside = (u >= -0.5) & (u <= camera.width - 0.5) & (v >= -0.5) & (v <= camera.height - 0.5)
    front = uv[~np.isnan(u)]
    return bool(inside.any()) and float(np.ptp(front, axis=0).max()) >= _MIN_BODY_PIXELS


@torch.no_grad()
def check_fittable(body, capture: Capture, frames, cameras) -> None:
    """Refuse, as a ``FitError`` naming the cameras and the fix, a capture that validates but cannot
    be fitted: no training frames or cameras, non-zero distortion (fitting casts pinhole rays and does
    not undistort), or a training camera that does not see the body (see ``_sees``) in any training frame."""
    where, unit = _calibration(capture)
    for key, values in (("train_frames", frames), ("train_cameras", cameras)):
        if not len(values):
            raise FitError(f"{where}: splits.{key} is empty, so there is nothing to fit on; list the "
                           f"{key.split('_')[1]} to train on in splits.{key}")
    bent = {n: np.asarray(d) for n, d in capture.distortion.items() if np.any(d)}
    if bent:
        shown = listing([f"'{n}' (D = {np.round(d, 6).tolist()})" for n, d in bent.items()])
        raise FitError(f"{where}: camera(s) {shown} have non-zero distortion D, which fitting does not model "
                       "(it casts pinhole rays); undistort those cameras' images and masks first "
                       "(cv2.undistort(image, K, D)) and set their D to zeros")
    frames, parts = list(frames), []
    for i in range(0, len(frames), _JOINT_CHUNK):
        chunk = frames[i:i + _JOINT_CHUNK]
        parts.append(body(*(capture.smpl[k][chunk] for k in _POSE_KEYS)).joints.cpu().numpy())
    joints = np.concatenate(parts)  # (frames, 24, 3)
    blind = [n for n in cameras if not any(_sees(capture.cameras[n], j) for j in joints)]
    if blind:
        centre = joints.mean(axis=(0, 1))
        mm = [n for n in blind if np.linalg.norm(capture.cameras[n].center - centre) > MAX_CAMERA_DISTANCE
              and any(_sees(_metres(capture.cameras[n]), j) for j in joints)]
        unit_fix = ("their T looks like millimetres (ZJU-MoCap's unit) and must be in metres" if unit == "metres"
                    else f"their T looks 1000 times too large for {unit}, the unit {where.name} must use")
        hint = (f"; camera(s) {listing([repr(n) for n in mm])} are far away and would see it with T / 1000: "
                f"{unit_fix}, divide it by 1000" if mm else "")
        raise FitError(f"{where}: training camera(s) {listing([repr(n) for n in blind])} do not see the body "
                       f"in any of the {len(frames)} training frame(s) (its joints are behind the camera, "
                       f"outside the image or under {_MIN_BODY_PIXELS:g} pixels across), so they would give "
                       "no training rays; check their K, R and T (world-to-camera, x_cam = R @ X + T, T in "
                       f"{unit}) and the SMPL parameters{hint}")


def _calibration(capture: Capture) -> tuple[Path, str]:
    """The file that holds ``capture``'s cameras and the unit of T in it, for messages: a format other than
    PoseGen's (capture.json, metres) declares its own (a ZJU-MoCap capture: annots.npy, millimetres)."""
    return capture.root / getattr(capture, "calibration_file", "capture.json"), getattr(capture, "t_unit", "metres")


def _metres(camera: Camera) -> Camera:
    """``camera`` with its translation divided by 1000 (what it would be if T were in millimetres)."""
    return Camera(camera.K, camera.R, camera.t / 1000.0, camera.width, camera.height)


def _check_masks(capture: Capture, frames: list, cameras: list, empty: np.ndarray) -> None:
    """``empty`` (frames, cameras): which training masks have no person pixel. A camera or frame whose
    masks are all empty (or all of them are) is refused: the masks, not the person, are missing. A few
    empty masks (the person out of view) only warn, naming them."""
    where = capture.root
    if empty.all():
        example = capture.mask_path(cameras[0], frames[0])
        raise FitError(f"{where}: all {empty.size} training masks ({len(frames)} frame(s) x {len(cameras)} "
                       f"camera(s)) are empty, no pixel is the person (e.g. {example}); write masks with 255 "
                       "on the person and 0 elsewhere")
    for axis, names, kind in ((0, cameras, "camera"), (1, frames, "frame")):
        bad = [names[i] for i in np.flatnonzero(empty.all(axis=axis))]
        if bad:
            other = "frame" if kind == "camera" else "camera"
            raise FitError(f"{where}: training {kind}(s) {listing(bad)} have an empty mask (no person pixel) "
                           f"in every training {other}; fix their masks or drop them from "
                           f"splits.train_{kind}s")
    if empty.any():
        paths = [str(capture.mask_path(cameras[c], frames[f])) for f, c in zip(*np.nonzero(empty), strict=True)]
        warnings.warn(f"{len(paths)} training mask(s) are empty (no person pixel): {listing(paths)}; those images "
                      "train only the background, fix them if the person is in view", stacklevel=2)


@torch.no_grad()
def build_ray_bank(renderer: AvatarRenderer, capture: Capture, frames, cameras, progress=None) -> RayBank:
    """Cast every (frame, camera) image of the capture against the posed proxy and keep the hit rays.
    The capture is checked first (``check_fittable``), then its masks and the rays found."""
    frames, cameras = list(frames), list(cameras)
    check_fittable(renderer.body, capture, frames, cameras)
    parts, rgbs, alphas, missed = [], [], [], 0
    empty = np.zeros((len(frames), len(cameras)), dtype=bool)
    cams = [capture.cameras[c] for c in cameras]
    for f, frame in enumerate(frames):
        go, bp, betas, transl = _frame_pose(capture, frame)
        _, hits, _, _ = renderer.cast(go, bp, betas, transl, cams)
        for c, (name, h) in enumerate(zip(cameras, hits, strict=True)):
            image = torch.as_tensor(capture.load_image(name, frame), dtype=torch.float32).reshape(-1, 3) / 255.0
            mask = torch.as_tensor(capture.load_alpha(name, frame), dtype=torch.float32).reshape(-1)
            hit = torch.zeros(mask.shape[0], dtype=torch.bool)
            hit[h.pixel.cpu()] = True
            missed += int(((mask > 0.5) & ~hit).sum())
            empty[f, c] = not bool((mask > 0.5).any())
            parts.append(h)
            rgbs.append(image[h.pixel.cpu()])
            alphas.append(mask[h.pixel.cpu()])
        if progress is not None:
            progress.update(1)
    _check_masks(capture, frames, cameras, empty)
    if not sum(len(a) for a in alphas):
        where, unit = _calibration(capture)
        raise FitError(f"{capture.root}: 0 training rays: no pixel's ray of the {empty.size} training images "
                       f"hits the posed body; check the cameras (K, R, T in {unit}) in {where} against the SMPL "
                       "parameters")
    rays = RayHits.concat(parts)
    return RayBank(rays, torch.cat(rgbs).to(renderer.device), torch.cat(alphas).to(renderer.device), missed)


def photometric_loss(field: CanonicalField, rays: RayHits, rgb: torch.Tensor, alpha: torch.Tensor,
                     background: torch.Tensor, num_samples: int, generator: torch.Generator,
                     alpha_weight: float = 0.1) -> torch.Tensor:
    colour, opacity = march(field, rays, num_samples, jitter=generator)
    predicted = colour + (1 - opacity[:, None]) * background
    return torch.mean((predicted - rgb) ** 2) + alpha_weight * torch.mean((opacity - alpha) ** 2)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of two images in [0, 1] (whole image)."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else -10.0 * np.log10(mse)


@torch.no_grad()
def evaluate(renderer: AvatarRenderer, capture: Capture, frames, cameras) -> float:
    """Mean whole-image PSNR (dB) of the avatar against the capture, same background."""
    scores = []
    cams = [capture.cameras[c] for c in cameras]
    for frame in frames:
        go, bp, betas, transl = _frame_pose(capture, frame)
        out = renderer.render(go, bp, betas, cams, transl, background=capture.background)
        for name, image in zip(cameras, out.rgb, strict=True):
            scores.append(psnr(image.cpu().numpy(), capture.load_image(name, frame) / 255.0))
    return float(np.mean(scores))
