"""Fitting an avatar to a multi-view capture: ray bank, photometric loss, held-out PSNR.

A new subject of a cast is fitted on a shared geometry (``new_subject``): its density stays
frozen and only its colour (features and MLP) is fitted.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from posegen_env.render.avatar.field import CanonicalField, shell_voxels
from posegen_env.render.avatar.proxy import SkinnedProxy
from posegen_env.render.avatar.renderer import AvatarRenderer, RayHits, march

if TYPE_CHECKING:  # the capture format is the data layer's; fitting only reads its arrays
    from posegen_env.data.capture import Capture


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


@torch.no_grad()
def build_ray_bank(renderer: AvatarRenderer, capture: Capture, frames, cameras, progress=None) -> RayBank:
    """Cast every (frame, camera) image of the capture against the posed proxy and keep the hit rays."""
    parts, rgbs, alphas, missed = [], [], [], 0
    cams = [capture.cameras[c] for c in cameras]
    for frame in frames:
        go, bp, betas, transl = _frame_pose(capture, frame)
        _, hits, _, _ = renderer.cast(go, bp, betas, transl, cams)
        for name, h in zip(cameras, hits, strict=True):
            image = torch.as_tensor(capture.load_image(name, frame), dtype=torch.float32).reshape(-1, 3) / 255.0
            mask = torch.as_tensor(capture.load_alpha(name, frame), dtype=torch.float32).reshape(-1)
            hit = torch.zeros(mask.shape[0], dtype=torch.bool)
            hit[h.pixel.cpu()] = True
            missed += int(((mask > 0.5) & ~hit).sum())
            parts.append(h)
            rgbs.append(image[h.pixel.cpu()])
            alphas.append(mask[h.pixel.cpu()])
        if progress is not None:
            progress.update(1)
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
