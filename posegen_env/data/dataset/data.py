"""What a dataset holds once loaded: :class:`PoseDataset` (arrays checked, images read on demand)
and :class:`PoseData` (crops and targets in memory, as training takes them)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from posegen_env.data.dataset.schema import crop_png
from posegen_env.files import read_png
from posegen_env.render.camera import Camera
from posegen_env.render.step import PoseBatch


@dataclass
class PoseData:
    """Training crops: uint8 images (N, S, S, 3) and the targets, root-relative camera-frame joints
    (N, J, 3) in metres in the estimator's joint set (SMPL's 24 unless converted); ``labels`` keeps
    every label the crops were rendered with (for a custom loss)."""

    images: np.ndarray
    joints3d: np.ndarray
    labels: PoseBatch | None = None

    def __post_init__(self):
        if len(self.images) != len(self.joints3d) or (self.labels is not None and len(self.labels) != len(self.images)):
            raise ValueError(f"{len(self.images)} images but {len(self.joints3d)} joint sets"
                             + ("" if self.labels is None else f" and {len(self.labels)} labels"))

    def __len__(self) -> int:
        return len(self.images)

    def select(self, index) -> PoseData:
        return PoseData(self.images[index], self.joints3d[index],
                        None if self.labels is None else self.labels.select(index))


@dataclass
class PoseDataset:
    """A loaded, validated dataset; images are read on demand."""

    root: Path
    arrays: dict[str, np.ndarray]  # REQUIRED_KEYS -> arrays with N rows (float32, has_smpl uint8, imgname str)
    image_size: int  # side of the square crops, pixels
    extras: dict[str, np.ndarray] = field(default_factory=dict)  # name without "extra_" -> (N,) or (N, D)
    meta: dict = field(default_factory=dict)
    created_by: str = ""
    background: np.ndarray | None = None  # (N,) str: background records as JSON, "" if unknown; None if not stored

    def __len__(self) -> int:
        return len(self.arrays["imgname"])

    @property
    def joints2d(self) -> np.ndarray:
        """(N, 24, 2) joints in crop pixels (``part[..., :2]``)."""
        return self.arrays["part"][..., :2]

    @property
    def visibility(self) -> np.ndarray:
        """(N, 24) 1 for a visible joint inside the crop, else 0 (``part[..., 2]``)."""
        return self.arrays["part"][..., 2]

    @property
    def joints3d(self) -> np.ndarray:
        """(N, 24, 3) root-relative joints in camera coordinates, metres (``S[..., :3]``)."""
        return self.arrays["S"][..., :3]

    def _index(self, i) -> int:
        if not isinstance(i, int | np.integer) or isinstance(i, bool):
            raise TypeError(f"sample index must be an integer; got {i!r}")
        if not 0 <= i < len(self):
            raise IndexError(f"sample {i} out of range; this dataset has samples 0..{len(self) - 1}")
        return int(i)

    def background_record(self, i: int) -> dict | None:
        """The background record of sample ``i``, from which render.backgrounds makes its image again;
        None where it is unknown or the dataset stores none."""
        i = self._index(i)
        if self.background is None or not self.background[i]:
            return None
        return json.loads(str(self.background[i]))

    def camera(self, i: int) -> Camera:
        """The crop camera of sample ``i``."""
        i = self._index(i)
        a = self.arrays
        return Camera(a["cam_K"][i], a["cam_R"][i], a["cam_t"][i], self.image_size, self.image_size)

    def image_path(self, i: int) -> Path:
        return self.root / str(self.arrays["imgname"][self._index(i)])

    def load_image(self, i: int) -> np.ndarray:
        """RGB crop of sample ``i``, uint8 (H, W, 3)."""
        return read_png(self.image_path(i), crop_png(self.image_size))

    def load_images(self, indices: Iterable[int]) -> np.ndarray:
        """RGB crops of the given samples, uint8 (n, H, W, 3)."""
        out = [self.load_image(i) for i in np.asarray(list(indices), dtype=np.int64).reshape(-1).tolist()]
        if not out:
            return np.zeros((0, self.image_size, self.image_size, 3), np.uint8)
        return np.stack(out)

    def to_batch(self) -> PoseBatch:
        """Every sample with its images, as the renderer returns them."""
        a = self.arrays
        subject = self.extras.get("subject")
        return PoseBatch(images=self.load_images(range(len(self))), joints3d=self.joints3d.astype(np.float32),
                         joints2d=self.joints2d.astype(np.float32), visible=self.visibility > 0,
                         pose=a["pose"].astype(np.float32), betas=a["shape"].astype(np.float32),
                         K=a["cam_K"].astype(np.float32), R=a["cam_R"].astype(np.float32),
                         t=a["cam_t"].astype(np.float32), background=self.background,
                         subject=None if subject is None else subject.astype(np.int64))
