"""Ground-truth renderer: ray-casts the posed body mesh (trimesh + Embree) with procedural clothes.

It makes the multi-view captures a human NeRF is fitted on and is the reference the NeRF is
validated against; PoseGen's data itself is rendered by the NeRF.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from posegen_env.render.camera import Camera
from posegen_env.render.mesh.appearance import ProceduralAppearance
from posegen_env.render.raycast import embree_scene, next_hit


class MeshRenderer:
    """Renders the body in given SMPL poses from given cameras.

    ``supersample`` s casts s x s rays per pixel, giving anti-aliased edges and a soft alpha.
    """

    def __init__(self, body_model, background=(255, 255, 255), supersample: int = 2,
                 appearance: ProceduralAppearance | None = None):
        self.body = body_model
        self.faces = body_model.faces
        self.appearance = appearance or ProceduralAppearance.for_body(body_model)
        self.background = np.asarray(background, dtype=np.float64) / 255.0
        if self.background.shape != (3,):
            raise ValueError(f"background must be an RGB triple (0-255), got {background!r}")
        self.supersample = int(supersample)
        if self.supersample < 1:
            raise ValueError(f"supersample must be >= 1, got {supersample}")

    @torch.no_grad()
    def posed_vertices(self, global_orient, body_pose, betas=None, transl=None) -> tuple[np.ndarray, np.ndarray]:
        """Vertices (B, V, 3) and joints (B, 24, 3) of the posed body, numpy float64."""
        out = self.body(global_orient, body_pose, betas, transl)
        return out.vertices.cpu().double().numpy(), out.joints.cpu().double().numpy()

    def render(self, global_orient, body_pose, betas, transl,
               cameras: Sequence[Camera]) -> tuple[np.ndarray, np.ndarray]:
        """Render one pose from every camera: RGB uint8 (N, H, W, 3) and alpha float32 (N, H, W)."""
        vertices, _ = self.posed_vertices(global_orient, body_pose, betas, transl)
        if vertices.shape[0] != 1:
            raise ValueError("MeshRenderer.render takes one pose; loop over poses for a batch")
        return self.render_vertices(vertices[0], cameras)

    def render_vertices(self, vertices: np.ndarray, cameras: Sequence[Camera]) -> tuple[np.ndarray, np.ndarray]:
        """Render an already posed mesh (V, 3) from every camera (cameras may differ in size)."""
        scene = embree_scene(vertices, self.faces)
        images, alphas = [], []
        for cam in cameras:
            rgb, alpha = self._render_one(scene, cam)
            images.append(rgb)
            alphas.append(alpha)
        return np.stack(images), np.stack(alphas)

    def _render_one(self, scene, cam: Camera) -> tuple[np.ndarray, np.ndarray]:
        s = self.supersample
        origins, dirs = cam.rays(s)
        colour = np.tile(self.background, (len(dirs), 1))
        hit, tri, _, bary = next_hit(scene, origins, dirs, np.zeros(len(dirs)))
        colour[hit] = self.appearance.colour(tri[hit], np.clip(bary[hit], 0.0, 1.0))
        # Average each pixel's s x s sub-rays (rays are ordered row-major at s times the resolution).
        H, W = cam.height, cam.width
        colour = colour.reshape(H, s, W, s, 3).mean(axis=(1, 3))
        alpha = hit.astype(np.float64).reshape(H, s, W, s).mean(axis=(1, 3))
        return (np.clip(colour, 0, 1) * 255 + 0.5).astype(np.uint8), alpha.astype(np.float32)
