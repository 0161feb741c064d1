"""The capture format's schema: names, and the checks of cameras, sizes and splits that the loader,
the writer and the ZJU-MoCap reader share, so that every way in refuses the same bad data with the
same words. docs/capture_format.md describes the layout in prose."""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np

from posegen_env.body.joints import NUM_BODY_JOINTS
from posegen_env.files import PngRules, listing

FORMAT = "posegen-capture"
VERSION = 1
CAPTURE_JSON = "capture.json"
SMPL_NPZ = "smpl_params.npz"
SMPL_KEYS = ("global_orient", "body_pose", "betas", "transl")
SMPL_DIMS = {"global_orient": 3, "body_pose": NUM_BODY_JOINTS * 3, "betas": None, "transl": 3}
SPLIT_KEYS = ("train_cameras", "test_cameras", "train_frames", "test_frames")
REQUIRED_KEYS = ("format", "version", "image_size", "background", "body_model", "num_frames", "cameras",
                 "splits")
ROTATION_TOL = 1e-3
MASK_THRESHOLD = 128  # mask pixels >= this are the person; soft (anti-aliased) edges are allowed
NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


class CaptureError(ValueError):
    """A capture (or the data given to the writer) breaks the format; the message says where and how."""


def frame_file(frame: int) -> str:
    """File name of a frame's image and mask: the index zero-padded to 6 digits."""
    return f"{frame:06d}.png"


def capture_png(kind: str, image_size: tuple[int, int]) -> PngRules:
    """What every image ("image": RGB) and mask ("mask": greyscale) must be: a PNG of the declared size."""
    height, width = image_size
    return PngRules(CaptureError, kind, ("RGB",) if kind == "image" else ("L", "1"), (width, height),
                    "every (camera, frame) pair needs an image and a mask",
                    f"capture.json declares image_size [H, W] = [{height}, {width}]; all images and masks must "
                    "have the declared size")


def check_camera_name(name, where: str) -> str:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise CaptureError(f"{where}: camera name {name!r} is not a valid folder name; use letters, digits, "
                           "'_', '-' and '.', not starting with '.' or '-' (e.g. 'cam_00')")
    return name


def check_camera(name: str, K: np.ndarray, R: np.ndarray, T: np.ndarray, where: str) -> None:
    """Intrinsics must be a pinhole K with positive focal; R a proper rotation (world-to-camera)."""
    for key, arr in (("K", K), ("R", R), ("T", T)):
        if not np.isfinite(arr).all():
            raise CaptureError(f"{where}: camera '{name}' {key} is not finite (contains NaN or inf): "
                               f"{arr.tolist()}; fix the calibration")
    if not (K[0, 0] > 0 and K[1, 1] > 0):
        raise CaptureError(f"{where}: camera '{name}' K has non-positive focal length (fx = {K[0, 0]}, "
                           f"fy = {K[1, 1]}); focal lengths are in pixels and must be > 0")
    if np.abs(K[2] - (0.0, 0.0, 1.0)).max() > 1e-6:
        raise CaptureError(f"{where}: camera '{name}' K has last row {K[2].tolist()}, expected [0, 0, 1]; "
                           "K must be a pinhole intrinsics matrix (divide K by K[2][2] if it is scaled)")
    err = float(np.abs(R @ R.T - np.eye(3)).max())
    if err > ROTATION_TOL:
        raise CaptureError(f"{where}: camera '{name}' R is not orthonormal (|R R^T - I| = {err:.3g}); "
                           "R must be a rotation matrix, world-to-camera, OpenCV convention")
    det = float(np.linalg.det(R))
    if det < 0:
        raise CaptureError(f"{where}: camera '{name}' R has determinant {det:.3g}, a reflection; R must be a "
                           "proper rotation (det +1): negate one axis consistently or fix the calibration")


def check_image_size(image_size, where: str) -> tuple[int, int]:
    ok = (isinstance(image_size, list | tuple) and len(image_size) == 2
          and all(isinstance(v, int | np.integer) and not isinstance(v, bool) and v > 0 for v in image_size))
    if not ok:
        raise CaptureError(f"{where}: image_size must be [H, W], two positive integers; got {image_size!r}")
    return int(image_size[0]), int(image_size[1])


def check_background(background, where: str) -> tuple[int, int, int]:
    ok = (isinstance(background, list | tuple) and len(background) == 3
          and all(isinstance(v, int | np.integer) and not isinstance(v, bool) and 0 <= v <= 255
                  for v in background))
    if not ok:
        raise CaptureError(f"{where}: background must be [r, g, b], three integers in 0-255; "
                           f"got {background!r}")
    r, g, b = (int(v) for v in background)
    return r, g, b


def check_splits(splits, camera_names: list[str], num_frames: int | None, where: str) -> dict[str, list]:
    """Splits must name known cameras and in-range frames; frames are range-checked once N is known."""
    if not isinstance(splits, Mapping):
        raise CaptureError(f"{where}: splits must be an object with keys {', '.join(SPLIT_KEYS)}; "
                           f"got {type(splits).__name__}")
    missing = [k for k in SPLIT_KEYS if k not in splits]
    unknown = [k for k in splits if k not in SPLIT_KEYS]
    if missing or unknown:
        raise CaptureError(f"{where}: splits must have exactly the keys {', '.join(SPLIT_KEYS)}; "
                           f"missing {missing or 'none'}, unknown {unknown or 'none'}")
    out: dict[str, list] = {}
    for key in SPLIT_KEYS:
        values = splits[key]
        if not isinstance(values, list | tuple):
            raise CaptureError(f"{where}: splits.{key} must be a list; got {type(values).__name__}")
        values = list(values)
        if key.endswith("_cameras"):
            for v in values:
                if v not in camera_names:
                    raise CaptureError(f"{where}: splits.{key} names camera {v!r}, which is not one of the "
                                       f"cameras ({listing(camera_names)}); fix the name or add the camera")
        else:
            for v in values:
                if not isinstance(v, int | np.integer) or isinstance(v, bool):
                    raise CaptureError(f"{where}: splits.{key} must hold integer frame indices; got {v!r}")
                if v < 0:
                    raise CaptureError(f"{where}: splits.{key} has frame {v}; frame indices are >= 0")
                if num_frames is not None and v >= num_frames:
                    raise CaptureError(f"{where}: splits.{key} has frame {v}, out of range: the capture has "
                                       f"num_frames = {num_frames}, so frames are 0..{num_frames - 1}")
            values = [int(v) for v in values]
        dupes = sorted({v for v in values if values.count(v) > 1}, key=str)
        if dupes:
            raise CaptureError(f"{where}: splits.{key} lists {listing(dupes)} more than once; "
                               "list each once")
        out[key] = values
    return out
