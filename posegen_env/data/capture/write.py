"""Writing a capture: frames are checked as they are added, streamed into a hidden sibling directory,
and the whole renamed into place only once complete, so no reader ever sees a half-written capture."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from PIL import Image

from posegen_env.body.joints import NUM_BODY_JOINTS
from posegen_env.data.capture.read import load_capture
from posegen_env.data.capture.schema import (
    CAPTURE_JSON,
    FORMAT,
    SMPL_DIMS,
    SMPL_KEYS,
    SMPL_NPZ,
    VERSION,
    CaptureError,
    check_background,
    check_camera,
    check_camera_name,
    check_image_size,
    check_splits,
    frame_file,
)
from posegen_env.files import StagedDirectoryWriter, check_meta, dump_json, listing
from posegen_env.render.camera import Camera


class CaptureWriter(StagedDirectoryWriter):
    """Stream frames into a new capture; it appears at ``out_dir`` complete, or not at all.

    Use as a context manager and call :meth:`add_frame` once for each frame 0..N-1 (any order).
    Files go to a hidden sibling directory that is renamed into place on a clean exit; on an
    exception it is deleted and an existing capture at ``out_dir`` is left untouched. With
    ``overwrite=True`` an existing capture is moved to a backup name, the new one renamed in, and
    the backup deleted: at every moment a complete capture exists, at ``out_dir`` or, for the
    instant between the two renames, at the backup name (which the loader's error then points to).
    """

    _kind, _marker, _error = "capture", CAPTURE_JSON, CaptureError

    def __init__(self, out_dir: str | os.PathLike, cameras: Mapping[str, Camera], image_size,
                 background, body_model: str, splits: Mapping[str, list], meta: dict | None = None,
                 overwrite: bool = False):
        self.out_dir = Path(out_dir)
        where = f"CaptureWriter({self.out_dir})"
        self.image_size = check_image_size(image_size, where)
        self.background = check_background(background, where)
        if not isinstance(cameras, Mapping) or not cameras:
            raise CaptureError(f"{where}: cameras must be a non-empty dict of name -> Camera")
        height, width = self.image_size
        for name, cam in cameras.items():
            check_camera_name(name, where)
            if not isinstance(cam, Camera):
                raise CaptureError(f"{where}: camera '{name}' is a {type(cam).__name__}, expected a "
                                   "posegen_env.render.camera.Camera")
            if (cam.height, cam.width) != (height, width):
                raise CaptureError(f"{where}: camera '{name}' is {cam.width}x{cam.height} (W x H) but "
                                   f"image_size [H, W] is [{height}, {width}]; all cameras must share the "
                                   "image size")
            check_camera(name, cam.K, cam.R, cam.t, where)
        self.cameras = dict(cameras)
        if not isinstance(body_model, str):
            raise CaptureError(f"{where}: body_model must be a string naming the body model, "
                               "e.g. 'smpl_neutral'")
        self.body_model = body_model
        self.splits = check_splits(splits, list(self.cameras), None, where)
        self.meta = check_meta(meta, CaptureError, where)
        self.overwrite = overwrite
        self._check_target(self.out_dir)
        self._params: dict[int, dict[str, np.ndarray]] = {}
        self._num_betas: int | None = None

    def _prepare(self, tmp: Path) -> None:
        for sub in ("images", "masks"):
            for name in self.cameras:
                (tmp / sub / name).mkdir(parents=True)

    def add_frame(self, frame_index: int, smpl_params: Mapping, images: Mapping, masks: Mapping) -> None:
        """Write one frame: SMPL parameters, an RGB uint8 (H, W, 3) image and a bool or uint8 (H, W)
        mask (0 background, 255 person) for every camera. Everything is checked before
        anything is written."""
        if self._tmp is None:
            raise CaptureError(f"CaptureWriter({self.out_dir}): not open; "
                               "use `with CaptureWriter(...) as w:`")
        if not isinstance(frame_index, int | np.integer) or isinstance(frame_index, bool) or frame_index < 0:
            raise CaptureError(f"add_frame: frame_index must be a non-negative integer; got {frame_index!r}")
        frame = int(frame_index)
        where = f"add_frame(frame {frame})"
        if frame in self._params:
            raise CaptureError(f"{where}: frame {frame} was already added; add each frame exactly once")
        params = self._check_params(smpl_params, where)
        rgb = {cam: self._check_image(img, f"{where}, camera '{cam}'")
               for cam, img in self._per_camera(images, "images", where).items()}
        alpha = {cam: self._check_mask(m, f"{where}, camera '{cam}'")
                 for cam, m in self._per_camera(masks, "masks", where).items()}
        for cam in self.cameras:
            Image.fromarray(rgb[cam]).save(self._tmp / "images" / cam / frame_file(frame))
            Image.fromarray(alpha[cam]).save(self._tmp / "masks" / cam / frame_file(frame))
        self._params[frame] = params

    def _per_camera(self, views, what: str, where: str) -> Mapping:
        if not isinstance(views, Mapping):
            raise CaptureError(f"{where}: {what} must be a dict of camera name -> array")
        missing = [c for c in self.cameras if c not in views]
        unknown = [c for c in views if c not in self.cameras]
        if missing:
            raise CaptureError(f"{where}: {what} has no entry for camera(s) {listing(missing)}; "
                               "every camera needs an image and a mask in every frame")
        if unknown:
            raise CaptureError(f"{where}: {what} has unknown camera(s) {listing(unknown)}; "
                               f"the writer's cameras are {listing(list(self.cameras))}")
        return views

    def _check_image(self, img, where: str) -> np.ndarray:
        arr = np.asarray(img)
        shape = (*self.image_size, 3)
        if arr.dtype != np.uint8:
            raise CaptureError(f"{where}: image dtype is {arr.dtype} but must be uint8 (0-255); convert with "
                               "(img * 255).round().clip(0, 255).astype(np.uint8)")
        if arr.shape != shape:
            raise CaptureError(f"{where}: image shape is {arr.shape} but must be (H, W, 3) = {shape}, RGB")
        return arr

    def _check_mask(self, mask, where: str) -> np.ndarray:
        arr = np.asarray(mask)
        if arr.shape != self.image_size:
            raise CaptureError(f"{where}: mask shape is {arr.shape} but must be (H, W) = {self.image_size}")
        if arr.dtype == np.bool_:
            return arr.astype(np.uint8) * 255
        if arr.dtype != np.uint8:
            raise CaptureError(f"{where}: mask dtype is {arr.dtype} but must be bool or uint8 (0 background, "
                               "255 person)")
        if arr.max() == 1:
            raise CaptureError(f"{where}: uint8 mask has values 0/1 but the person must be 255; pass a bool "
                               "mask or multiply by 255")
        return arr

    def _check_params(self, params, where: str) -> dict[str, np.ndarray]:
        if not isinstance(params, Mapping):
            raise CaptureError(f"{where}: smpl_params must be a dict with keys {', '.join(SMPL_KEYS)}")
        missing = [k for k in SMPL_KEYS if k not in params]
        unknown = [k for k in params if k not in SMPL_KEYS]
        if missing or unknown:
            raise CaptureError(f"{where}: smpl_params must have exactly the keys {', '.join(SMPL_KEYS)}; "
                               f"missing {missing or 'none'}, unknown {unknown or 'none'}")
        out = {}
        for key in SMPL_KEYS:
            try:
                arr = np.asarray(params[key], dtype=np.float64)
            except (TypeError, ValueError, RuntimeError) as e:
                raise CaptureError(f"{where}: smpl_params['{key}'] is not a numeric array ({e}); pass numpy "
                                   "arrays (for torch tensors use .detach().cpu().numpy())") from None
            if arr.ndim == 2 and arr.shape[0] == 1:  # a batch of one, as smplx returns
                arr = arr[0]
            dim = SMPL_DIMS[key] if key != "betas" else self._num_betas
            if arr.ndim != 1 or arr.size == 0 or (dim is not None and arr.shape[0] != dim):
                need = f"({dim},)" if dim is not None else "(B,) with B >= 1"
                hints = {"betas": " (the same number of betas in every frame)",
                         "body_pose": f" ({NUM_BODY_JOINTS} body joints x 3, root excluded: split a 72-value "
                                      "SMPL pose into global_orient = pose[:3] and body_pose = pose[3:])"}
                raise CaptureError(f"{where}: smpl_params['{key}'] has shape {arr.shape} "
                                   f"but must be {need}{hints.get(key, '')}")
            arr = arr.astype(np.float32)
            if not np.isfinite(arr).all():
                raise CaptureError(f"{where}: smpl_params['{key}'] has NaN or inf values "
                                   "(or overflows float32)")
            out[key] = arr
        self._num_betas = len(out["betas"])
        return out

    def _commit(self) -> None:
        where = f"CaptureWriter({self.out_dir})"
        if not self._params:
            raise CaptureError(f"{where}: no frames were added; call add_frame at least once")
        n = max(self._params) + 1
        gaps = [f for f in range(n) if f not in self._params]
        if gaps:
            raise CaptureError(f"{where}: frame(s) {listing(gaps)} were never added; frames must be 0..N-1 "
                               f"without gaps (highest added: {n - 1}); add them or renumber the frames")
        splits = check_splits(self.splits, list(self.cameras), n, where)
        assert self._tmp is not None
        smpl = {k: np.stack([self._params[f][k] for f in range(n)]) for k in SMPL_KEYS}
        np.savez(self._tmp / SMPL_NPZ, **smpl)  # type: ignore[arg-type]  # numpy's stub misreads **arrays
        doc = {
            "format": FORMAT, "version": VERSION, "image_size": list(self.image_size),
            "background": list(self.background), "body_model": self.body_model, "num_frames": n,
            "cameras": [{"name": name, "K": cam.K.tolist(), "R": cam.R.tolist(), "T": cam.t.tolist(),
                         "D": [0.0] * 5} for name, cam in self.cameras.items()],
            "splits": splits, "meta": self.meta,
        }
        (self._tmp / CAPTURE_JSON).write_text(dump_json(doc), encoding="utf-8")
        load_capture(self._tmp, check_files=False)  # never produce what the loader would reject
        self._install()

