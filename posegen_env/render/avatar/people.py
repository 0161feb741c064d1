"""People without limit: appearances drawn from the outfit family and baked onto the shared geometry.

A fitted cast stores a colour table and MLP per subject (1.66 MB each), so a few people fill the
asset budget, and an estimator fine-tuned on eight people learns those eight. Here a person is a
pair (stream, index): a seed. It gives an ``Outfit`` (clothes, pattern, skin, hair) and a build
(betas); the outfit's procedural colour is evaluated at the nearest body surface point of every
voxel of the shipped avatar's geometry, which bakes an RGB table in about 45 ms. No fit, no file:
the space costs nothing to ship and holds as many people as there are seeds.

Streams keep the people apart by construction: ``SeedSequence(ENTROPY, spawn_key=(stream, index))``
gives independent draws per stream. Stream 0 is for training, 1 for the in-distribution guard's
validation split; the test people's stream is known only to ``posegen_env.suites.heldout_people``,
which no training code may import (an import-linter contract).

``PeopleRenderer`` is a ``CastRenderer`` whose subjects are such people: the task draws, chooses
and records them as it does a cast's subjects. Tables are baked when a person is first rendered.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import trimesh
from scipy.spatial import cKDTree

from posegen_env.body.subjects import subject_betas
from posegen_env.render.avatar.cast import CastRenderer, CastSubject
from posegen_env.render.avatar.checkpoint import DEFAULT_AVATAR_PATH, AvatarError, load_avatar
from posegen_env.render.avatar.renderer import AvatarRenderer, PosedBodies
from posegen_env.render.mesh.appearance import Outfit, ProceduralAppearance

ENTROPY = 0x5E0_9E47  # the root of every person's seed
STREAMS = {"train": 0, "validation": 1}  # the held-out stream is the test suites' own
MAX_INDEX = 2**31 - 1
DEFAULT_TRAIN_PEOPLE = 256
DEFAULT_VALIDATION_PEOPLE = 32
_SURFACE_SAMPLES = 300_000  # surface points searched for each voxel's nearest (spacing ~2.5 mm)


def person_rng(stream: int, index: int) -> np.random.Generator:
    """The generator of person ``index`` of ``stream``: independent of every other person's."""
    if not (isinstance(index, (int, np.integer)) and not isinstance(index, bool) and 0 <= index <= MAX_INDEX):
        raise AvatarError(f"a person's index must be a whole number in 0..{MAX_INDEX}, got {index!r}")
    return np.random.default_rng(np.random.SeedSequence(ENTROPY, spawn_key=(int(stream), int(index))))


def draw_person(stream: int, index: int, num_betas: int = 10) -> tuple[Outfit, np.ndarray]:
    """The outfit and build (betas, float32) of person ``index`` of ``stream``."""
    rng = person_rng(stream, index)
    return Outfit.random(rng), subject_betas(rng, num_betas)


class AppearanceBaker:
    """Bakes an outfit into a colour table over a field's voxels: each voxel takes the shaded colour
    of its nearest point on the body's canonical (mean-shape) surface, where the outfit is painted."""

    def __init__(self, body_model, field) -> None:
        self.body, self.field = body_model, field
        self._nearest: tuple[np.ndarray, np.ndarray] | None = None

    def nearest(self) -> tuple[np.ndarray, np.ndarray]:
        """Triangle (N,) and barycentrics (N, 3) of each voxel centre's nearest surface point (once)."""
        if self._nearest is None:
            f = self.field
            centres = ((f.voxels.double().cpu() + 0.5) * f.voxel_size + f.origin.double().cpu()).numpy()
            mesh = trimesh.Trimesh(self.body.rest_vertices(), self.body.faces, process=False)
            points, faces = mesh.sample(_SURFACE_SAMPLES, return_index=True, seed=0)
            _, near = cKDTree(points).query(centres)
            tri = faces[near]
            bary = trimesh.triangles.points_to_barycentric(mesh.triangles[tri], points[near])
            self._nearest = tri, np.clip(bary, 0.0, 1.0)
        return self._nearest

    def bake(self, outfit: Outfit) -> torch.Tensor:
        """The outfit's colour table: (voxels + 1, 3) uint8, the last row (empty space) its mean."""
        tri, bary = self.nearest()
        rgb = ProceduralAppearance.for_body(self.body, outfit).colour(tri, bary)
        rgb = np.concatenate([rgb, rgb.mean(axis=0, keepdims=True)])
        return torch.from_numpy(np.round(rgb * 255.0).astype(np.uint8))


class BakedColours(torch.nn.Module):
    """The colour of many people over one field's voxels: an RGB table each (uint8), baked on first
    use. Duck-types ``SubjectColours`` for the renderer: ``len`` and ``colour_at``."""

    tables: torch.Tensor  # buffer (S, rows, 3) uint8

    def __init__(self, baker: AppearanceBaker, outfits: Sequence[Outfit]) -> None:
        super().__init__()
        self.baker = baker
        self.outfits = list(outfits)
        rows = baker.field.num_voxels + 1
        self.register_buffer("tables", torch.zeros(len(self.outfits), rows, 3, dtype=torch.uint8), persistent=False)
        self.baked = np.zeros(len(self.outfits), bool)

    def __len__(self) -> int:
        return len(self.outfits)

    def extend(self, outfits: Sequence[Outfit]) -> None:
        """Add people (baked when first rendered)."""
        more = torch.zeros(len(outfits), *self.tables.shape[1:], dtype=torch.uint8, device=self.tables.device)
        self.tables = torch.cat([self.tables, more])
        self.outfits += list(outfits)
        self.baked = np.concatenate([self.baked, np.zeros(len(outfits), bool)])

    def ensure_baked(self, subjects: torch.Tensor | np.ndarray) -> None:
        """Bake the tables of ``subjects`` not baked yet."""
        todo = [int(k) for k in np.unique(np.asarray(torch.as_tensor(subjects).cpu())) if not self.baked[int(k)]]
        for k in todo:
            self.tables[k] = self.baker.bake(self.outfits[k]).to(self.tables.device)
            self.baked[k] = True

    def colour_at(self, rows: torch.Tensor, weights: torch.Tensor, subject: torch.Tensor) -> torch.Tensor:
        """Colour (P, 3) in [0, 1] of samples with field corners ``rows`` (P, 8), weights (P, 8), of
        people ``subject`` (P,): the trilinear blend of their own table's eight corners."""
        flat = self.tables.reshape(-1, 3)
        index = subject[:, None] * self.tables.shape[1] + rows.long()
        rgb = flat[index].to(weights.dtype)  # (P, 8, 3)
        return torch.einsum("pc,pcx->px", weights, rgb) / 255.0


class PeopleRenderer(CastRenderer):
    """People drawn from the outfit family on one avatar's geometry (see the module docstring):
    ``train`` training people and ``validation`` guard people, named "train-00042" and so on."""

    colours: BakedColours

    def __init__(self, geometry: AvatarRenderer, train: int = DEFAULT_TRAIN_PEOPLE,
                 validation: int = DEFAULT_VALIDATION_PEOPLE) -> None:
        for name, count in (("train", train), ("validation", validation)):
            if not (isinstance(count, (int, np.integer)) and 0 <= count <= MAX_INDEX + 1):
                raise AvatarError(f"{name} people must be a whole number >= 0, got {count!r}")
        if train < 1:
            raise AvatarError(f"need at least one training person, got train={train}")
        body = geometry.body
        people = [self._person(s, k, body.num_betas) for s, n in (("train", train), ("validation", validation))
                  for k in range(n)]
        colours = BakedColours(AppearanceBaker(body, geometry.field), [outfit for _, outfit in people])
        super().__init__(body, geometry.field, geometry.proxy, colours, [s for s, _ in people],
                         geometry.num_samples, geometry.background)
        self.caster = geometry.caster
        self.identifier = f"people-{getattr(geometry, 'identifier', 'avatar')}-t{train}-v{validation}"
        self.counts = {"train": int(train), "validation": int(validation)}

    @staticmethod
    def _person(split: str, index: int, num_betas: int, stream: int | None = None,
                heldout: bool = False) -> tuple[CastSubject, Outfit]:
        outfit, betas = draw_person(STREAMS[split] if stream is None else stream, index, num_betas)
        subject = CastSubject(f"{split}-{index:05d}", torch.from_numpy(betas), heldout=heldout,
                              outfit=outfit.as_dict(), validation=split == "validation")
        return subject, outfit

    def add_people(self, split: str, stream: int, count: int, heldout: bool) -> None:
        """Add ``count`` people of ``stream`` named ``split-NNNNN`` (the test suites add their held-out
        people this way; a second call with the same split is a no-op)."""
        if any(s.name.startswith(f"{split}-") for s in self.subjects):
            return
        if stream in STREAMS.values():
            raise AvatarError(f"stream {stream} is a training or validation stream; held-out people need their own")
        people = [self._person(split, k, self.body.num_betas, stream, heldout) for k in range(count)]
        start = len(self.subjects)
        self.subjects += [s for s, _ in people]
        self._index.update({s.name: start + k for k, (s, _) in enumerate(people)})
        betas = torch.stack([s.betas.float() for s, _ in people]).to(self.betas.device)
        self.betas = torch.cat([self.betas, torch.nn.functional.pad(betas, (0, self.betas.shape[1] - betas.shape[1]))])
        self.colours.extend([outfit for _, outfit in people])

    def _render_images(self, bodies: PosedBodies, cameras, background, grad: bool, subject: torch.Tensor | None):
        """``CastRenderer``'s, with the tables of people shown for the first time baked first."""
        if subject is not None:
            self.colours.ensure_baked(subject)
        return super()._render_images(bodies, cameras, background, grad, subject)

    def avatar(self, subject) -> AvatarRenderer:
        raise AvatarError("people are baked, not fitted: render them with the people renderer "
                          "(render(..., subjects=...)) rather than as a plain avatar")


def load_people(train: int = DEFAULT_TRAIN_PEOPLE, validation: int = DEFAULT_VALIDATION_PEOPLE,
                geometry=None, body_model=None, device=None) -> PeopleRenderer:
    """The people renderer on the geometry of ``geometry`` (an avatar file; None: the shipped avatar)."""
    avatar = load_avatar(geometry if geometry is not None else DEFAULT_AVATAR_PATH, body_model, device)
    people = PeopleRenderer(avatar, train, validation)
    return people.to(avatar.device).eval()

