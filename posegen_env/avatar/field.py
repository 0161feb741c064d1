"""The avatar's canonical radiance field: a sparse voxel grid around the T-posed body + a tiny MLP.

Only voxels within ``shell`` metres of the canonical body surface exist (a person is a thin
shell in a mostly empty box), so the field is a few MB and a lookup is eight gathers. Each
voxel holds a density logit and a small colour feature; the MLP decodes colour. Space outside
the shell has zero density, which is what makes rendering cheap.
"""

from __future__ import annotations

import numpy as np
import torch
import trimesh
from scipy.spatial import cKDTree

_EMPTY_LOGIT = -12.0  # density logit of space without voxels: exp(-12) ~ 0
_CORNERS = torch.tensor([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], dtype=torch.long)


def shell_voxels(rest_vertices: np.ndarray, faces: np.ndarray, voxel: float, shell: float):
    """Integer coordinates (N, 3) of voxels within ``shell`` of the surface, and the grid origin."""
    mesh = trimesh.Trimesh(rest_vertices, faces, process=False)
    points = np.concatenate([mesh.sample(200_000, seed=0), rest_vertices])
    lo = rest_vertices.min(axis=0) - shell - 2 * voxel
    hi = rest_vertices.max(axis=0) + shell + 2 * voxel
    dims = np.ceil((hi - lo) / voxel).astype(int)
    axes = [lo[i] + voxel * (np.arange(dims[i]) + 0.5) for i in range(3)]
    centres = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    dist, _ = cKDTree(points).query(centres, distance_upper_bound=shell + voxel)
    keep = np.flatnonzero(dist <= shell)
    return np.stack(np.unravel_index(keep, dims), axis=1).astype(np.int32), lo, dims


class CanonicalField(torch.nn.Module):
    """Density and colour at canonical points, from a sparse voxel grid and a colour MLP."""

    def __init__(self, voxels: np.ndarray, origin: np.ndarray, dims, voxel_size: float,
                 features: int = 8, hidden: int = 32, init_logit: float = 0.0):
        super().__init__()
        self.voxel_size = float(voxel_size)
        self.register_buffer("voxels", torch.as_tensor(voxels, dtype=torch.int32))
        self.register_buffer("origin", torch.as_tensor(origin, dtype=torch.float32))
        self.register_buffer("dims", torch.as_tensor(np.asarray(dims), dtype=torch.long))
        n = len(voxels)
        grid = torch.full(tuple(int(d) for d in dims), n, dtype=torch.int32)  # n = the empty row
        grid[tuple(torch.as_tensor(voxels, dtype=torch.long).T)] = torch.arange(n, dtype=torch.int32)
        self.register_buffer("index", grid, persistent=False)
        self.density = torch.nn.Parameter(torch.full((n, 1), float(init_logit)))
        self.colour = torch.nn.Parameter(torch.zeros(n, features))
        self.mlp = torch.nn.Sequential(torch.nn.Linear(features, hidden), torch.nn.ReLU(),
                                       torch.nn.Linear(hidden, 3))

    @property
    def num_voxels(self) -> int:
        return self.density.shape[0]

    def _gather(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Trilinear interpolation of (density logit, colour features) at (P, 3) canonical points."""
        g = (points - self.origin) / self.voxel_size - 0.5
        base = torch.floor(g)
        frac = g - base
        corner = base.long()[:, None, :] + _CORNERS.to(points.device)  # (P, 8, 3)
        inside = ((corner >= 0) & (corner < self.dims)).all(dim=-1)
        corner = torch.where(inside[..., None], corner, torch.zeros_like(corner))
        rows = self.index[corner[..., 0], corner[..., 1], corner[..., 2]].long()
        rows = torch.where(inside, rows, torch.full_like(rows, self.num_voxels))
        cw = torch.where(_CORNERS.to(points.device)[None].bool(), frac[:, None, :], 1 - frac[:, None, :]).prod(-1)
        empty_logit = self.density.new_full((1, 1), _EMPTY_LOGIT)
        density = torch.cat([self.density, empty_logit])[rows][..., 0]  # (P, 8)
        colour = torch.cat([self.colour, self.colour.new_zeros(1, self.colour.shape[1])])[rows]  # (P, 8, C)
        return (cw * density).sum(-1), (cw[..., None] * colour).sum(1)

    def forward(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Density sigma (P,) in 1/m and colour (P, 3) in [0, 1]."""
        logit, feat = self._gather(points)
        sigma = torch.exp(torch.clamp(logit, max=15.0))
        return sigma, torch.sigmoid(self.mlp(feat))
