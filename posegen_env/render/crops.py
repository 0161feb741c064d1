"""Rendering labelled training and test data: person crops of the avatar with exact 3D/2D joints."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import torch

from posegen_env.device import default_render_batch
from posegen_env.profiling import stage
from posegen_env.render.backgrounds import Backgrounds, as_backgrounds, background_images
from posegen_env.render.camera import REFERENCE_WIDTH, CameraParams
from posegen_env.render.cameras import crop_jitter, orbit_cameras, person_crop_boxes
from posegen_env.render.step import PoseBatch, PoseTensors

DEFAULT_CROP_SCALE = 1.25  # crop side over the projected joints' extent
_DRAW_BLOCK = 64  # crops whose random draws a shared generator makes together (see _draws)


def crop_tag(crop_size: int, crop_scale: float = DEFAULT_CROP_SCALE) -> str:
    """How cached renders name their crop geometry: "-s64", or "-s128-c1.5" for another margin."""
    return f"-s{crop_size}" + ("" if crop_scale == DEFAULT_CROP_SCALE else f"-c{crop_scale:g}")


def render_crops(avatar, poses: dict, cameras: CameraParams, crop_size: int = 64,
                 crop_scale: float = DEFAULT_CROP_SCALE,
                 jitter: float = 0.05, background="random",
                 rng: np.random.Generator | Sequence[np.random.Generator] | None = None,
                 batch: int | None = None, progress=None, subjects: np.ndarray | None = None,
                 styles: Sequence[str] | None = None) -> PoseBatch:
    """Render every (pose, camera) pair as a person-centred crop.

    ``poses`` has global_orient (N,3), body_pose (N,69), betas (N,K). The camera orbits the
    body's pelvis; the crop is the square around the projected joints (enlarged by
    ``crop_scale``, randomly shifted and scaled by up to ``jitter``) and is rendered directly.
    ``background``: a ``Backgrounds`` spec (plain colours, textures, photos) drawing one per crop,
    or what ``as_backgrounds`` turns into one ("random" plain colours, an RGB triple); the avatar is
    composited onto it once, with its alpha. Each crop's background is returned as a JSON record
    in ``PoseBatch.background``.
    ``rng`` draws the jitter and backgrounds: one Generator for all, or one per sample, which makes
    each crop independent of the batch it is rendered in (as a vector environment needs).
    ``subjects`` (N,) indices: with a cast (``CastRenderer``), crop i shows subject ``subjects[i]``
    in its colours; the body has the betas in ``poses``, so pass the subject's own for its build.
    ``styles`` (N,): each crop's background style (one of ``Backgrounds.styles``) instead of one drawn.
    ``batch`` crops are rendered at once, on the avatar's device (None: ``device.default_render_batch``).
    """
    return render_crop_tensors(avatar, poses, cameras, crop_size, crop_scale, jitter, background, rng, batch,
                               progress, subjects, styles).numpy()


def render_crop_tensors(avatar, poses: dict, cameras: CameraParams, crop_size: int = 64,
                        crop_scale: float = DEFAULT_CROP_SCALE, jitter: float = 0.05, background="random",
                        rng: np.random.Generator | Sequence[np.random.Generator] | None = None,
                        batch: int | None = None, progress=None, subjects: np.ndarray | None = None,
                        styles: Sequence[str] | None = None) -> PoseTensors:
    """``render_crops``, the crops and labels left on the avatar's device (the environment's step).

    Only the per-crop random draws (a few numbers each, from each crop's own generator) are made on
    the CPU; cameras, casting, marching, backgrounds and labels run as tensors on the device."""
    per_sample = isinstance(rng, (list, tuple))
    rngs: Sequence[np.random.Generator] = rng if isinstance(rng, (list, tuple)) else ()
    shared = rng if isinstance(rng, np.random.Generator) else np.random.default_rng()
    n = len(poses["body_pose"])
    if per_sample and len(rngs) != n:
        raise ValueError(f"{n} poses but {len(rngs)} random generators; pass one Generator, or one per pose")
    if len(cameras) != n:
        raise ValueError(f"{n} poses but {len(cameras)} cameras; pass one camera per pose")
    background = as_backgrounds(background)
    if styles is not None and len(styles) != n:
        raise ValueError(f"styles need one style per pose ({n}), got {len(styles)}")
    if subjects is not None:
        subjects = np.asarray(subjects, np.int64)
        if subjects.shape != (n,):
            raise ValueError(f"{n} poses but subjects of shape {subjects.shape}; pass one subject index per pose")
        if not hasattr(avatar, "subject_index"):
            raise ValueError("subjects were given, but the avatar is a single person; load a cast (load_cast) to "
                             "render several subjects")
    with stage("draws"):
        shifts, records, colours = _draws(background, rngs if per_sample else shared, n, jitter, styles)
    device_of = getattr(avatar, "device", torch.device("cpu"))
    batch = default_render_batch(device_of) if batch is None else batch
    parts = []
    for start in range(0, n, batch):
        idx = np.arange(start, min(start + batch, n))
        parts.append(_render_part(avatar, poses, cameras, idx, crop_size, crop_scale, shifts[idx], background,
                                  records[start:start + len(idx)], colours[idx],
                                  None if subjects is None else subjects[idx]))
        if progress is not None:
            progress.update(len(idx))
    return PoseTensors.concat(parts)


def _draws(background: Backgrounds, rng: np.random.Generator | Sequence[np.random.Generator], n: int, jitter: float,
           styles: Sequence[str] | None) -> tuple[np.ndarray, list[dict], np.ndarray]:
    """Every crop's jitter (N, 3), background record and render colour (N, 3), drawn on the CPU before
    any rendering.

    Each crop's own generator draws its jitter, then its background. One shared generator draws
    them in blocks of ``_DRAW_BLOCK`` crops (the jitter of a block, then its backgrounds), whatever
    the render batch, so cached renders do not depend on the device that made them."""
    if isinstance(rng, np.random.Generator):
        blocks = [np.arange(s, min(s + _DRAW_BLOCK, n)) for s in range(0, n, _DRAW_BLOCK)]
        gens_of = lambda idx: [rng] * len(idx)  # noqa: E731
    else:
        blocks = [np.arange(n)]
        gens_of = lambda idx: [rng[int(i)] for i in idx]  # noqa: E731
    shifts, records, colours = [np.zeros((0, 3))], [], []
    for idx in blocks:
        gens = gens_of(idx)
        shifts.append(crop_jitter(gens, jitter))
        r, c = _crop_backgrounds(background, gens, None if styles is None else [styles[int(i)] for i in idx])
        records += r
        colours.append(c)
    return np.concatenate(shifts), records, np.concatenate([np.zeros((0, 3)), *colours])


def _render_part(avatar, poses: dict, cameras: CameraParams, idx: np.ndarray, crop_size: int, crop_scale: float,
                 shifts: np.ndarray, background: Backgrounds, records: list[dict], colours,
                 subjects: np.ndarray | None) -> PoseTensors:
    """Crops ``idx`` of a batch, with their jitter and backgrounds already drawn."""
    go, bp, betas = (np.asarray(poses[k][idx], np.float32) for k in ("global_orient", "body_pose", "betas"))
    who = {} if subjects is None else {"subjects": subjects}
    with stage("pose"):
        bodies = avatar.pose(go, bp, betas, **who)
    device = bodies.joints.device
    joints = bodies.joints.double()
    with stage("cameras"):
        full = orbit_cameras(cameras[idx], joints[:, 0], REFERENCE_WIDTH)
        centre, side = person_crop_boxes(full.project(joints), crop_scale, torch.as_tensor(shifts, device=device))
        crops = full.crop(centre, side, crop_size)
    out = avatar.render_posed(bodies, crops, background=colours, **who)
    rgb = out.rgb
    textured = [k for k, r in enumerate(records) if r["kind"] != "plain"]
    if textured:  # rendered on black: + (1 - alpha) x texture
        with stage("backgrounds"):
            rows = torch.as_tensor(textured, device=device)
            images = background_images([records[k] for k in textured], crop_size, device, background)
            rgb = rgb.index_add(0, rows, (1.0 - out.alpha[rows])[..., None] * images)
    with stage("labels"):
        cam_joints = crops.world_to_camera(joints)
        uv = crops.project(joints)
        return PoseTensors(
            images=(rgb.clamp(0, 1) * 255 + 0.5).to(torch.uint8),
            joints3d=(cam_joints - cam_joints[:, :1]).float(), joints2d=uv.float(),
            visible=((uv >= -0.5) & (uv <= crop_size - 0.5)).all(dim=-1),
            pose=torch.as_tensor(np.concatenate([go, bp], axis=1), device=device),
            betas=torch.as_tensor(betas, device=device),
            K=crops.K.float(), R=crops.R.float(), t=crops.t.float(),
            background=np.array([json.dumps(r) for r in records], dtype=str),
            subject=None if subjects is None else torch.as_tensor(subjects, device=device))


def _crop_backgrounds(background: Backgrounds, gens: list[np.random.Generator],
                      styles: list[str] | None = None) -> tuple[list[dict], np.ndarray]:
    """Each crop's background record, drawn from its generator in ``gens`` (the crop's own, after its
    jitter, or the shared one), and the colours (N, 3) in 0-255 the avatar is rendered on: a plain
    crop's colour, black under a texture or photo (which ``_render_part`` then fills in); ``styles``
    fixes each crop's style."""
    records = [background.draw(r, None if styles is None else styles[k]) for k, r in enumerate(gens)]
    return records, np.array([r["colour"] if r["kind"] == "plain" else (0.0, 0.0, 0.0) for r in records],
                             dtype=np.float64).reshape(len(gens), 3)
