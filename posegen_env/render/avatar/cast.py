"""A cast: several subjects who share one avatar geometry, each with their own clothes and build.

Clothes are colour painted on the body, so every subject has the same canonical density. A cast
file stores that geometry (voxels, density, ray-casting proxy) once, and per subject only what
differs: its colour table and colour MLP, its body shape (betas), whether it is held out, the
outfit it wears and how well its colour was fitted. ``CastRenderer`` renders a batch in which
each image shows its own subject, in one march.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from posegen_env.body.body_model import load_body_model
from posegen_env.files import atomic_write, listing, read_checkpoint
from posegen_env.render.avatar.checkpoint import (
    AVATAR_FORMAT,
    AvatarError,
    avatar_state,
    build_avatar,
    check_body,
    check_field,
    reading,
)
from posegen_env.render.avatar.field import CanonicalField, SubjectColours, colour_mlp
from posegen_env.render.avatar.proxy import PosedBodies, SkinnedProxy
from posegen_env.render.avatar.renderer import AvatarRender, AvatarRenderer, RaySubjects
from posegen_env.render.camera import Camera

CAST_FORMAT = "posegen-cast-v1"
DEFAULT_CAST_PATH = Path(__file__).resolve().parents[2] / "assets" / "default_cast.pt"  # train/make_cast.py
_REBUILD = "rebuild it with train/make_cast.py"
_SUBJECT_TYPES = {"name": str, "betas": torch.Tensor, "heldout": bool, "outfit": dict, "colour": torch.Tensor,
                  "mlp": dict}


@dataclass
class CastSubject:
    """Who a subject of a cast is: name, build, held-out flag, outfit, and how well its colour fits."""

    name: str
    betas: torch.Tensor  # (K,) body shape
    heldout: bool = False  # kept out of training data (test subjects)
    outfit: dict = field(default_factory=dict)  # JSON-able description of the clothes painted on
    psnr: float | None = None  # held-out-view PSNR (dB) of its colour fit
    validation: bool = False  # neither trained on nor tested: the in-distribution guard's people


class CastRenderer(AvatarRenderer):
    """Renders the subjects of a cast: image i of a batch shows subject ``subjects[i]``.

    The march is the avatar's (density is shared); only the colour lookup takes each ray's
    subject. Subjects are names or indices, one for all images or one per image; each body has
    its subject's betas unless betas are given. ``field`` holds the shared geometry with subject
    0's colour, so it is a plain field of that subject.
    """

    betas: torch.Tensor  # buffer (S, K): each subject's body shape

    def __init__(self, body_model, field: CanonicalField, proxy: SkinnedProxy, colours: SubjectColours | Any,
                 subjects: Sequence[CastSubject], num_samples: int = 12, background=(255, 255, 255)):
        super().__init__(body_model, field, proxy, num_samples, background)
        if len(subjects) != len(colours):
            raise ValueError(f"got {len(subjects)} subjects for {len(colours)} colour tables")
        self.colours = colours
        self.subjects = list(subjects)
        self._index = {s.name: k for k, s in enumerate(self.subjects)}
        if len(self._index) != len(self.subjects):
            raise AvatarError(f"subject names must be unique, got {[s.name for s in self.subjects]}")
        self.register_buffer("betas", torch.stack([_padded_betas(s, body_model.num_betas) for s in self.subjects]))

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.subjects]

    def subject_index(self, subjects, count: int | None = None) -> torch.Tensor:
        """Subject indices (long, CPU) of names or indices, given one for all images or one per image:
        ``count`` of them, or without ``count`` one per subject given. None is the only subject of a
        one-subject cast."""
        if subjects is None:
            if len(self.subjects) > 1:
                raise AvatarError(f"this cast has {len(self.subjects)} subjects ({listing(self.names)}); pass "
                                  "subjects=: one name or index for all images, or one per image")
            subjects = 0
        if isinstance(subjects, (torch.Tensor, np.ndarray)):
            subjects = subjects.tolist()
        single = isinstance(subjects, (str, int, np.integer))
        index = torch.tensor([self._index_of(s) for s in ([subjects] if single else subjects)], dtype=torch.long)
        if count is None:
            return index
        if single or len(index) == 1:
            return index.repeat(count)
        if len(index) != count:
            raise AvatarError(f"got {len(index)} subjects for {count} images; pass one subject for all images "
                              "or one per image")
        return index

    def group(self, name: str) -> np.ndarray:
        """Indices of the subjects in ``name``: "train" (neither held out nor for validation),
        "validation" (the in-distribution guard's), "heldout" (the test suites') or "all"."""
        groups = {"train": lambda s: not (s.heldout or s.validation), "validation": lambda s: s.validation,
                  "heldout": lambda s: s.heldout, "all": lambda s: True}
        if name not in groups:
            raise AvatarError(f"unknown subject group {name!r}; use 'train', 'validation', 'heldout' or 'all'")
        return np.array([k for k, s in enumerate(self.subjects) if groups[name](s)], np.int64)

    def draw(self, group: np.ndarray, rng: np.random.Generator | Sequence[np.random.Generator],
             count: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Subjects of ``group`` drawn uniformly, with their betas (N, K) as float64: one from each
        Generator of a sequence (a sample's subject then does not depend on its batch), or ``count``
        from a single Generator."""
        if isinstance(rng, np.random.Generator):
            subjects = group[rng.integers(len(group), size=count)]
        else:
            subjects = group[[int(r.integers(len(group))) for r in rng]]
        return subjects, self.betas_of(subjects)

    def betas_of(self, subjects: np.ndarray) -> np.ndarray:
        """The betas (N, K) as float64 of subject indices ``subjects`` (N,)."""
        return self.betas[torch.as_tensor(subjects)].cpu().numpy().astype(np.float64)

    def _index_of(self, subject) -> int:
        if isinstance(subject, str):
            if subject not in self._index:
                raise AvatarError(f"no subject named {subject!r} in this cast; its subjects are "
                                  f"{listing(self.names)}")
            return self._index[subject]
        if isinstance(subject, (int, np.integer)) and not isinstance(subject, bool):
            if not 0 <= subject < len(self.subjects):
                raise AvatarError(f"subject index {subject} out of range; this cast has subjects "
                                  f"0..{len(self.subjects) - 1}")
            return int(subject)
        raise AvatarError(f"a subject is a name or an index, got {subject!r}")

    def _with_betas(self, global_orient, body_pose, betas, transl, subjects) -> tuple:
        """The pose inputs with each body's betas: those given, or its subject's (a single pose is
        repeated for each of several subjects)."""
        if betas is not None:
            return global_orient, body_pose, betas, transl
        global_orient, body_pose, _, transl = self.body.prepare_inputs(global_orient, body_pose, None, transl)
        index, count = self.subject_index(subjects), body_pose.shape[0]
        if len(index) == 1:
            index = index.repeat(count)
        elif count == 1:
            global_orient, body_pose, transl = (t.expand(len(index), -1) for t in (global_orient, body_pose, transl))
        elif len(index) != count:
            raise AvatarError(f"got {len(index)} subjects for {count} poses; pass one subject for all poses or "
                              "one per pose")
        return global_orient, body_pose, self.betas[index.to(self.betas.device)], transl

    @torch.no_grad()
    def pose(self, global_orient, body_pose, betas=None, transl=None, subjects=None) -> PosedBodies:
        """``AvatarRenderer.pose``, each body with its subject's betas unless ``betas`` are given."""
        return super().pose(*self._with_betas(global_orient, body_pose, betas, transl, subjects))

    @torch.no_grad()
    def posed_joints(self, global_orient, body_pose, betas=None, transl=None, subjects=None) -> torch.Tensor:
        """``AvatarRenderer.posed_joints``, each body with its subject's betas unless ``betas`` are given."""
        return super().posed_joints(*self._with_betas(global_orient, body_pose, betas, transl, subjects))

    def render(self, global_orient, body_pose, betas=None, cameras: Sequence[Camera] = (), transl=None,
               background=None, grad: bool = False, subjects=None) -> AvatarRender:
        """``AvatarRenderer.render``, image i showing subject ``subjects[i]`` (or one subject for all)."""
        bodies = self.pose(global_orient, body_pose, betas, transl, subjects)
        return self.render_posed(bodies, cameras, background, grad, subjects)

    def render_posed(self, bodies: PosedBodies, cameras: Sequence[Camera] = (), background=None,
                     grad: bool = False, subjects=None) -> AvatarRender:
        """``AvatarRenderer.render_posed``, image i in the colour of subject ``subjects[i]``; the bodies
        keep the betas they were posed with (``pose(..., subjects=...)`` gives each its subject's)."""
        batch, _ = self._pair(len(bodies), cameras)
        return self._render_images(bodies, batch, background, grad, self.subject_index(subjects, len(batch)))

    def _ray_subjects(self, index: torch.Tensor) -> RaySubjects:
        return RaySubjects(self.colours, index)

    def avatar(self, subject) -> AvatarRenderer:
        """One subject (name or index) as a plain avatar on the shared geometry, e.g. to refit its colour;
        render it with ``betas=cast.betas[k]`` for its build."""
        k = self._index_of(subject)
        state = avatar_state(self)
        state["field"]["colour"] = self.colours.tables[k].half().cpu()
        state["field"]["mlp"] = {n: v.cpu() for n, v in self.colours.mlps[k].state_dict().items()}
        avatar = build_avatar(state, self.body, self.device)
        avatar.identifier = f"{getattr(self, 'identifier', 'cast')}-{self.subjects[k].name}"
        return avatar


def _padded_betas(subject: CastSubject, num_betas: int) -> torch.Tensor:
    betas = torch.as_tensor(subject.betas, dtype=torch.float32).reshape(-1)
    if len(betas) > num_betas:
        raise AvatarError(f"subject {subject.name!r} has {len(betas)} betas; the body model takes at most {num_betas}")
    return torch.nn.functional.pad(betas, (0, num_betas - len(betas)))


# --------------------------------------------------------------------------------------------------
# Writing


_GEOMETRY_KEYS = ("voxels", "origin", "dims", "voxel_size", "density")


def cast_state(avatars: Sequence[AvatarRenderer], subjects: Sequence[CastSubject], meta: dict | None = None) -> dict:
    """A cast file's contents: subject k's colour from ``avatars[k]``, the geometry they all share once."""
    if not avatars or len(avatars) != len(subjects):
        raise ValueError(f"need one avatar per subject, got {len(avatars)} avatars for {len(subjects)} subjects")
    names = [s.name for s in subjects]
    if len(set(names)) != len(names):
        raise AvatarError(f"subject names must be unique, got {names}")
    states = [avatar_state(a) for a in avatars]
    for subject, state in zip(subjects[1:], states[1:], strict=True):
        _check_same_geometry(states[0], state, subjects[0].name, subject.name)
    first = states[0]
    geometry = {"field": {k: first["field"][k] for k in _GEOMETRY_KEYS}, "proxy": first["proxy"],
                "num_samples": first["num_samples"], "background": first["background"]}
    return {"format": CAST_FORMAT, "body_identifier": first["body_identifier"], "geometry": geometry,
            "subjects": [_subject_entry(s, st) for s, st in zip(subjects, states, strict=True)], "meta": meta or {}}


def _check_same_geometry(first: dict, other: dict, first_name: str, name: str) -> None:
    """Refuse a subject whose geometry is not the first subject's: a cast shares one."""
    pairs = {"body": (first["body_identifier"], other["body_identifier"]),
             "samples per band": (first["num_samples"], other["num_samples"])}
    pairs |= {k: (first["field"][k], other["field"][k]) for k in _GEOMETRY_KEYS}
    pairs |= {f"proxy {k}": (v, other["proxy"][k]) for k, v in first["proxy"].items()}
    differ = [k for k, (a, b) in pairs.items()
              if not (torch.equal(a, b) if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) else a == b)]
    if differ:
        raise AvatarError(f"subject {name!r} does not share the geometry of subject {first_name!r} (different "
                          f"{', '.join(differ)}); fit its colour on the shared geometry (train/fit_avatar.py "
                          "--geometry)")


def _subject_entry(subject: CastSubject, state: dict) -> dict:
    try:
        json.dumps(subject.outfit)
    except (TypeError, ValueError) as err:
        raise AvatarError(f"subject {subject.name!r}: the outfit must be JSON-able ({err})") from None
    return {"name": subject.name, "betas": torch.as_tensor(subject.betas, dtype=torch.float32).reshape(-1).cpu(),
            "heldout": bool(subject.heldout), "outfit": subject.outfit,
            "psnr": None if subject.psnr is None else float(subject.psnr),
            "colour": state["field"]["colour"], "mlp": state["field"]["mlp"]}


def save_cast(path: str | os.PathLike, avatars: Sequence[AvatarRenderer], subjects: Sequence[CastSubject],
              meta: dict | None = None) -> None:
    """Write a cast atomically (see ``cast_state``): a crash mid-write leaves the previous file intact."""
    state = cast_state(avatars, subjects, meta)
    atomic_write(path, lambda tmp: torch.save(state, tmp))


# --------------------------------------------------------------------------------------------------
# Reading


def read_cast_file(path: str | os.PathLike) -> dict:
    return read_checkpoint(path, CAST_FORMAT, AvatarError, "Build one with train/make_cast.py")


def load_cast(path: str | os.PathLike, body_model=None, device=None) -> CastRenderer:
    """A cast file as a renderer; refuses a cast fitted on another body, or a malformed file."""
    path = Path(path)
    return cast_from_state(path, read_cast_file(path), body_model, device)


def cast_from_state(path: Path, state: dict, body_model=None, device=None) -> CastRenderer:
    """``load_cast`` for a file already read (``state``, from ``path``)."""
    body_model = body_model or load_body_model()
    with reading(path, "cast", _REBUILD):
        check_body(path, state, body_model, "rebuild the cast")
        _check_subjects(path, state, body_model.num_betas)
        for k in range(len(state["subjects"])):
            check_field(path, subject_avatar_state(state, k), _REBUILD)
        cast = build_cast(state, body_model, device)
    cast.identifier = f"{path.stem}-{hashlib.sha1(path.read_bytes()).hexdigest()[:10]}"
    return cast


def _check_subjects(path: Path, state: dict, num_betas: int) -> None:
    subjects = state["subjects"]
    if not isinstance(subjects, list) or not subjects:
        raise AvatarError(f"{path}: malformed cast file: it has no subjects; {_REBUILD}")
    rows = state["geometry"]["field"]["density"].shape[0]
    for k, s in enumerate(subjects):
        bad = [key for key, kind in _SUBJECT_TYPES.items()
               if not isinstance(s, dict) or not isinstance(s.get(key), kind)]
        if bad:
            raise AvatarError(f"{path}: malformed cast file: subject {k} has no valid {', '.join(bad)}; {_REBUILD}")
        if s["colour"].ndim != 2 or s["colour"].shape[0] != rows:
            raise AvatarError(f"{path}: malformed cast file: subject {s['name']!r}'s colour table has shape "
                              f"{tuple(s['colour'].shape)}, the geometry has {rows} rows; {_REBUILD}")
        if s["betas"].ndim != 1 or len(s["betas"]) > num_betas:
            raise AvatarError(f"{path}: malformed cast file: subject {s['name']!r} has betas of shape "
                              f"{tuple(s['betas'].shape)}, the body model takes at most {num_betas}; {_REBUILD}")


def subject_avatar_state(state: dict, k: int) -> dict:
    """Subject ``k`` of a cast file's contents as an avatar file's contents."""
    geometry, subject = state["geometry"], state["subjects"][k]
    return {"format": AVATAR_FORMAT, "body_identifier": state["body_identifier"],
            "field": geometry["field"] | {"colour": subject["colour"], "mlp": subject["mlp"]},
            "proxy": geometry["proxy"], "num_samples": geometry["num_samples"],
            "background": geometry["background"], "meta": {"cast_subject": subject["name"]}}


def build_cast(state: dict, body_model, device=None) -> CastRenderer:
    first = build_avatar(subject_avatar_state(state, 0), body_model)
    entries = state["subjects"]
    hidden, features = entries[0]["mlp"]["0.weight"].shape
    mlps = [colour_mlp(features, hidden) for _ in entries]
    for mlp, s in zip(mlps, entries, strict=True):
        mlp.load_state_dict(s["mlp"])
    colours = SubjectColours(torch.stack([s["colour"].float() for s in entries]), mlps)
    subjects = [CastSubject(s["name"], s["betas"].float(), s["heldout"], s["outfit"], s.get("psnr")) for s in entries]
    cast = CastRenderer(body_model, first.field, first.proxy, colours, subjects, first.num_samples, first.background)
    return cast.to(device or "cpu").eval()
