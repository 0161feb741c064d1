"""Where camera rays enter the avatar's proxy shells: one interface, two casters.

For every pixel of every image whose ray hits its body's shell: the first hit (band 1) and the
next hit that *enters* the shell after the ray has left it (band 2; a ray grazing a limb finds
the body behind it), each as triangle, distance and barycentrics. Hits closer than ``EPSILON``
to the last one are the same hit (a ray through a shared edge).

- ``"torch"`` rasterises the shells: each projected triangle's pixel box gives candidate
  (triangle, pixel) pairs, a ray-triangle test keeps the hits, and a sort per pixel orders them.
  Plain tensor code, so it runs on the device that renders (CUDA or CPU).
- ``"embree"`` casts the rays with Embree on the CPU (one scene per body), faster there.

``"auto"`` takes torch on CUDA and Embree on the CPU (benchmarks/RESULTS.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from posegen_env.render.cameras import Cameras, matvec
from posegen_env.render.raycast import embree_faces, embree_scene, next_hit

EPSILON = 1e-4  # metres: a hit this close to the last one is the same hit
CASTERS = ("auto", "torch", "embree")
_CELL = 4  # the Embree caster's candidate pixels come in blocks of this many pixels squared
_PAIRS_PER_PART = {"cuda": 1 << 25, "cpu": 1 << 22}  # candidate pairs tested at once (bounds memory)


@dataclass
class ShellHits:
    """The rays that hit their shell, one row each, grouped by image."""

    image: torch.Tensor  # (R,) long: the camera (and image) of each ray
    pixel: torch.Tensor  # (R,) long: flat pixel index in its image
    direction: torch.Tensor  # (R, 3) float64 unit world direction; the ray starts at its camera's centre
    triangle: torch.Tensor  # (R, 2) long: entry triangle of band 1 and band 2 (band 1's again without one)
    t: torch.Tensor  # (R, 2) float64: distance of each band's entry
    barycentric: torch.Tensor  # (R, 2, 3) float64
    second: torch.Tensor  # (R,) bool: band 2 exists


def resolve_caster(caster: str, device: torch.device) -> str:
    """The caster ``caster`` names ("auto": torch on CUDA, Embree on the CPU)."""
    if caster not in CASTERS:
        raise ValueError(f"caster must be one of {CASTERS}, got {caster!r}")
    if caster == "auto":
        return "torch" if device.type == "cuda" else "embree"
    return caster


def cast_shells(shells: torch.Tensor, faces: torch.Tensor, normals: torch.Tensor, cameras: Cameras,
                slot: torch.Tensor, caster: str = "auto", faces_embree: np.ndarray | None = None) -> ShellHits:
    """The hits of every pixel ray of camera ``b`` against shell ``slot[b]``: ``shells`` (U, V, 3)
    world vertices, ``faces`` (F, 3), face ``normals`` (U, F, 3); ``faces_embree``: the faces as
    ``raycast.embree_faces`` gives them, made once per mesh (the Embree caster)."""
    if len(cameras) == 0:
        return _no_hits(shells.device)
    if resolve_caster(caster, shells.device) == "torch":
        return _rasterise(shells, faces, cameras, slot)
    return _embree(shells, faces, normals, cameras, slot, faces_embree)


def _no_hits(device: torch.device) -> ShellHits:
    def empty(*shape: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        return torch.zeros(0, *shape, dtype=dtype, device=device)

    return ShellHits(empty(dtype=torch.long), empty(dtype=torch.long), empty(3), empty(2, dtype=torch.long), empty(2),
                     empty(2, 3), empty(dtype=torch.bool))


def _select_bands(key: torch.Tensor, t: torch.Tensor, triangle: torch.Tensor, bary: torch.Tensor,
                  entering: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """From all hits (one row per ray-triangle hit; ``key`` names the ray), each ray's band 1 (its
    first hit) and band 2 (the next hit if it enters, else the one after if that enters: the hits
    Embree's next-hit loop finds). Returns the rays' keys, triangles (R, 2), t (R, 2), barycentrics
    (R, 2, 3) and whether band 2 exists."""
    order = torch.argsort(t)
    order = order[torch.argsort(key[order], stable=True)]
    key, t, triangle, bary, entering = key[order], t[order], triangle[order], bary[order], entering[order]
    new_ray = torch.ones_like(key, dtype=torch.bool)
    new_ray[1:] = key[1:] != key[:-1]
    same_hit = torch.zeros_like(new_ray)
    same_hit[1:] = ~new_ray[1:] & (t[1:] - t[:-1] <= EPSILON)
    keep = ~same_hit
    key, t, triangle, bary, entering, new_ray = (a[keep] for a in (key, t, triangle, bary, entering, new_ray))
    ray = torch.cumsum(new_ray, 0) - 1
    first = torch.nonzero(new_ray)[:, 0]
    rank = torch.arange(len(key), device=key.device) - first[ray]
    R = len(first)
    # Band 2 is hit 1 if it enters; else hit 2 if hit 1 leaves and hit 2 enters.
    second_hit = torch.full((R, 3), -1, dtype=torch.long, device=key.device)
    within = rank < 3
    second_hit[ray[within], rank[within]] = torch.nonzero(within)[:, 0]
    h1, h2 = second_hit[:, 1], second_hit[:, 2]
    enters1 = (h1 >= 0) & entering[h1.clamp(min=0)]
    enters2 = (h1 >= 0) & ~enters1 & (h2 >= 0) & entering[h2.clamp(min=0)]
    band2 = torch.where(enters1, h1, torch.where(enters2, h2, first))
    bands = torch.stack([first, band2], dim=1)
    return key[first], triangle[bands], t[bands], bary[bands], enters1 | enters2


def _rasterise(shells: torch.Tensor, faces: torch.Tensor, cameras: Cameras, slot: torch.Tensor) -> ShellHits:
    """The torch caster (see the module docstring); works in each camera's frame, where rays start at 0.
    Whether a hit enters the shell comes from the sign of its ray-triangle determinant (the face
    normal's side), so it needs no normals."""
    device, (H, W) = shells.device, (cameras.height, cameras.width)
    B, F = len(cameras), faces.shape[0]
    # Triangle corners in each camera's frame (B, F, 3 corners, 3) and their pixel boxes.
    corners = cameras.world_to_camera(shells[slot].to(torch.float64))[:, faces]
    z = corners[..., 2]
    uv = torch.einsum("bij,bfcj->bfci", cameras.K[:, :2], corners) / z.clamp(min=1e-9)[..., None]
    behind = (z <= 1e-6).any(dim=2)  # such a triangle may cover any pixel
    lo = torch.where(behind[..., None], 0.0, torch.ceil(uv.amin(dim=2) - 1e-3))
    hi = torch.where(behind[..., None], uv.new_tensor([W - 1.0, H - 1.0]), torch.floor(uv.amax(dim=2) + 1e-3))
    lo = torch.maximum(lo, uv.new_zeros(2)).long()
    hi = torch.minimum(hi, uv.new_tensor([W - 1.0, H - 1.0])).long()
    extent = (hi - lo + 1).clamp(min=0)
    count = (extent[..., 0] * extent[..., 1]).reshape(-1)  # candidate pixels of each (camera, triangle)
    inverse_K = torch.linalg.inv(cameras.K).float()
    # Triangle edges for the ray test (float32: as Embree), with the face normal's side for "entering".
    v0 = corners[..., 0, :].float()
    e1, e2 = (corners[..., 1, :] - corners[..., 0, :]).float(), (corners[..., 2, :] - corners[..., 0, :]).float()
    parts = []
    budget = _PAIRS_PER_PART.get(device.type, _PAIRS_PER_PART["cpu"])
    ends = torch.cumsum(count, 0)
    start = 0
    total = int(ends[-1]) if len(ends) else 0
    while start < B * F and total:
        reached = int(ends[start - 1]) if start else 0
        stop = int(torch.searchsorted(ends, reached + budget, right=True))
        stop = min(max(stop, start + 1), B * F)
        parts.append(_test_pairs(start, stop, count, lo, extent, v0, e1, e2, inverse_K, F, H, W))
        start = stop
    if not parts:
        return _no_hits(device)
    key, t, triangle, u, v, entering = (torch.cat(p) for p in zip(*parts, strict=True))
    bary = torch.stack([1 - u - v, u, v], dim=1)
    key, triangle, t, bary, second = _select_bands(key, t, triangle, bary, entering)
    image, pixel = key // (H * W), key % (H * W)
    direction = cameras.pixel_directions(image, (pixel % W).double(), (pixel // W).double())
    return ShellHits(image, pixel, direction, triangle, t, bary.double(), second)


def _test_pairs(start: int, stop: int, count: torch.Tensor, lo: torch.Tensor, extent: torch.Tensor,
                v0: torch.Tensor, e1: torch.Tensor, e2: torch.Tensor, inverse_K: torch.Tensor, F: int, H: int,
                W: int) -> tuple[torch.Tensor, ...]:
    """Ray-triangle tests (Moller-Trumbore, rays from the camera centre) of the candidate pairs of
    the flat (camera, triangle) entries ``start:stop``; returns the hits' ray keys (image * H * W +
    pixel), distances, triangles, barycentric u and v, and whether they enter the shell."""
    device = count.device
    cells = torch.arange(start, stop, device=device)
    n = count[start:stop]
    which = torch.repeat_interleave(cells, n)
    offset = torch.arange(len(which), device=device) - torch.repeat_interleave(torch.cumsum(n, 0) - n, n)
    b, f = which // F, which % F
    width = extent.reshape(-1, 2)[which, 0]
    corner = lo.reshape(-1, 2)[which]
    px, py = corner[:, 0] + offset % width, corner[:, 1] + offset // width
    d = matvec(inverse_K[b], torch.stack([px, py, torch.ones_like(px)], dim=1).float())
    a, p1, p2 = v0.reshape(-1, 3)[which], e1.reshape(-1, 3)[which], e2.reshape(-1, 3)[which]
    p = torch.linalg.cross(d, p2)
    det = (p1 * p).sum(dim=1)
    safe = torch.where(det.abs() > 1e-12, det, torch.ones_like(det))
    s = -a  # ray origin (0) minus corner 0
    u = (s * p).sum(dim=1) / safe
    q = torch.linalg.cross(s, p1)
    v = (d * q).sum(dim=1) / safe
    length = torch.linalg.vector_norm(d, dim=1)
    t = (p2 * q).sum(dim=1) / safe * length  # along the unit direction
    tol = 1e-6
    hit = (det.abs() > 1e-12) & (u >= -tol) & (v >= -tol) & (u + v <= 1 + tol) & (t > EPSILON)
    keep = torch.nonzero(hit)[:, 0]
    key = b[keep] * (H * W) + py[keep] * W + px[keep]
    # The face normal is (e1 x e2); a ray enters where it points against it: d . (e1 x e2) = -det < 0.
    return key, t[keep].double(), f[keep], u[keep].clamp(0, 1), v[keep].clamp(0, 1), det[keep] > 0


def _embree(shells: torch.Tensor, faces: torch.Tensor, normals: torch.Tensor, cameras: Cameras,
            slot: torch.Tensor, faces_embree: np.ndarray | None = None) -> ShellHits:
    """The Embree caster: candidate pixels from the triangles' pixel boxes, then Embree's next hits
    (the cameras taken grouped by shell, one scene each)."""
    shell_points = shells.double().cpu().numpy()
    faces_np = faces.cpu().numpy()
    slot_np = slot.cpu().numpy()
    by_body = np.argsort(slot_np, kind="stable")
    grouped = cameras.select(torch.from_numpy(by_body).to(cameras.device))
    pixels, image = _pixels_under(shell_points[slot_np[by_body]], faces_np, grouped)
    image_t, pixel_t = (torch.from_numpy(a).to(cameras.device) for a in (image, pixels))
    W = cameras.width
    dirs = grouped.pixel_directions(image_t, (pixel_t % W).double(), (pixel_t // W).double()).cpu().numpy()
    origins = grouped.centres.cpu().numpy()[image]
    rows = embree_faces(faces_np) if faces_embree is None else faces_embree
    scenes = [embree_scene(shell, rows) for shell in shell_points]
    rays, second, tri, t, bary = _trace(scenes, normals.cpu().numpy(), slot_np[by_body][image], origins, dirs)
    as_tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(shells.device)  # noqa: E731
    return ShellHits(as_tensor(by_body[image[rays]]), as_tensor(pixels[rays]), as_tensor(dirs[rays]),
                     as_tensor(tri), as_tensor(t), as_tensor(bary.astype(np.float64)), as_tensor(second))


def _pixels_under(shells: np.ndarray, faces: np.ndarray, cameras: Cameras,
                  cell: int = _CELL) -> tuple[np.ndarray, np.ndarray]:
    """The pixels whose rays may hit each shell (other rays must miss): flat pixel indices of all
    images one after another, and the image of each. Shell k (V, 3), triangles ``faces``, is seen
    by camera k.

    A pixel is kept when its ``cell`` x ``cell`` block touches the projected bounding box of a
    shell triangle: about 60 % of the rays of the shell's bounding box (the rest would miss).
    A shell that reaches behind its camera gets every pixel."""
    R, t, K = (a.cpu().numpy() for a in (cameras.R, cameras.t, cameras.K))
    size = np.array([cameras.width, cameras.height])
    x, y, z = (R @ shells.transpose(0, 2, 1) + t[:, :, None]).transpose(1, 0, 2)  # camera frame, (N, V) each
    behind = (z <= 1e-6).any(axis=1)
    x, y = x / np.where(behind[:, None], 1.0, z), y / np.where(behind[:, None], 1.0, z)
    cells = -(-size // cell)  # blocks across and down
    # Each triangle's block range (a small margin keeps it conservative against rounding), clipped to the image.
    first, last = [], []
    for i in range(2):
        corner = (K[:, i, 0, None] * x + K[:, i, 1, None] * y + K[:, i, 2, None])[:, faces]  # (N, F, 3)
        first.append(np.maximum(np.floor((corner.min(axis=2) - 1e-2) / cell), 0).astype(np.int64))
        last.append(np.minimum(np.floor((corner.max(axis=2) + 1e-2) / cell), cells[i] - 1).astype(np.int64))
    extent = [b - a + 1 for a, b in zip(first, last, strict=True)]
    count = np.where((extent[0] > 0) & (extent[1] > 0) & ~behind[:, None], extent[0] * extent[1], 0).reshape(-1)
    tri = np.repeat(np.arange(len(count)), count)
    k = np.arange(len(tri)) - np.repeat(np.cumsum(count) - count, count)
    width = extent[0].reshape(-1)[tri]
    covered = np.zeros((len(cameras), cells[1], cells[0]), dtype=bool)
    covered[tri // faces.shape[0], first[1].reshape(-1)[tri] + k // width, first[0].reshape(-1)[tri] + k % width] = True
    covered[behind] = True
    image, cv, cu = np.nonzero(covered)
    dv, du = np.divmod(np.arange(cell * cell), cell)  # the pixels of a block, row by row
    u, v = (cu[:, None] * cell + du).reshape(-1), (cv[:, None] * cell + dv).reshape(-1)
    image = np.repeat(image, cell * cell)
    inside = (u < size[0]) & (v < size[1])
    image, u, v = image[inside], u[inside], v[inside]
    return v * size[0] + u, image


def _trace(scenes: list, normals: np.ndarray, body: np.ndarray, origins: np.ndarray, dirs: np.ndarray):
    """Where rays enter the shells (one scene each, face normals (U, F, 3)); the rays come grouped
    by ``body``, their shell's index (sorted). Returns the rays that hit their shell, and for each
    of them whether a second band exists and the triangle (R, 2), t (R, 2) and barycentrics
    (R, 2, 3) of both bands.

    Band 2 is the next entering hit after the ray has left the shell (a shell that intersects
    itself can also be entered again without leaving it); without one it repeats band 1."""
    counts = lambda b: np.bincount(b, minlength=len(scenes))  # noqa: E731  rays per scene
    hit, tri, t, bary = next_hit(scenes, origins, dirs, np.zeros(len(dirs)), counts(body))
    rays = np.flatnonzero(hit)
    tri, t, bary = (np.repeat(a[rays, None], 2, axis=1) for a in (tri, t, bary))
    body, origins, dirs = body[rays], origins[rays], dirs[rays]
    second = np.zeros(len(rays), dtype=bool)
    pending, t_from = np.arange(len(rays)), t[:, 0]
    for _ in range(2):
        b = body[pending]
        h, tr, tt, bb = next_hit(scenes, origins[pending], dirs[pending], t_from, counts(b))
        entering = h & (np.einsum("nc,nc->n", normals[b, tr], dirs[pending]) < 0)
        done = pending[entering]
        second[done], tri[done, 1], t[done, 1], bary[done, 1] = True, tr[entering], tt[entering], bb[entering]
        pending, t_from = pending[h & ~entering], tt[h & ~entering]
    return rays, second, tri, t, bary
