"""Rendering labelled training and test data: person crops of the avatar with exact 3D/2D joints."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from posegen_env.render.backgrounds import Backgrounds
from posegen_env.render.camera import REFERENCE_WIDTH, CameraParams, person_crop_box

DEFAULT_CROP_SCALE = 1.25  # crop side over the projected joints' extent


def crop_tag(crop_size: int, crop_scale: float = DEFAULT_CROP_SCALE) -> str:
    """How cached renders name their crop geometry: "-s64", or "-s128-c1.5" for another margin."""
    return f"-s{crop_size}" + ("" if crop_scale == DEFAULT_CROP_SCALE else f"-c{crop_scale:g}")


@dataclass
class PoseBatch:
    """N labelled crops. joints3d are root-relative camera-frame metres; joints2d are crop pixels."""

    images: np.ndarray  # (N, S, S, 3) uint8
    joints3d: np.ndarray  # (N, 24, 3)
    joints2d: np.ndarray  # (N, 24, 2)
    visible: np.ndarray  # (N, 24) bool: joint projects inside the crop
    pose: np.ndarray  # (N, 72) global_orient (world) + body_pose
    betas: np.ndarray  # (N, 10)
    K: np.ndarray  # (N, 3, 3) crop camera
    R: np.ndarray  # (N, 3, 3)
    t: np.ndarray  # (N, 3)
    background: np.ndarray | None = None  # (N,) str: each crop's background record as JSON (render.backgrounds)
    subject: np.ndarray | None = None  # (N,) int: the cast subject each crop shows (a cast's renders only)

    def __len__(self) -> int:
        return len(self.images)

    def select(self, index) -> PoseBatch:
        """The samples at ``index`` (indices, a boolean mask or a slice), as a new batch."""
        values: list[Any] = [None if (v := getattr(self, f.name)) is None else v[index] for f in fields(PoseBatch)]
        return PoseBatch(*values)

    @staticmethod
    def concat(parts: list[PoseBatch]) -> PoseBatch:
        """One batch of all parts; an optional field is kept only if every part has it."""
        columns = ([getattr(p, f.name) for p in parts] for f in fields(PoseBatch))
        values: list[Any] = [None if any(v is None for v in c) else np.concatenate(c) for c in columns]
        return PoseBatch(*values)


def render_crops(avatar, poses: dict, cameras: CameraParams, crop_size: int = 64,
                 crop_scale: float = DEFAULT_CROP_SCALE,
                 jitter: float = 0.05, background="random",
                 rng: np.random.Generator | Sequence[np.random.Generator] | None = None,
                 batch: int = 64, progress=None, subjects: np.ndarray | None = None,
                 styles: Sequence[str] | None = None) -> PoseBatch:
    """Render every (pose, camera) pair as a person-centred crop.

    ``poses`` has global_orient (N,3), body_pose (N,69), betas (N,K). The camera orbits the
    body's pelvis; the crop is the square around the projected joints (enlarged by
    ``crop_scale``, randomly shifted and scaled by up to ``jitter``) and is rendered directly.
    ``background``: an RGB triple, "random" for a random plain colour per crop, or a
    ``Backgrounds`` spec (plain colours, textures, photos) drawing one per crop; the avatar is
    composited onto it once, with its alpha. Each crop's background is returned as a JSON record
    in ``PoseBatch.background``.
    ``rng`` draws the jitter and backgrounds: one Generator for all, or one per sample, which makes
    each crop independent of the batch it is rendered in (as a vector environment needs).
    ``subjects`` (N,) indices: with a cast (``CastRenderer``), crop i shows subject ``subjects[i]``
    in its colours; the body has the betas in ``poses``, so pass the subject's own for its build.
    ``styles`` (N,): each crop's background style (one of ``Backgrounds.styles``) instead of one drawn.
    """
    per_sample = isinstance(rng, (list, tuple))
    rngs: Sequence[np.random.Generator] = rng if isinstance(rng, (list, tuple)) else ()
    shared = rng if isinstance(rng, np.random.Generator) else np.random.default_rng()
    n = len(poses["body_pose"])
    if per_sample and len(rngs) != n:
        raise ValueError(f"{n} poses but {len(rngs)} random generators; pass one Generator, or one per pose")
    if len(cameras) != n:
        raise ValueError(f"{n} poses but {len(cameras)} cameras; pass one camera per pose")
    if isinstance(background, str) and background != "random":
        raise ValueError(f'background must be an RGB triple in 0-255, "random" or a Backgrounds spec, '
                         f'got {background!r}')
    if styles is not None and (not isinstance(background, Backgrounds) or len(styles) != n):
        raise ValueError(f"styles need a Backgrounds spec and one style per pose ({n}), got {len(styles)} styles "
                         f"for background {background!r}")
    if subjects is not None:
        subjects = np.asarray(subjects, np.int64)
        if subjects.shape != (n,):
            raise ValueError(f"{n} poses but subjects of shape {subjects.shape}; pass one subject index per pose")
        if not hasattr(avatar, "subject_index"):
            raise ValueError("subjects were given, but the avatar is a single person; load a cast (load_cast) to "
                             "render several subjects")
    parts = []
    for start in range(0, n, batch):
        idx = np.arange(start, min(start + batch, n))
        go, bp, betas = (np.asarray(poses[k][idx], np.float32) for k in ("global_orient", "body_pose", "betas"))
        who = {} if subjects is None else {"subjects": subjects[idx]}
        bodies = avatar.pose(go, bp, betas, **who)
        joints = bodies.joints.cpu().double().numpy()
        crops = []
        for k, i in enumerate(idx):
            full = cameras.to_camera(int(i), target=joints[k, 0], width=REFERENCE_WIDTH)
            centre, side = person_crop_box(full.project(joints[k]), scale=crop_scale, jitter=jitter,
                                           rng=rngs[int(i)] if per_sample else shared)
            crops.append(full.crop(centre, side, crop_size))
        records, colours = _crop_backgrounds(background, [rngs[int(i)] for i in idx] if per_sample else shared,
                                             len(idx), None if styles is None else [styles[int(i)] for i in idx])
        out = avatar.render_posed(bodies, crops, background=colours, **who)
        rgb = out.rgb.cpu().numpy()
        if isinstance(background, Backgrounds):
            _add_textures(rgb, out.alpha.cpu().numpy(), records, background)
        images = (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)
        cam_joints = np.stack([c.world_to_camera(j) for c, j in zip(crops, joints, strict=True)])
        uv = np.stack([c.project(j) for c, j in zip(crops, joints, strict=True)])
        parts.append(PoseBatch(
            images=images, joints3d=(cam_joints - cam_joints[:, :1]).astype(np.float32), joints2d=uv.astype(np.float32),
            visible=np.asarray(((uv >= -0.5) & (uv <= crop_size - 0.5)).all(axis=-1)),
            pose=np.concatenate([go, bp], axis=1), betas=betas,
            K=np.stack([c.K for c in crops]).astype(np.float32), R=np.stack([c.R for c in crops]).astype(np.float32),
            t=np.stack([c.t for c in crops]).astype(np.float32),
            background=np.array([json.dumps(r) for r in records], dtype=str),
            subject=None if subjects is None else subjects[idx].copy()))
        if progress is not None:
            progress.update(len(idx))
    return PoseBatch.concat(parts)


def _crop_backgrounds(background, rng: np.random.Generator | list[np.random.Generator],
                      count: int, styles: list[str] | None = None) -> tuple[list[dict], np.ndarray | Sequence[float]]:
    """Each of ``count`` crops' background record, and the colours (0-255) the avatar is rendered on:
    ``background`` itself, for "random" a colour drawn from the crop's own generator (a list, after
    its jitter) or from the shared one, and for a spec its plain colours (black under a texture,
    which ``_add_textures`` then fills in); ``styles`` fixes each spec crop's style."""
    if isinstance(background, Backgrounds):
        gens = rng if isinstance(rng, list) else [rng] * count
        records = [background.draw(r, None if styles is None else styles[k]) for k, r in enumerate(gens)]
        return records, np.array([r["colour"] if r["kind"] == "plain" else (0.0, 0.0, 0.0) for r in records])
    if not isinstance(background, str):
        return [_plain(background)] * count, background
    if isinstance(rng, list):
        colours = np.stack([r.uniform(0.0, 255.0, size=3) for r in rng])
    else:
        colours = rng.uniform(0.0, 255.0, size=(count, 3))
    return [_plain(c) for c in colours], colours


def _plain(colour) -> dict:
    return {"kind": "plain", "colour": np.asarray(colour, dtype=np.float64).tolist()}


def _add_textures(rgb: np.ndarray, alpha: np.ndarray, records: list[dict], backgrounds: Backgrounds) -> None:
    """Composite in place the crops rendered on black (colour premultiplied by opacity) onto their
    textures: + (1 - alpha) x texture."""
    for k, record in enumerate(records):
        if record["kind"] != "plain":
            rgb[k] += (1.0 - alpha[k])[..., None] * backgrounds.image(record, rgb.shape[1])
