"""The animatable human NeRF: render any SMPL pose and shape of the avatar from any camera.

Pipeline per image: pose the coarse proxy (LBS) -> cast the camera's rays against its inflated
shell (``shell_cast``) -> sample each hit ray in a thin band behind its entry point, and in a second band
where it enters the shell again (a ray grazing a limb reaches the body behind) -> map the samples
to the canonical T-pose with that band's blended bone transform -> query the canonical field ->
composite with nerfacc onto each image's background. Rays that miss the shell are background.
A cast (several subjects on one shared geometry, ``cast.py``) renders through the same pipeline:
only the colour lookup takes each ray's own subject.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields

import nerfacc
import numpy as np
import torch

from posegen_env.profiling import stage
from posegen_env.render.avatar.field import CanonicalField, SubjectColours
from posegen_env.render.avatar.proxy import PosedBodies, RayHits, SkinnedProxy
from posegen_env.render.avatar.shell_cast import resolve_caster
from posegen_env.render.camera import Camera
from posegen_env.render.cameras import Cameras

_MIN_WEIGHT = 1e-4  # samples contributing less than this to a pixel get no colour lookup
_MARCH_CHUNK = {"cpu": 65536, "cuda": 1 << 20}  # rays marched per call (bounds the memory of large batches)
_RENDER_THREADS = max(1, min(4, os.cpu_count() or 1))  # parts of a large batch rendered in parallel
_MIN_PART = 8  # images per part, at least


@dataclass
class AvatarRender:
    """Rendered images and the body's ground truth, one entry per pose, on the renderer's device."""

    rgb: torch.Tensor  # (B, H, W, 3) float in [0, 1]
    alpha: torch.Tensor  # (B, H, W) float in [0, 1]
    joints3d: torch.Tensor  # (B, 24, 3) world metres
    joints2d: torch.Tensor  # (B, 24, 2) pixels


@dataclass
class RaySubjects:
    """Whose colour each ray shows: a cast's per-subject colours and a subject index per ray."""

    colours: SubjectColours
    index: torch.Tensor  # (R,) long

    def select(self, rays: torch.Tensor | slice) -> RaySubjects:
        return RaySubjects(self.colours, self.index[rays])

    def colour_at(self, rows: torch.Tensor, weights: torch.Tensor, ray: torch.Tensor) -> torch.Tensor:
        """Colour (P, 3) of samples (corner rows and weights, P x 8) on rays ``ray`` (P,)."""
        return self.colours.colour_at(rows, weights, self.index[ray])


def _band_samples(field: CanonicalField, hits: RayHits, band: int, num_samples: int,
                  jitter: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A band's samples: their field corners and trilinear weights (R * S rows), and their bins
    along the rays, starts and ends (R, S)."""
    t_near, length, to_canonical = hits.t_near[:, band], hits.length[:, band], hits.to_canonical[:, band]
    bins = torch.arange(num_samples + 1, device=t_near.device, dtype=torch.float32) / num_samples
    edges = t_near[:, None] + length[:, None] * bins  # (R, S+1)
    starts, ends = edges[:, :-1], edges[:, 1:]
    if jitter is None:
        mids = 0.5 * (starts + ends)
    else:
        mids = starts + (ends - starts) * torch.rand(starts.shape, generator=jitter, device=starts.device)
    posed = hits.origin[:, None, :] + mids[..., None] * hits.direction[:, None, :]  # (R, S, 3)
    # Canonical points coordinate-major, (3, R, S): every later step works on contiguous rows. Written
    # out rather than as a batched matrix product, which runs millions of 3x3 products slowly on a GPU.
    m = to_canonical.permute(1, 2, 0)[:, :, :, None]  # (3, 4, R, 1)
    canonical = m[:, 0] * posed[..., 0] + m[:, 1] * posed[..., 1] + m[:, 2] * posed[..., 2] + m[:, 3]
    rows, trilinear = field.corners_of_coordinates(canonical.reshape(3, -1))
    return rows, trilinear, starts, ends


def _march_band(field: CanonicalField, hits: RayHits, band: int, num_samples: int, jitter: torch.Generator | None,
                packed: bool, subjects: RaySubjects | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    composite = _composite_packed if packed else _composite_batched
    with stage("march: samples"):
        samples = _band_samples(field, hits, band, num_samples, jitter)
    return composite(field, *samples, subjects)


def _composite_batched(field: CanonicalField, rows: torch.Tensor, trilinear: torch.Tensor, starts: torch.Tensor,
                       ends: torch.Tensor, subjects: RaySubjects | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """nerfacc's batched (n_rays, n_samples) compositing, which runs on any device."""
    with stage("march: density"):
        sigma = field.density_at(rows, trilinear).reshape(starts.shape)
        weights, _, _ = nerfacc.render_weight_from_density(starts, ends, sigma)
    with stage("march: colour"):
        return _weighted_colour(field, rows, trilinear, weights, subjects)


def _weighted_colour(field: CanonicalField, rows: torch.Tensor, trilinear: torch.Tensor, weights: torch.Tensor,
                     subjects: RaySubjects | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Colour (R, 3) and opacity (R,) of rays from their samples' weights (R, S); the colour is the
    field's own, or each ray's subject's.

    Colour is looked up only where a sample contributes: most samples are in front of the surface
    or hidden."""
    R, S = weights.shape
    weights = weights.reshape(-1)
    keep = torch.nonzero(weights.detach() > _MIN_WEIGHT)[:, 0]
    ray = torch.div(keep, S, rounding_mode="floor")
    rgb = _colour(field, rows[keep], trilinear[keep], ray, subjects)
    colour = torch.zeros(R, 3, device=rgb.device, dtype=rgb.dtype).index_add(0, ray, weights[keep, None] * rgb)
    return colour, weights.reshape(R, S).sum(dim=1)


def _colour(field: CanonicalField, rows: torch.Tensor, trilinear: torch.Tensor, ray: torch.Tensor,
            subjects: RaySubjects | None) -> torch.Tensor:
    """Colour (P, 3) of samples on rays ``ray``: the field's own, or each ray's subject's (a cast)."""
    return field.colour_at(rows, trilinear) if subjects is None else subjects.colour_at(rows, trilinear, ray)


def _composite_packed(field: CanonicalField, rows: torch.Tensor, trilinear: torch.Tensor, starts: torch.Tensor,
                      ends: torch.Tensor, subjects: RaySubjects | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """nerfacc's packed (ray_indices) compositing over only the samples inside occupied voxels.

    The sparse voxel shell is the occupancy grid: a sample whose eight corners are all empty has
    zero density and is dropped before any field evaluation. nerfacc runs this path with its
    CUDA kernels, so it is used on CUDA devices.
    """
    R, S = starts.shape
    occupied = torch.nonzero((rows != field.num_voxels).any(dim=1))[:, 0]
    ray_indices = torch.div(occupied, S, rounding_mode="floor")
    sigma = field.density_at(rows[occupied], trilinear[occupied])
    weights, _, _ = nerfacc.render_weight_from_density(starts.reshape(-1)[occupied], ends.reshape(-1)[occupied],
                                                       sigma, ray_indices=ray_indices, n_rays=R)
    rgb = _colour(field, rows[occupied], trilinear[occupied], ray_indices, subjects)
    colour = nerfacc.accumulate_along_rays(weights, rgb, ray_indices=ray_indices, n_rays=R)
    opacity = nerfacc.accumulate_along_rays(weights, None, ray_indices=ray_indices, n_rays=R)
    return colour, opacity[:, 0]


@functools.cache
def _nerfacc_cuda() -> bool:
    """Whether nerfacc's CUDA kernels run here, from one tiny packed scan on the GPU (cached).

    nerfacc loads a prebuilt extension or JIT-builds one with the CUDA toolkit; without it (e.g. a
    CUDA build of torch but no nvcc) its packed functions fail, and only a call shows which."""
    if not torch.cuda.is_available():
        return False
    try:
        ones = torch.ones(1, device="cuda")
        nerfacc.exclusive_sum(ones, packed_info=torch.tensor([[0, 1]], device="cuda"))
    except (AttributeError, ImportError, OSError, RuntimeError):
        return False
    return True


def march(field: CanonicalField, hits: RayHits, num_samples: int, jitter: torch.Generator | None = None,
          min_transmittance: float = 0.01, packed: bool = False,
          subjects: RaySubjects | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Volume-render hit rays: colour (R, 3) premultiplied by opacity, and opacity (R,).

    Samples are evenly spaced in each band (randomly offset within their bins when a ``jitter``
    generator is given, for training). A ray's second band is only marched while more than
    ``min_transmittance`` of its light is left after the first (early ray termination).
    By default nerfacc's batched ``(n_rays, n_samples)`` functions composite, on any device.
    ``packed=True`` (CUDA only) composites just the occupied samples with nerfacc's packed path. It is
    off by default: it was no faster on a GPU, and its kernels are JIT-built with nvcc on first use
    (benchmarks/RESULTS.md). ``subjects`` gives each ray its own subject's colour (a cast); the
    field then supplies only the density.
    """
    if packed and not _nerfacc_cuda():
        raise ValueError("packed marching needs nerfacc's CUDA kernels (built with the CUDA toolkit's nvcc) and "
                         "rays on CUDA; use packed=False, which runs anywhere")
    if hits.t_near.shape[0] == 0:
        return hits.origin.new_zeros(0, 3), hits.origin.new_zeros(0)
    colour, opacity = _march_band(field, hits, 0, num_samples, jitter, packed, subjects)
    behind = torch.nonzero(hits.has_second & (opacity.detach() < 1 - min_transmittance))[:, 0]
    if len(behind):  # kept: faster than nerfacc's prefix_trans, benchmarks/RESULTS.md
        colour2, opacity2 = _march_band(field, hits.select(behind), 1, num_samples, jitter, packed,
                                        None if subjects is None else subjects.select(behind))
        transmittance = 1 - opacity[behind]
        colour = colour.index_add(0, behind, transmittance[:, None] * colour2)
        opacity = opacity.index_add(0, behind, transmittance * opacity2)
    return colour, opacity


class AvatarRenderer(torch.nn.Module):
    """Batched avatar rendering; deterministic, no autograd unless ``grad=True``."""

    identifier: str  # names the avatar file (set by load_avatar), so caches of its renders are told apart

    def __init__(self, body_model, field: CanonicalField, proxy: SkinnedProxy, num_samples: int = 12,
                 background=(255, 255, 255)):
        super().__init__()
        self.body = body_model
        self.field = field
        self.proxy = proxy
        self.num_samples = int(num_samples)
        self.background = background
        self.caster = "auto"  # which shell caster (shell_cast.CASTERS): torch on CUDA, Embree on the CPU

    @property
    def device(self) -> torch.device:
        return self.field.density.device

    def _backgrounds(self, background, num_images: int) -> torch.Tensor:
        """Each image's background (num_images, 3) in [0, 1] from one RGB triple in 0-255 for all
        images or one per image (None: the renderer's own). Scaled in float64: whole numbers give
        what float32 division gives, and a colour drawn in [0, 1] and sent as 255 x it comes back
        as that colour in float32."""
        given = self.background if background is None else background
        try:
            bg = torch.as_tensor(given, dtype=torch.float64).cpu()
        except (TypeError, ValueError, RuntimeError):
            bg = None
        if bg is None or bg.shape not in ((3,), (1, 3), (num_images, 3)) or not torch.isfinite(bg).all():
            raise ValueError(f"background must be an RGB triple in 0-255, or one per image ({num_images}, 3); "
                             f"got {background!r}")
        return (bg / 255.0).float().reshape(-1, 3).expand(num_images, 3).to(self.device)

    @torch.no_grad()
    def pose(self, global_orient, body_pose, betas=None, transl=None) -> PosedBodies:
        """Pose the proxies of a batch: what ``render_posed`` renders, with the world joints
        (``.joints``, B x 24 x 3) to place its cameras by, posed once for both."""
        args = self.body.prepare_inputs(global_orient, body_pose, betas, transl)
        return self.proxy.pose(*(a.to(self.device) for a in args))

    @torch.no_grad()
    def posed_joints(self, global_orient, body_pose, betas=None, transl=None) -> torch.Tensor:
        """World joints (B, 24, 3) of the posed body: cheap (no image), e.g. to place cameras and crops."""
        args = self.body.prepare_inputs(global_orient, body_pose, betas, transl)
        return self.proxy.joints(*(a.to(self.device) for a in args))

    def _pair(self, num_poses: int, cameras) -> tuple[Cameras, torch.Tensor]:
        """The cameras of the images (a ``Cameras`` batch, or ``Camera`` objects) and the pose each shows."""
        if not isinstance(cameras, Cameras):
            cameras = [cameras] if isinstance(cameras, Camera) else list(cameras)
            if not cameras:
                raise ValueError(f"got 0 cameras for {num_poses} poses; pass one camera per pose, one camera for all "
                                 "poses, or one pose for all cameras")
            sizes = {(c.height, c.width) for c in cameras}
            if len(sizes) != 1:
                raise ValueError(f"all cameras of one render call must share an image size, got {sorted(sizes)}")
            cameras = Cameras.from_list(cameras, self.device)
        if len(cameras) == 1 and num_poses > 1:
            cameras = cameras.select(torch.zeros(num_poses, dtype=torch.long, device=cameras.device))
        if len(cameras) != num_poses and num_poses != 1:
            raise ValueError(f"got {len(cameras)} cameras for {num_poses} poses; pass one camera per pose, one camera "
                             "for all poses, or one pose for all cameras")
        count = len(cameras)
        body_index = torch.arange(count) if count == num_poses else torch.zeros(count, dtype=torch.long)
        return cameras, body_index.to(self.device)

    def cast(self, global_orient, body_pose, betas, transl,
             cameras: Sequence[Camera]) -> tuple[PosedBodies, list[RayHits], list[Camera], list[int]]:
        """Pose the proxies and cast every image's rays: posed bodies, RayHits per image, the cameras
        and the body index of each image."""
        bodies = self.pose(global_orient, body_pose, betas, transl)
        batch, body_index = self._pair(len(bodies), cameras)
        self._check_outside(bodies, batch, body_index)
        hits, image = self.proxy.cast_rays(bodies, body_index, batch, self.caster)
        return bodies, hits.per_image(image, len(batch)), batch.to_list(), body_index.tolist()

    @staticmethod
    def _check_outside(bodies: PosedBodies, cameras: Cameras, body_index: torch.Tensor, first_camera: int = 0) -> None:
        """Refuse a camera inside its body; errors number the cameras from ``first_camera``."""
        centres = cameras.centres[:, None].to(bodies.joints.device)
        gaps = torch.linalg.vector_norm(bodies.joints[body_index].double() - centres, dim=2).amin(dim=1)
        inside = torch.nonzero(gaps < 0.15)[:, 0]
        if len(inside):
            k = int(inside[0])
            raise ValueError(f"camera {first_camera + k} is inside the body ({float(gaps[k]) * 100:.0f} cm from a "
                             "joint); move it further away (e.g. a larger orbit distance)")

    def render(self, global_orient, body_pose, betas=None, cameras: Sequence[Camera] = (), transl=None,
               background=None, grad: bool = False) -> AvatarRender:
        """Render B poses each from its camera, one camera for all poses, or one pose from every camera.
        All cameras of a call share one image size. ``background``: one RGB triple in 0-255 for all
        images, or one per image (B, 3); None is the renderer's own."""
        bodies = self.pose(global_orient, body_pose, betas, transl)
        return self.render_posed(bodies, cameras, background, grad)

    def render_posed(self, bodies: PosedBodies, cameras: Sequence[Camera] = (), background=None,
                     grad: bool = False) -> AvatarRender:
        """``render`` for bodies already posed by ``pose``: cameras placed by their joints then cost no
        second posing.

        ``cameras``: ``Camera`` objects or one ``Cameras`` batch."""
        return self._render_images(bodies, cameras, background, grad, None)

    def _render_images(self, bodies: PosedBodies, cameras, background, grad: bool,
                       subject: torch.Tensor | None) -> AvatarRender:
        """``render_posed``, image k in the colour of subject ``subject[k]`` when given (a cast)."""
        cameras, body_index = self._pair(len(bodies), cameras)
        if min(cameras.height, cameras.width) <= 0:
            raise ValueError("image size must be positive")
        bg = self._backgrounds(background, len(cameras))
        self._check_outside(bodies, cameras, body_index)
        # Embree holds the GIL while it casts: parts in threads overlap its casting with the field
        # queries (torch, which releases it) of another part. The torch caster needs no threads.
        threaded = not grad and resolve_caster(self.caster, self.device) == "embree"
        parts = max(1, min(_RENDER_THREADS, len(cameras) // _MIN_PART)) if threaded else 1
        bounds = np.linspace(0, len(cameras), parts + 1).astype(int)

        def render_part(k: int) -> AvatarRender:
            with torch.set_grad_enabled(grad):  # grad mode is per thread
                part = slice(int(bounds[k]), int(bounds[k + 1]))
                return self._render(bodies, cameras.select(part), body_index[part], bg[part],
                                    None if subject is None else subject[part])

        if parts == 1:
            return render_part(0)
        outs = list(_render_pool().map(render_part, range(parts)))
        return AvatarRender(*(torch.cat([getattr(o, f.name) for o in outs]) for f in fields(AvatarRender)))

    def _render(self, bodies: PosedBodies, cameras: Cameras, body_index: torch.Tensor, bg: torch.Tensor,
                subject: torch.Tensor | None = None) -> AvatarRender:
        """One part of ``render_posed``: camera k shows body ``body_index[k]`` on background ``bg[k]``
        (in the colour of subject ``subject[k]``, when given)."""
        # A cast's images are cast in order of subject, so that each subject's rays (and samples) come
        # as one block to decode; ``image_of`` then maps each ray back to its own image.
        order = None if subject is None else torch.argsort(subject.to(self.device), stable=True)
        with stage("cast"):
            if order is None:
                merged, image_of = self.proxy.cast_rays(bodies, body_index, cameras, self.caster)
            else:
                merged, image_of = self.proxy.cast_rays(bodies, body_index[order], cameras.select(order), self.caster)
                image_of = order[image_of]
        with stage("march"):
            return self._march_images(merged, image_of, bodies, cameras, body_index, bg, subject)

    def _march_images(self, merged: RayHits, image_of: torch.Tensor, bodies: PosedBodies, cameras: Cameras,
                      body_index: torch.Tensor, bg: torch.Tensor, subject: torch.Tensor | None) -> AvatarRender:
        """March the hit rays and lay them onto the images' backgrounds."""
        (H, W), B = (cameras.height, cameras.width), len(cameras)
        subjects = None if subject is None else self._ray_subjects(subject.to(self.device)[image_of])
        step = _MARCH_CHUNK.get(self.device.type, _MARCH_CHUNK["cpu"])
        chunks = [slice(s, s + step) for s in range(0, max(len(merged.pixel), 1), step)]
        parts = [march(self.field, merged.select(c), self.num_samples,
                       subjects=None if subjects is None else subjects.select(c)) for c in chunks]
        colour, opacity = (torch.cat(p) for p in zip(*parts, strict=True))
        flat = image_of * (H * W) + merged.pixel
        rgb = bg.repeat_interleave(H * W, dim=0)
        alpha = torch.zeros(B * H * W, device=self.device)
        rgb[flat] = colour + (1 - opacity[:, None]) * bg[image_of]
        alpha[flat] = opacity
        joints3d = bodies.joints[body_index]
        joints2d = cameras.project(joints3d.double()).float()
        return AvatarRender(rgb.reshape(B, H, W, 3), alpha.reshape(B, H, W), joints3d, joints2d)

    def _ray_subjects(self, index: torch.Tensor) -> RaySubjects:
        """The colours of rays of subjects ``index`` (R,); only a cast has subjects."""
        raise ValueError("this avatar has one subject; subjects are chosen per image only by a cast (load_cast)")


@functools.cache
def _render_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(_RENDER_THREADS, thread_name_prefix="posegen-render")
