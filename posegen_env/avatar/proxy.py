"""A coarse, slightly inflated copy of the posed body that tells each camera ray where to sample.

Empty-space skipping for the avatar NeRF: rays are cast (Embree) against a decimated body
mesh posed by the body model and inflated by ``inflate`` metres, so a ray is sampled only in
a thin band behind the point where it enters that shell, and rays that miss it are background.
The triangle a ray enters through also gives its skinning: the blend of bone transforms at
that point (barycentric mix of the proxy's LBS weights) maps the ray's samples back to the
canonical T-pose, together with the body-shape offset at that point. One transform per ray,
taken from the body model's own weights, instead of a nearest-vertex search per sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import trimesh
from scipy.spatial import cKDTree
from smplx.lbs import batch_rigid_transform, batch_rodrigues

from posegen_env.camera import Camera
from posegen_env.raycast import embree_scene, next_hit


@dataclass
class PosedBodies:
    """A batch of posed proxies: vertices (B, Vp, 3), joints (B, 24, 3), bone transforms (B, 24, 4, 4)."""

    vertices: torch.Tensor
    inflated: torch.Tensor
    joints: torch.Tensor
    transforms: torch.Tensor  # rest (shaped) -> posed, before the translation
    transl: torch.Tensor
    betas: torch.Tensor


@dataclass
class RayHits:
    """The rays of one image that enter the proxy shell (every tensor has one row per hit ray).

    Band 1 starts where the ray first enters the shell. Band 2 starts where it enters the shell
    again after leaving it (``has_second``): a ray that grazes a limb and misses it still finds
    the body part behind, with that part's own skinning.
    """

    pixel: torch.Tensor  # (R,) flat pixel index
    origin: torch.Tensor  # (R, 3) world, minus the body translation
    direction: torch.Tensor  # (R, 3) world, unit
    t_near: torch.Tensor  # (R, 2) where each band starts along the ray
    length: torch.Tensor  # (R, 2) length of each band
    to_canonical: torch.Tensor  # (R, 2, 3, 4) posed (minus translation) -> canonical mean-shape T-pose
    has_second: torch.Tensor  # (R,) bool
    num_pixels: int

    FIELDS = ("pixel", "origin", "direction", "t_near", "length", "to_canonical", "has_second")

    def select(self, index: torch.Tensor) -> RayHits:
        return RayHits(*(getattr(self, f)[index] for f in self.FIELDS), self.num_pixels)

    @staticmethod
    def concat(parts: list[RayHits], num_pixels: int = 0) -> RayHits:
        return RayHits(*(torch.cat([getattr(h, f) for h in parts]) for f in RayHits.FIELDS), num_pixels)


def _pixels_under(vertices: np.ndarray, camera: Camera) -> np.ndarray:
    """Flat indices of the pixels inside the shell's projected bounding box (other rays must miss).

    A shell that reaches behind the camera gets every pixel."""
    cam = camera.world_to_camera(vertices)
    if (cam[:, 2] <= 1e-6).any():
        return np.arange(camera.width * camera.height)
    uv = cam[:, :2] / cam[:, 2:] @ camera.K[:2, :2].T + camera.K[:2, 2]
    lo = np.clip(np.floor(uv.min(axis=0)).astype(int), 0, [camera.width, camera.height])
    hi = np.clip(np.ceil(uv.max(axis=0)).astype(int) + 1, 0, [camera.width, camera.height])
    u, v = np.meshgrid(np.arange(lo[0], hi[0]), np.arange(lo[1], hi[1]))
    return (v * camera.width + u).reshape(-1)


class SkinnedProxy(torch.nn.Module):
    """Decimated body mesh that follows the body model's pose and shape (LBS on ~2k vertices)."""

    def __init__(self, body_model, vertex_ids: np.ndarray, faces: np.ndarray, rest_vertices: np.ndarray,
                 inflate: float = 0.01, band: float = 0.06):
        super().__init__()
        if inflate <= 0 or band <= 0:
            raise ValueError(f"inflate and band must be positive metres, got {inflate} and {band}")
        self.inflate, self.band = float(inflate), float(band)
        smpl = body_model.smpl
        idx = torch.as_tensor(np.asarray(vertex_ids), dtype=torch.long)
        self.register_buffer("vertex_ids", idx.clone())
        self.register_buffer("faces", torch.as_tensor(np.asarray(faces), dtype=torch.long))
        self.register_buffer("v_template", torch.as_tensor(np.asarray(rest_vertices), dtype=torch.float32))
        self.register_buffer("shapedirs", smpl.shapedirs[idx].clone())
        self.register_buffer("weights", smpl.lbs_weights[idx].clone())
        self.register_buffer("parents", smpl.parents.clone())
        self.register_buffer("joint_template", smpl.J_regressor @ smpl.v_template)
        self.register_buffer("joint_shapedirs", torch.einsum("jv,vck->jck", smpl.J_regressor, smpl.shapedirs))
        self.faces_np = np.asarray(faces)

    @classmethod
    def from_body(cls, body_model, face_count: int = 3000, **kwargs) -> SkinnedProxy:
        """Decimate the body's rest mesh; each coarse vertex takes the skinning weights and shape
        directions of the nearest body vertex."""
        rest = body_model.rest_vertices()
        coarse = trimesh.Trimesh(rest, body_model.faces, process=False).simplify_quadric_decimation(
            face_count=face_count)
        _, nearest = cKDTree(rest).query(np.asarray(coarse.vertices))
        return cls(body_model, nearest, np.asarray(coarse.faces), np.asarray(coarse.vertices), **kwargs)

    @torch.no_grad()
    def pose(self, global_orient: torch.Tensor, body_pose: torch.Tensor, betas: torch.Tensor,
             transl: torch.Tensor) -> PosedBodies:
        """Pose a batch (inputs already validated, float32, on this module's device)."""
        B = body_pose.shape[0]
        shape_offset = torch.einsum("bk,vck->bvc", betas, self.shapedirs)
        rest = self.v_template + shape_offset
        joints_rest = self.joint_template + torch.einsum("bk,jck->bjc", betas, self.joint_shapedirs)
        rotations = batch_rodrigues(torch.cat([global_orient, body_pose], dim=1).reshape(-1, 3)).reshape(B, -1, 3, 3)
        joints, transforms = batch_rigid_transform(rotations, joints_rest, self.parents)
        per_vertex = torch.einsum("vj,bjrc->bvrc", self.weights, transforms)
        posed = torch.einsum("bvrc,bvc->bvr", per_vertex[..., :3, :3], rest) + per_vertex[..., :3, 3]
        normals = self._vertex_normals(posed)
        t = transl[:, None]
        return PosedBodies(posed + t, posed + t + self.inflate * normals, joints + t, transforms, transl, betas)

    def _vertex_normals(self, vertices: torch.Tensor) -> torch.Tensor:
        tri = vertices[:, self.faces]  # (B, F, 3, 3)
        face_n = torch.linalg.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0])
        normals = torch.zeros_like(vertices)
        for k in range(3):
            normals.index_add_(1, self.faces[:, k], face_n)
        return torch.nn.functional.normalize(normals, dim=-1)

    @torch.no_grad()
    def cast(self, bodies: PosedBodies, index: int, camera: Camera) -> RayHits:
        """The rays of ``camera`` that enter body ``index``'s shell, with their canonical mapping."""
        device = bodies.vertices.device
        shell = bodies.inflated[index].cpu().double().numpy()
        pixels = _pixels_under(shell, camera)
        origins, dirs = camera.pixel_rays(pixels % camera.width, pixels // camera.width)
        scene = embree_scene(shell, self.faces_np)
        hit, tri, t, bary = next_hit(scene, origins, dirs, np.zeros(len(dirs)))
        rays, tri, t, bary = np.flatnonzero(hit), tri[hit], t[hit], bary[hit]
        o, d = origins[rays], dirs[rays]
        # Band 2: the next entering hit after the ray has left the shell (a shell that intersects
        # itself can also be entered again without leaving it).
        normals = self._face_normals(shell)
        second = np.zeros(len(rays), dtype=bool)
        tri2, t2, bary2 = tri.copy(), t.copy(), bary.copy()
        pending, t_from = np.arange(len(rays)), t
        for _ in range(2):
            h, tr, tt, bb = next_hit(scene, o[pending], d[pending], t_from)
            entering = h & (np.einsum("nc,nc->n", normals[tr], d[pending]) < 0)
            done = pending[entering]
            second[done], tri2[done], t2[done], bary2[done] = True, tr[entering], tt[entering], bb[entering]
            pending, t_from = pending[h & ~entering], tt[h & ~entering]
        f = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32, device=device)  # noqa: E731
        both_tri = np.stack([tri, tri2], axis=1).reshape(-1)
        both_bary = np.stack([bary, bary2], axis=1).reshape(-1, 3)
        to_canonical = self._to_canonical(bodies, index, torch.as_tensor(both_tri, device=device),
                                          f(np.clip(both_bary, 0, 1)))
        facing = np.abs(np.einsum("nc,nc->n", normals[both_tri], np.repeat(d, 2, axis=0)))
        length = torch.clamp(self.band / torch.clamp(f(facing), min=0.25), max=4 * self.band)
        R = len(rays)
        return RayHits(torch.as_tensor(pixels[rays], dtype=torch.long, device=device),
                       f(o) - bodies.transl[index], f(d), f(np.stack([t, t2], axis=1)), length.reshape(R, 2),
                       to_canonical.reshape(R, 2, 3, 4), torch.as_tensor(second, device=device),
                       camera.width * camera.height)

    def _face_normals(self, vertices: np.ndarray) -> np.ndarray:
        tri = vertices[self.faces_np]
        n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        return n / (np.linalg.norm(n, axis=1, keepdims=True) + 1e-12)

    def _to_canonical(self, bodies: PosedBodies, index: int, tri: torch.Tensor, bary: torch.Tensor) -> torch.Tensor:
        """(N, 3, 4) inverse skinning at points on the shell: blended bone transform, then shape offset."""
        corners = self.faces[tri]  # (N, 3)
        weights = torch.einsum("rk,rkj->rj", bary, self.weights[corners])
        blended = torch.einsum("rj,jab->rab", weights, bodies.transforms[index])  # rest -> posed (no transl)
        offsets = torch.einsum("k,vck->vc", bodies.betas[index], self.shapedirs)[corners]
        to_canonical = torch.linalg.inv(blended)[:, :3, :].clone()  # posed -> rest (shaped)
        to_canonical[:, :, 3] -= torch.einsum("rk,rkc->rc", bary, offsets)  # ... -> canonical mean shape
        return to_canonical
