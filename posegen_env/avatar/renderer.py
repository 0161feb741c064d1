"""The animatable human NeRF: render any SMPL pose and shape of the avatar from any camera.

Pipeline per image: pose the coarse proxy (LBS) -> cast the camera's rays against its inflated
shell (Embree) -> sample each hit ray in a thin band behind its entry point -> map the samples
to the canonical T-pose with that ray's blended bone transform -> query the canonical field ->
composite with nerfacc. Rays that miss the shell are background.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import nerfacc
import numpy as np
import torch

from posegen_env.avatar.field import CanonicalField
from posegen_env.avatar.proxy import RayHits, SkinnedProxy
from posegen_env.camera import Camera


@dataclass
class AvatarRender:
    """Rendered images and the body's ground truth, one entry per pose."""

    rgb: torch.Tensor  # (B, H, W, 3) float in [0, 1]
    alpha: torch.Tensor  # (B, H, W) float in [0, 1]
    joints3d: torch.Tensor  # (B, 24, 3) world metres
    joints2d: torch.Tensor  # (B, 24, 2) pixels


def march(field: CanonicalField, hits: RayHits, num_samples: int,
          jitter: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Volume-render hit rays: colour (R, 3) premultiplied by opacity, and opacity (R,).

    Samples are evenly spaced in each ray's band (randomly offset within their bins when a
    ``jitter`` generator is given, for training).
    """
    R = hits.t_near.shape[0]
    if R == 0:
        return hits.t_near.new_zeros(0, 3), hits.t_near.new_zeros(0)
    bins = torch.arange(num_samples + 1, device=hits.t_near.device, dtype=torch.float32) / num_samples
    edges = hits.t_near[:, None] + hits.length[:, None] * bins  # (R, S+1)
    starts, ends = edges[:, :-1], edges[:, 1:]
    if jitter is None:
        mids = 0.5 * (starts + ends)
    else:
        mids = starts + (ends - starts) * torch.rand(starts.shape, generator=jitter, device=starts.device)
    posed = hits.origin[:, None, :] + mids[..., None] * hits.direction[:, None, :]  # (R, S, 3)
    canonical = torch.einsum("rab,rsb->rsa", hits.to_canonical[:, :, :3], posed) + hits.to_canonical[:, None, :, 3]
    sigma, rgb = field(canonical.reshape(-1, 3))
    weights, _, _ = nerfacc.render_weight_from_density(starts, ends, sigma.reshape(R, num_samples))
    colour = (weights[..., None] * rgb.reshape(R, num_samples, 3)).sum(dim=1)
    return colour, weights.sum(dim=1)


class AvatarRenderer(torch.nn.Module):
    """Batched avatar rendering; deterministic, no autograd unless ``grad=True``."""

    def __init__(self, body_model, field: CanonicalField, proxy: SkinnedProxy, num_samples: int = 12,
                 background=(255, 255, 255)):
        super().__init__()
        self.body = body_model
        self.field = field
        self.proxy = proxy
        self.num_samples = int(num_samples)
        self.background = background

    @property
    def device(self) -> torch.device:
        return self.field.density.device

    def _background(self, background) -> torch.Tensor:
        bg = torch.as_tensor(self.background if background is None else background, dtype=torch.float32)
        if bg.shape != (3,) or not torch.isfinite(bg).all():
            raise ValueError(f"background must be an RGB triple in 0-255, got {background!r}")
        return (bg / 255.0).to(self.device)

    def cast(self, global_orient, body_pose, betas, transl, cameras: Sequence[Camera]):
        """Pose the proxies and cast every image's rays: posed bodies, RayHits per image, the cameras
        and the body index of each image."""
        global_orient, body_pose, betas, transl = self.body.prepare_inputs(global_orient, body_pose, betas, transl)
        B = body_pose.shape[0]
        if isinstance(cameras, Camera):
            cameras = [cameras]
        cameras = list(cameras)
        if len(cameras) == 1 and B > 1:
            cameras = cameras * B
        if len(cameras) != B and B != 1:
            raise ValueError(f"got {len(cameras)} cameras for {B} poses; pass one camera per pose, one camera "
                             "for all poses, or one pose for all cameras")
        body_index = list(range(B)) if len(cameras) == B else [0] * len(cameras)
        dev = self.device
        bodies = self.proxy.pose(global_orient.to(dev), body_pose.to(dev), betas.to(dev), transl.to(dev))
        for k, (b, cam) in enumerate(zip(body_index, cameras, strict=True)):
            gap = np.linalg.norm(bodies.joints[b].cpu().numpy() - cam.center, axis=1).min()
            if gap < 0.15:
                raise ValueError(f"camera {k} is inside the body ({gap * 100:.0f} cm from a joint); "
                                 "move it further away (e.g. a larger orbit distance)")
        hits = [self.proxy.cast(bodies, b, cam) for b, cam in zip(body_index, cameras, strict=True)]
        return bodies, hits, cameras, body_index

    def render(self, global_orient, body_pose, betas=None, cameras: Sequence[Camera] = (), transl=None,
               background=None, grad: bool = False) -> AvatarRender:
        """Render B poses each from its camera, one camera for all poses, or one pose from every camera.
        All cameras of a call share one image size."""
        with torch.set_grad_enabled(grad):
            bg = self._background(background)
            bodies, hits, cameras, body_index = self.cast(global_orient, body_pose, betas, transl, cameras)
            sizes = {(c.height, c.width) for c in cameras}
            if len(sizes) != 1:
                raise ValueError(f"all cameras of one render call must share an image size, got {sorted(sizes)}")
            (H, W), B = sizes.pop(), len(cameras)
            if H * W == 0:
                raise ValueError("image size must be positive")
            # March all images' rays in one batch.
            merged = RayHits(*(torch.cat([getattr(h, f) for h in hits]) for f in
                               ("pixel", "origin", "direction", "t_near", "length", "to_canonical")), H * W)
            colour, opacity = march(self.field, merged, self.num_samples)
            image_of = torch.cat([torch.full_like(h.pixel, b) for b, h in enumerate(hits)])
            flat = image_of * (H * W) + merged.pixel
            rgb = bg.expand(B * H * W, 3).clone()
            alpha = torch.zeros(B * H * W, device=self.device)
            rgb[flat] = colour + (1 - opacity[:, None]) * bg
            alpha[flat] = opacity
            joints3d = bodies.joints[body_index]
            joints2d = torch.stack([torch.as_tensor(c.project(j.cpu().double().numpy()), dtype=torch.float32)
                                    for j, c in zip(joints3d, cameras, strict=True)])
            return AvatarRender(rgb.reshape(B, H, W, 3), alpha.reshape(B, H, W), joints3d, joints2d)
