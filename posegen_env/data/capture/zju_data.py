"""A ZJU-MoCap capture as the fitting code sees it: :class:`ZjuCapture` reads images and masks in
place, undistorting them and compositing the images onto black as they are read, so that nothing
is converted on disk and the capture stays the one source of truth."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
from PIL import Image

from posegen_env.data.capture.data import Capture
from posegen_env.data.capture.schema import CaptureError
from posegen_env.data.capture.zju_convert import remap, undistortion_coords

ANNOTS = "annots.npy"
BACKGROUND = (0, 0, 0)  # images are composited onto black with the mask


def fail(path: Path, problem: str) -> CaptureError:
    """The error for a problem in one file of the ZJU layout, naming the file first."""
    return CaptureError(f"{path}: {problem}")


@dataclass
class ZjuCapture(Capture):
    """A ZJU-MoCap capture: images undistorted and composited onto black when read.

    ``distortion`` is zero because what ``load_image`` returns is undistorted; the file's own
    coefficients are in ``raw_distortion``.
    """

    # What fitting's messages name about the cameras: the file that holds them and the unit of T there.
    calibration_file: ClassVar[str] = ANNOTS
    t_unit: ClassVar[str] = "millimetres"
    image_files: dict[str, list[str]] = field(default_factory=dict)  # camera -> per-frame path under root
    mask_dirs: tuple[str, ...] = ()
    raw_distortion: dict[str, np.ndarray] = field(default_factory=dict)
    _coords: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _last_mask: tuple[tuple[str, int], np.ndarray] | None = field(default=None, repr=False)

    def image_path(self, cam: str, frame: int) -> Path:
        self._check(cam, frame)
        return self.root / self.image_files[cam][frame]

    def mask_path(self, cam: str, frame: int) -> Path:
        """The mask in the first mask folder; ``load_mask`` combines all of them."""
        return self.mask_paths(cam, frame)[0]

    def mask_paths(self, cam: str, frame: int) -> list[Path]:
        self._check(cam, frame)
        rel = Path(self.image_files[cam][frame]).with_suffix(".png")
        return [self.root / sub / rel for sub in self.mask_dirs]

    def _undistort(self, cam: str, data: np.ndarray) -> np.ndarray:
        D = self.raw_distortion[cam]
        if not D.any():
            return data.astype(np.float32)
        if cam not in self._coords:
            self._coords[cam] = undistortion_coords(self.cameras[cam].K, D, self.image_size)
        return remap(data, self._coords[cam])

    def load_mask(self, cam: str, frame: int) -> np.ndarray:
        """Person mask, bool (H, W): foreground where any mask folder's value is non-zero. The last one
        is kept: fitting reads an image's alpha right after its image, which composites on it."""
        if self._last_mask is not None and self._last_mask[0] == (cam, frame):
            return self._last_mask[1].copy()
        fg = np.zeros(self.image_size, dtype=bool)
        for path in self.mask_paths(cam, frame):
            fg |= _read_mask(path, self.image_size)
        mask = self._undistort(cam, fg) >= 0.5
        self._last_mask = ((cam, frame), mask)
        return mask.copy()

    def load_alpha(self, cam: str, frame: int) -> np.ndarray:
        """Person coverage, float32 (H, W): the binary mask (ZJU masks have no soft edges)."""
        return self.load_mask(cam, frame).astype(np.float32)

    def load_image(self, cam: str, frame: int) -> np.ndarray:
        """RGB uint8 (H, W, 3), undistorted, black outside the mask."""
        rgb = self._undistort(cam, _read_image(self.image_path(cam, frame), self.image_size))
        rgb = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
        rgb[~self.load_mask(cam, frame)] = BACKGROUND
        return rgb


def open_image(path: Path, kind: str) -> Image.Image:
    try:
        return Image.open(path)
    except FileNotFoundError:
        raise fail(path, f"{kind} file is missing; every image listed in {ANNOTS} needs it") from None
    except (OSError, SyntaxError) as e:
        raise fail(path, f"cannot be read as an image ({e}); re-export it") from None


def _decode(path: Path, kind: str, size_hw: tuple[int, int], mode: str | None) -> np.ndarray:
    with open_image(path, kind) as im:
        return _pixels(path, im, kind, size_hw, mode)


def _pixels(path: Path, im: Image.Image, kind: str, size_hw: tuple[int, int], mode: str | None) -> np.ndarray:
    """The pixels of the open image ``im`` (from ``path``), in ``mode``, checked for the capture's size."""
    if im.size != (size_hw[1], size_hw[0]):
        raise fail(path, f"{kind} is {im.size[0]}x{im.size[1]} (W x H) but the capture's images are "
                          f"{size_hw[1]}x{size_hw[0]}; all images and masks must share one size")
    try:
        return np.asarray(im.convert(mode) if mode and im.mode != mode else im)
    except OSError as e:
        raise fail(path, f"{kind} file is corrupt ({e}); re-export it") from None


def _read_image(path: Path, size_hw: tuple[int, int]) -> np.ndarray:
    return _decode(path, "image", size_hw, "RGB")


def _read_mask(path: Path, size_hw: tuple[int, int]) -> np.ndarray:
    """Non-zero is the person, whatever the values (0/1, 0/255, part labels, palette indices)."""
    with open_image(path, "mask") as im:
        values = _pixels(path, im, "mask", size_hw, None if im.mode in ("1", "L", "P", "I", "I;16") else "RGB")
    return (values != 0).any(axis=-1) if values.ndim == 3 else values != 0

