"""The avatar's canonical radiance field: a sparse voxel grid around the T-posed body + a tiny MLP.

Only voxels within ``shell`` metres of the canonical body surface exist (a person is a thin
shell in a mostly empty box), so the field stays small and a lookup is eight gathers. Each
voxel holds a density logit and a small colour feature; the MLP decodes colour. Space outside
the shell has zero density, which is what makes rendering cheap. ``SubjectColours`` holds the
colour of several subjects (a cast) over one field's density.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
import trimesh
from scipy.spatial import cKDTree

_EMPTY_LOGIT = -12.0  # density logit of space without voxels: exp(-12) ~ 0
_CORNERS = torch.tensor([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], dtype=torch.long)


def shell_voxels(rest_vertices: np.ndarray, faces: np.ndarray, voxel: float,
                 shell: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


def colour_mlp(features: int, hidden: int) -> torch.nn.Sequential:
    """The tiny MLP that decodes a colour feature into RGB logits."""
    return torch.nn.Sequential(torch.nn.Linear(features, hidden), torch.nn.ReLU(inplace=True),
                               torch.nn.Linear(hidden, 3))


class CanonicalField(torch.nn.Module):
    """Density and colour at canonical points, from a sparse voxel grid and a colour MLP."""

    # buffers, registered in __init__
    voxels: torch.Tensor
    origin: torch.Tensor
    dims: torch.Tensor
    cell: torch.Tensor
    cell_rows: torch.Tensor
    upper: torch.Tensor

    def __init__(self, voxels: np.ndarray, origin: np.ndarray, dims, voxel_size: float,
                 features: int = 8, hidden: int = 32, init_logit: float = 0.0):
        super().__init__()
        self.voxel_size = float(voxel_size)
        self.register_buffer("voxels", torch.as_tensor(voxels, dtype=torch.int32))
        self.register_buffer("origin", torch.as_tensor(origin, dtype=torch.float32))
        self.register_buffer("dims", torch.as_tensor(np.asarray(dims), dtype=torch.long))
        n = len(voxels)
        # Flat row index per voxel of a grid padded by one empty voxel on every side, so the eight
        # corners of any clamped point are valid cells; row n is the empty row.
        padded = [int(d) + 2 for d in dims]
        grid = torch.full(padded, n, dtype=torch.int32)
        v = torch.as_tensor(voxels, dtype=torch.long) + 1
        grid[v[:, 0], v[:, 1], v[:, 2]] = torch.arange(n, dtype=torch.int32)
        index = grid.reshape(-1)
        strides = torch.tensor([padded[1] * padded[2], padded[2], 1])
        corner_offsets = _CORNERS @ strides
        # A point's cell is the grid position of its lowest corner. Only cells next to a voxel get a
        # row (C, 8) of their eight corners' rows; every other cell shares the last, empty one.
        cells = torch.unique(((v @ strides)[:, None] - corner_offsets).reshape(-1))
        cell = torch.full_like(index, len(cells))
        cell[cells] = torch.arange(len(cells), dtype=torch.int32)
        cell_rows = torch.cat([index[cells[:, None] + corner_offsets], torch.full((1, 8), n, dtype=torch.int32)])
        self.register_buffer("cell", cell, persistent=False)
        self.register_buffer("cell_rows", cell_rows, persistent=False)
        self.strides = strides.tolist()
        self.register_buffer("upper", torch.tensor(padded, dtype=torch.float32) - 1.001, persistent=False)
        # The last row of each table is empty space (fixed: it gets no gradient, see _table).
        density = torch.full((n + 1, 1), float(init_logit))
        density[n] = _EMPTY_LOGIT
        self.density = torch.nn.Parameter(density)
        self.colour = torch.nn.Parameter(torch.zeros(n + 1, features))
        self.mlp = colour_mlp(features, hidden)

    @property
    def num_voxels(self) -> int:
        return self.density.shape[0] - 1

    def corners(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows (P, 8) of the eight voxels around each canonical point (P, 3) and their trilinear weights (P, 8)."""
        return self.corners_of_coordinates(points.T)

    def corners_of_coordinates(self, coords: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``corners`` of points given coordinate-major, (3, P), which keeps every step on contiguous rows."""
        g = (coords - self.origin[:, None]) / self.voxel_size + 0.5  # +1 padding, -0.5 centre
        g = torch.minimum(g.clamp(min=0.0), self.upper[:, None])
        base = torch.floor(g)
        frac = g - base
        i, j, k = base.int()
        rows = self.cell_rows.index_select(0, self.cell.index_select(0, i * self.strides[0] + j * self.strides[1] + k))
        # Weight of corner (i, j, k) is wx[i] * wy[j] * wz[k] (corner order as in _CORNERS).
        (fx, fy, fz), (gx, gy, gz) = frac, 1 - frac
        wxy = (gx * gy, gx * fy, fx * gy, fx * fy)
        return rows, torch.stack([w * wz for w in wxy for wz in (gz, fz)], dim=1)

    def density_at(self, rows: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Density sigma (P,) in 1/m."""
        logit = F.embedding_bag(rows, self._table(self.density), per_sample_weights=weights, mode="sum")[:, 0]
        return torch.exp(torch.clamp(logit, max=15.0))

    def colour_at(self, rows: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Colour (P, 3) in [0, 1]."""
        features = F.embedding_bag(rows, self._table(self.colour), per_sample_weights=weights, mode="sum")
        return torch.sigmoid(self.mlp(features))

    def _table(self, table: torch.Tensor) -> torch.Tensor:
        """``table`` whose last (empty-space) row is fixed: it takes part in lookups but gets no gradient."""
        if not (torch.is_grad_enabled() and table.requires_grad):
            return table
        return torch.cat([table[:-1], table[-1:].detach()])

    def forward(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Density (P,) and colour (P, 3) at canonical points (P, 3)."""
        rows, weights = self.corners(points)
        return self.density_at(rows, weights), self.colour_at(rows, weights)


class SubjectColours(torch.nn.Module):
    """The colour of several subjects over one field's voxels: a colour table and colour MLP each.

    Subjects who differ only in what is painted on the body share the field's density (its
    geometry); a sample's colour is then looked up in its own subject's table and decoded by its
    subject's MLP, so one march renders images of different subjects.
    """

    tables: torch.Tensor  # buffer (S, rows, F)

    def __init__(self, tables: torch.Tensor, mlps: Sequence[torch.nn.Module]):
        super().__init__()
        if tables.ndim != 3 or len(mlps) != tables.shape[0] or not len(mlps):
            raise ValueError(f"need one colour table (rows, features) and one MLP per subject; got tables of shape "
                             f"{tuple(tables.shape)} and {len(mlps)} MLPs")
        self.register_buffer("tables", tables.detach().clone().float())
        self.mlps = torch.nn.ModuleList(mlps)

    def __len__(self) -> int:
        return len(self.mlps)

    def colour_at(self, rows: torch.Tensor, weights: torch.Tensor, subject: torch.Tensor) -> torch.Tensor:
        """Colour (P, 3) in [0, 1] of samples with field corners ``rows`` (P, 8), weights (P, 8), of
        subjects ``subject`` (P,): ``CanonicalField.colour_at`` with each sample's own subject.

        Samples sorted by subject (as the renderer passes them) are decoded as one contiguous block
        per subject; others are sorted first."""
        if len(subject) > 1 and not bool((subject[1:] >= subject[:-1]).all()):
            order = torch.argsort(subject, stable=True)
            rgb = torch.empty(len(subject), 3, device=weights.device, dtype=weights.dtype)
            rgb[order] = self.colour_at(rows[order], weights[order], subject[order])
            return rgb
        counts = torch.bincount(subject, minlength=len(self)).tolist()
        ends = np.cumsum(counts).tolist()
        blocks = [self._decode(s, rows[end - n:end], weights[end - n:end])
                  for s, (n, end) in enumerate(zip(counts, ends, strict=True)) if n]
        if not blocks:
            return weights.new_zeros(0, 3)
        return blocks[0] if len(blocks) == 1 else torch.cat(blocks)

    def _decode(self, subject: int, rows: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        features = F.embedding_bag(rows, self.tables[subject], per_sample_weights=weights, mode="sum")
        return torch.sigmoid(self.mlps[subject](features))
