"""A coarse, slightly inflated copy of the posed body that tells each camera ray where to sample.

Empty-space skipping for the avatar NeRF: rays are cast (``shell_cast``) against a decimated body
mesh posed by the body model and inflated by ``inflate`` metres, so a ray is sampled only in
thin bands behind the points where it enters that shell (at most two: the second catches the
body behind a grazed limb), and rays that miss it are background.
The triangle a ray enters through also gives its skinning: the blend of bone transforms at
that point (barycentric mix of the proxy's LBS weights) maps the ray's samples back to the
canonical T-pose, together with the body-shape offset at that point. One transform per ray,
taken from the body model's own weights, instead of a nearest-vertex search per sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
import trimesh
from scipy.spatial import cKDTree
from smplx.lbs import batch_rigid_transform, batch_rodrigues

from posegen_env.render.avatar.shell_cast import cast_shells
from posegen_env.render.camera import Camera
from posegen_env.render.cameras import Cameras
from posegen_env.render.raycast import embree_faces


@dataclass
class PosedBodies:
    """A batch of posed proxies: vertices (B, Vp, 3), joints (B, 24, 3), bone transforms (B, 24, 4, 4)."""

    vertices: torch.Tensor
    inflated: torch.Tensor
    joints: torch.Tensor
    transforms: torch.Tensor  # rest (shaped) -> posed, before the translation
    transl: torch.Tensor
    vertex_transforms: torch.Tensor  # (B, Vp, 4, 4) each vertex's blend of bone transforms (its LBS)
    shape_offsets: torch.Tensor  # (B, Vp, 3) each vertex's body-shape offset from the mean shape

    def __len__(self) -> int:
        return self.joints.shape[0]


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

    def select(self, index: torch.Tensor | slice) -> RayHits:
        return replace(self, **{f: getattr(self, f)[index] for f in self.FIELDS})

    def per_image(self, image: torch.Tensor, count: int) -> list[RayHits]:
        """The rays of each of ``count`` images, in image order (``image``: each ray's image)."""
        order = torch.argsort(image, stable=True)
        sizes = torch.bincount(image, minlength=count).tolist()
        return [RayHits(*part, self.num_pixels) for part in  # type: ignore[call-arg]
                zip(*(torch.split(getattr(self, f)[order], sizes) for f in self.FIELDS), strict=True)]

    @staticmethod
    def concat(parts: list[RayHits], num_pixels: int = 0) -> RayHits:
        return RayHits(**{f: torch.cat([getattr(h, f) for h in parts]) for f in RayHits.FIELDS},  # type: ignore[arg-type]
                       num_pixels=num_pixels)


class SkinnedProxy(torch.nn.Module):
    """Decimated body mesh that follows the body model's pose and shape (LBS on ~2k vertices)."""

    # buffers, registered in __init__
    vertex_ids: torch.Tensor
    faces: torch.Tensor
    v_template: torch.Tensor
    shapedirs: torch.Tensor
    weights: torch.Tensor
    parents: torch.Tensor
    joint_template: torch.Tensor
    joint_shapedirs: torch.Tensor

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
        self.faces_embree = embree_faces(self.faces_np)

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
        shape_offset = torch.einsum("bk,vck->bvc", betas, self.shapedirs)
        rest = self.v_template + shape_offset
        joints, transforms = self._bones(global_orient, body_pose, betas)
        per_vertex = torch.einsum("vj,bjrc->bvrc", self.weights, transforms)
        posed = torch.einsum("bvrc,bvc->bvr", per_vertex[..., :3, :3], rest) + per_vertex[..., :3, 3]
        normals = self._vertex_normals(posed)
        t = transl[:, None]
        return PosedBodies(posed + t, posed + t + self.inflate * normals, joints + t, transforms, transl,
                           per_vertex, shape_offset)

    @torch.no_grad()
    def joints(self, global_orient: torch.Tensor, body_pose: torch.Tensor, betas: torch.Tensor,
               transl: torch.Tensor) -> torch.Tensor:
        """The posed joints (B, 24, 3) of ``pose`` alone (no vertices)."""
        return self._bones(global_orient, body_pose, betas)[0] + transl[:, None]

    def _bones(self, global_orient: torch.Tensor, body_pose: torch.Tensor,
               betas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posed joints (B, 24, 3) and bone transforms (B, 24, 4, 4), both before the translation."""
        B = body_pose.shape[0]
        joints_rest = self.joint_template + torch.einsum("bk,jck->bjc", betas, self.joint_shapedirs)
        rotations = batch_rodrigues(torch.cat([global_orient, body_pose], dim=1).reshape(-1, 3)).reshape(B, -1, 3, 3)
        return batch_rigid_transform(rotations, joints_rest, self.parents)

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
        return self.cast_batch(bodies, [index], [camera])[0]

    @torch.no_grad()
    def cast_batch(self, bodies: PosedBodies, body_index: Sequence[int], cameras: Sequence[Camera]) -> list[RayHits]:
        """The rays of each camera ``k`` that enter the shell of body ``body_index[k]`` (one RayHits per camera)."""
        if not len(cameras):
            return []
        device = bodies.vertices.device
        hits, image = self.cast_rays(bodies, torch.as_tensor(np.asarray(body_index), device=device),
                                     Cameras.from_list(cameras, device))
        return hits.per_image(image, len(cameras))

    @torch.no_grad()
    def cast_rays(self, bodies: PosedBodies, body_index: torch.Tensor, cameras: Cameras,
                  caster: str = "auto") -> tuple[RayHits, torch.Tensor]:
        """The rays of every camera ``k`` that enter the shell of body ``body_index[k]``, all images'
        rays in one RayHits, and the image (camera) of each ray. ``caster``: ``shell_cast.CASTERS``."""
        device = bodies.vertices.device
        used, slot = torch.unique(body_index.to(device), return_inverse=True)
        shells = bodies.inflated[used]
        normals = self._face_normals(shells.double())  # (U, F, 3)
        cast = cast_shells(shells, self.faces, normals, cameras, slot, caster, self.faces_embree)
        body = used[slot[cast.image]]
        # Skinning of band 1 of every ray and band 2 of the rays that have one (the others repeat band 1).
        twice = torch.nonzero(cast.second)[:, 0]
        R = len(cast.image)
        canonical = self._to_canonical(bodies, torch.cat([body, body[twice]]),
                                       torch.cat([cast.triangle[:, 0], cast.triangle[twice, 1]]),
                                       torch.cat([cast.barycentric[:, 0], cast.barycentric[twice, 1]]).clamp(0, 1)
                                       .float())
        to_canonical = canonical[:R, None].repeat(1, 2, 1, 1)
        to_canonical[twice, 1] = canonical[R:]
        d = cast.direction
        facing = (normals[slot[cast.image][:, None], cast.triangle] * d[:, None]).sum(dim=-1).abs().float()
        band = torch.tensor(self.band, dtype=torch.float32, device=device)  # band / facing (at most 4 bands)
        length = torch.minimum(band * (1 / facing.clamp(min=0.25)), 4 * band)
        origin = cameras.centres[cast.image].float() - bodies.transl[body].float()
        return RayHits(cast.pixel, origin, d.float(), cast.t.float(), length, to_canonical, cast.second,
                       cameras.width * cameras.height), cast.image

    def _face_normals(self, vertices: torch.Tensor) -> torch.Tensor:
        """Unit normals (..., F, 3) of the faces of meshes (..., V, 3)."""
        a, b, c = (vertices[..., self.faces[:, k], :] for k in range(3))
        n = torch.linalg.cross(b - a, c - a)
        return n / (torch.linalg.vector_norm(n, dim=-1, keepdim=True) + 1e-12)

    def _to_canonical(self, bodies: PosedBodies, body: torch.Tensor, tri: torch.Tensor,
                      bary: torch.Tensor) -> torch.Tensor:
        """(N, 3, 4) inverse skinning at points on body ``body[n]``'s shell: blended bone transform, then shape offset.

        The bone blend at a point is the barycentric mix of its triangle's per-vertex transforms."""
        V = bodies.vertex_transforms.shape[1]
        corners = (body[:, None] * V + self.faces[tri]).reshape(-1)  # rows of the (B * Vp) per-vertex tables
        mix = lambda table: sum(bary[:, k, None] * table[:, k] for k in range(3))  # noqa: E731
        m = mix(bodies.vertex_transforms.reshape(-1, 16).index_select(0, corners).reshape(-1, 3, 16))
        offset = mix(bodies.shape_offsets.reshape(-1, 3).index_select(0, corners).reshape(-1, 3, 3))
        # Inverse of the blend [[A, shift], [0, scale]] (scale: the blended weights' sum, ~1): A^-1 from cofactors.
        a = [[m[:, 4 * i + j] for j in range(3)] for i in range(3)]
        cof = [[a[(i + 1) % 3][(j + 1) % 3] * a[(i + 2) % 3][(j + 2) % 3]
                - a[(i + 1) % 3][(j + 2) % 3] * a[(i + 2) % 3][(j + 1) % 3] for j in range(3)] for i in range(3)]
        det = a[0][0] * cof[0][0] + a[0][1] * cof[0][1] + a[0][2] * cof[0][2]
        inverse = torch.stack([torch.stack([cof[j][i] for j in range(3)], dim=1) for i in range(3)], dim=1)
        inverse = inverse / det[:, None, None]  # posed -> rest (shaped)
        shift, scale = m[:, [3, 7, 11]], m[:, 15]
        translation = -(inverse @ shift[:, :, None])[:, :, 0] / scale[:, None] - offset  # ... -> canonical mean shape
        return torch.cat([inverse, translation[:, :, None]], dim=2)
