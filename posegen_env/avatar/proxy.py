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
    """The rays of one image that enter the proxy shell (all tensors have one row per hit ray)."""

    pixel: torch.Tensor  # (R,) flat pixel index
    origin: torch.Tensor  # (R, 3) world
    direction: torch.Tensor  # (R, 3) world, unit
    t_near: torch.Tensor  # (R,) where the ray enters the shell
    length: torch.Tensor  # (R,) length of the sampling band along the ray
    to_canonical: torch.Tensor  # (R, 3, 4) posed (minus translation) -> canonical mean-shape T-pose
    num_pixels: int


class SkinnedProxy(torch.nn.Module):
    """Decimated body mesh that follows the body model's pose and shape (LBS on ~2k vertices)."""

    def __init__(self, body_model, vertex_ids: np.ndarray, faces: np.ndarray, inflate: float = 0.02,
                 band: float = 0.06):
        super().__init__()
        if inflate <= 0 or band <= 0:
            raise ValueError(f"inflate and band must be positive metres, got {inflate} and {band}")
        self.inflate, self.band = float(inflate), float(band)
        smpl = body_model.smpl
        idx = torch.as_tensor(np.asarray(vertex_ids), dtype=torch.long)
        self.register_buffer("vertex_ids", idx.clone())
        self.register_buffer("faces", torch.as_tensor(np.asarray(faces), dtype=torch.long))
        self.register_buffer("v_template", smpl.v_template[idx].clone())
        self.register_buffer("shapedirs", smpl.shapedirs[idx].clone())
        self.register_buffer("weights", smpl.lbs_weights[idx].clone())
        self.register_buffer("parents", smpl.parents.clone())
        self.register_buffer("joint_template", smpl.J_regressor @ smpl.v_template)
        self.register_buffer("joint_shapedirs", torch.einsum("jv,vck->jck", smpl.J_regressor, smpl.shapedirs))
        self.faces_np = np.asarray(faces)

    @classmethod
    def from_body(cls, body_model, face_count: int = 4000, **kwargs) -> SkinnedProxy:
        """Decimate the body's rest mesh and snap the result to body vertices (so it inherits
        their skinning weights and shape directions)."""
        rest = body_model.rest_vertices()
        coarse = trimesh.Trimesh(rest, body_model.faces, process=False).simplify_quadric_decimation(
            face_count=face_count)
        _, nearest = cKDTree(rest).query(np.asarray(coarse.vertices))
        faces = nearest[np.asarray(coarse.faces)]
        faces = faces[(faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])]
        used, faces = np.unique(faces, return_inverse=True)
        return cls(body_model, used, faces.reshape(-1, 3), **kwargs)

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
        shell = trimesh.Trimesh(bodies.inflated[index].cpu().double().numpy(), self.faces_np, process=False)
        origins, dirs = camera.rays()
        try:
            from trimesh.ray.ray_pyembree import RayMeshIntersector

            caster = RayMeshIntersector(shell)
        except (ImportError, ValueError):
            caster = trimesh.ray.ray_triangle.RayMeshIntersector(shell)
        tri, ray, loc = caster.intersects_id(origins, dirs, multiple_hits=False, return_locations=True)
        if len(ray) == 0:
            empty = torch.zeros(0, device=device)
            return RayHits(empty.long(), empty.reshape(0, 3), empty.reshape(0, 3), empty, empty,
                           empty.reshape(0, 3, 4), camera.width * camera.height)
        bary = trimesh.triangles.points_to_barycentric(shell.triangles[tri], loc)
        t_near = np.einsum("rc,rc->r", loc - origins[ray], dirs[ray])
        cos = np.abs(np.einsum("rc,rc->r", shell.face_normals[tri], dirs[ray]))
        f = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32, device=device)  # noqa: E731
        bary_t, tri_t = f(np.clip(bary, 0, 1)), torch.as_tensor(tri, dtype=torch.long, device=device)
        corners = self.faces[tri_t]  # (R, 3)
        weights = torch.einsum("rk,rkj->rj", bary_t, self.weights[corners])
        blended = torch.einsum("rj,jab->rab", weights, bodies.transforms[index])  # rest -> posed (no transl)
        shape_offset = torch.einsum("rk,rkc->rc", bary_t,
                                    torch.einsum("k,vck->vc", bodies.betas[index], self.shapedirs)[corners])
        inverse = torch.linalg.inv(blended)[:, :3, :]  # posed -> rest (shaped)
        to_canonical = inverse.clone()
        to_canonical[:, :, 3] -= shape_offset  # ... -> canonical mean shape
        length = torch.clamp(self.band / torch.clamp(f(cos), min=0.25), max=4 * self.band)
        return RayHits(torch.as_tensor(ray, dtype=torch.long, device=device), f(origins[ray]) - bodies.transl[index],
                       f(dirs[ray]), f(t_near), length, to_canonical, camera.width * camera.height)
