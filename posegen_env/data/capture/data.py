"""What a capture holds once loaded: :class:`Capture`, with cameras, SMPL parameters and splits in
memory and images and masks read on demand, so that opening a capture costs little."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from posegen_env.data.capture.schema import MASK_THRESHOLD, SMPL_KEYS, capture_png, frame_file
from posegen_env.files import listing, read_png
from posegen_env.render.camera import Camera


@dataclass
class Capture:
    """A loaded, validated capture; images and masks are read on demand."""

    root: Path
    cameras: dict[str, Camera]  # in capture.json order
    smpl: dict[str, np.ndarray]  # SMPL_KEYS -> (N, D) float32
    splits: dict[str, list]
    background: tuple[int, int, int]
    image_size: tuple[int, int]  # (H, W)
    body_model: str = ""
    distortion: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (5,) OpenCV k1 k2 p1 p2 k3
    meta: dict = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return len(self.smpl["global_orient"])

    @property
    def camera_names(self) -> list[str]:
        return list(self.cameras)

    def _check(self, cam: str, frame: int) -> None:
        if cam not in self.cameras:
            raise KeyError(f"unknown camera {cam!r}; this capture has {listing(self.camera_names)}")
        if not 0 <= frame < self.num_frames:
            raise IndexError(f"frame {frame} out of range; this capture has frames 0..{self.num_frames - 1}")

    def image_path(self, cam: str, frame: int) -> Path:
        self._check(cam, frame)
        return self.root / "images" / cam / frame_file(frame)

    def mask_path(self, cam: str, frame: int) -> Path:
        self._check(cam, frame)
        return self.root / "masks" / cam / frame_file(frame)

    def load_image(self, cam: str, frame: int) -> np.ndarray:
        """RGB image, uint8 (H, W, 3)."""
        return read_png(self.image_path(cam, frame), capture_png("image", self.image_size))

    def load_mask(self, cam: str, frame: int) -> np.ndarray:
        """Person mask, bool (H, W)."""
        return self._read_mask(cam, frame) >= MASK_THRESHOLD

    def load_alpha(self, cam: str, frame: int) -> np.ndarray:
        """Soft person coverage, float32 (H, W) in [0, 1] (masks may have anti-aliased edges)."""
        return self._read_mask(cam, frame).astype(np.float32) / 255.0

    def _read_mask(self, cam: str, frame: int) -> np.ndarray:
        return read_png(self.mask_path(cam, frame), capture_png("mask", self.image_size), "L")

    def frame_params(self, frame: int) -> dict[str, np.ndarray]:
        """SMPL parameters of one frame: global_orient (3,), body_pose (69,), betas (B,), transl (3,)."""
        if not 0 <= frame < self.num_frames:
            raise IndexError(f"frame {frame} out of range; this capture has frames 0..{self.num_frames - 1}")
        return {k: self.smpl[k][frame].copy() for k in SMPL_KEYS}

    def fingerprint(self) -> str:
        """A short hash of everything a fit reads except the pixels (cameras, distortion, splits, SMPL
        parameters, sizes, meta), so that a checkpoint can tell this capture from another one; images are
        not read, to keep it cheap."""
        doc = {"cameras": {n: [c.K.tolist(), c.R.tolist(), c.t.tolist()] for n, c in self.cameras.items()},
               "distortion": {n: np.asarray(d).tolist() for n, d in self.distortion.items()},
               "splits": self.splits, "background": self.background, "image_size": self.image_size,
               "body_model": self.body_model, "meta": self.meta}
        digest = hashlib.sha1(json.dumps(doc, sort_keys=True, default=str).encode())
        for key in SMPL_KEYS:
            digest.update(np.ascontiguousarray(self.smpl[key]).tobytes())
        return digest.hexdigest()[:16]
