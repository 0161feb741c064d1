"""Rendering labelled training and test data: person crops of the avatar with exact 3D/2D joints."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np

from posegen_env.render.camera import REFERENCE_WIDTH, CameraParams, person_crop_box


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

    def __len__(self) -> int:
        return len(self.images)

    def select(self, index) -> PoseBatch:
        """The samples at ``index`` (indices, a boolean mask or a slice), as a new batch."""
        return PoseBatch(*(getattr(self, f.name)[index] for f in fields(PoseBatch)))

    @staticmethod
    def concat(parts: list[PoseBatch]) -> PoseBatch:
        return PoseBatch(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(PoseBatch)))


def render_crops(avatar, poses: dict, cameras: CameraParams, crop_size: int = 64, crop_scale: float = 1.25,
                 jitter: float = 0.05, background="random",
                 rng: np.random.Generator | Sequence[np.random.Generator] | None = None,
                 batch: int = 64, progress=None) -> PoseBatch:
    """Render every (pose, camera) pair as a person-centred crop.

    ``poses`` has global_orient (N,3), body_pose (N,69), betas (N,K). The camera orbits the
    body's pelvis; the crop is the square around the projected joints (enlarged by
    ``crop_scale``, randomly shifted and scaled by up to ``jitter``) and is rendered directly.
    ``background``: an RGB triple, or "random" for a random plain colour per crop.
    ``rng`` draws the jitter and colours: one Generator for all, or one per sample, which makes
    each crop independent of the batch it is rendered in (as a vector environment needs).
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
        raise ValueError(f'background must be an RGB triple in 0-255 or "random", got {background!r}')
    parts = []
    for start in range(0, n, batch):
        idx = np.arange(start, min(start + batch, n))
        go, bp, betas = (np.asarray(poses[k][idx], np.float32) for k in ("global_orient", "body_pose", "betas"))
        bodies = avatar.pose(go, bp, betas)
        joints = bodies.joints.cpu().double().numpy()
        crops = []
        for k, i in enumerate(idx):
            full = cameras.to_camera(int(i), target=joints[k, 0], width=REFERENCE_WIDTH)
            centre, side = person_crop_box(full.project(joints[k]), scale=crop_scale, jitter=jitter,
                                           rng=rngs[int(i)] if per_sample else shared)
            crops.append(full.crop(centre, side, crop_size))
        backgrounds = _crop_backgrounds(background, [rngs[int(i)] for i in idx] if per_sample else shared, len(idx))
        rgb = avatar.render_posed(bodies, crops, background=backgrounds).rgb.cpu().numpy()
        images = (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)
        cam_joints = np.stack([c.world_to_camera(j) for c, j in zip(crops, joints, strict=True)])
        uv = np.stack([c.project(j) for c, j in zip(crops, joints, strict=True)])
        parts.append(PoseBatch(
            images=images, joints3d=(cam_joints - cam_joints[:, :1]).astype(np.float32), joints2d=uv.astype(np.float32),
            visible=np.asarray(((uv >= -0.5) & (uv <= crop_size - 0.5)).all(axis=-1)),
            pose=np.concatenate([go, bp], axis=1), betas=betas,
            K=np.stack([c.K for c in crops]).astype(np.float32), R=np.stack([c.R for c in crops]).astype(np.float32),
            t=np.stack([c.t for c in crops]).astype(np.float32)))
        if progress is not None:
            progress.update(len(idx))
    return PoseBatch.concat(parts)


def _crop_backgrounds(background, rng: np.random.Generator | list[np.random.Generator],
                      count: int) -> np.ndarray | Sequence[float]:
    """The background of each of ``count`` crops in 0-255: ``background`` itself, or for "random" a
    colour drawn from the crop's own generator (a list, after its jitter) or from the shared one."""
    if not isinstance(background, str):
        return background
    if isinstance(rng, list):
        return np.stack([r.uniform(0.0, 255.0, size=3) for r in rng])
    return rng.uniform(0.0, 255.0, size=(count, 3))
