"""Multi-view human captures on disk: the data a human NeRF is fitted on.

A capture is a directory of per-camera image and mask folders, calibrated cameras and per-frame
SMPL parameters, laid out like ZJU-MoCap (see docs/capture_format.md for the layout and the
differences). A broken capture would otherwise surface only once a fit is under way, so the
loader checks everything up front and every failure names the file, the problem and the fix. The
writer streams frames into a hidden sibling directory and renames it into place only once
complete, so no reader ever sees a half-written capture.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from posegen_env.body.joints import NUM_BODY_JOINTS
from posegen_env.files import (
    StagedDirectoryWriter,
    check_meta,
    check_replaceable,
    listing,
    open_png,
    read_json_header,
    require_directory,
)
from posegen_env.render.camera import MAX_CAMERA_DISTANCE, Camera

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
_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


class CaptureError(ValueError):
    """A capture (or the data given to the writer) breaks the format; the message says where and how."""


def frame_file(frame: int) -> str:
    """File name of a frame's image and mask: the index zero-padded to 6 digits."""
    return f"{frame:06d}.png"


# --------------------------------------------------------------------------------------------------
# Checks shared by the loader and the writer


def _check_camera_name(name, where: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise CaptureError(f"{where}: camera name {name!r} is not a valid folder name; use letters, digits, "
                           "'_', '-' and '.', not starting with '.' or '-' (e.g. 'cam_00')")
    return name


def _check_camera(name: str, K: np.ndarray, R: np.ndarray, T: np.ndarray, where: str) -> None:
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


def _check_image_size(image_size, where: str) -> tuple[int, int]:
    ok = (isinstance(image_size, list | tuple) and len(image_size) == 2
          and all(isinstance(v, int | np.integer) and not isinstance(v, bool) and v > 0 for v in image_size))
    if not ok:
        raise CaptureError(f"{where}: image_size must be [H, W], two positive integers; got {image_size!r}")
    return int(image_size[0]), int(image_size[1])


def _check_background(background, where: str) -> tuple[int, int, int]:
    ok = (isinstance(background, list | tuple) and len(background) == 3
          and all(isinstance(v, int | np.integer) and not isinstance(v, bool) and 0 <= v <= 255
                  for v in background))
    if not ok:
        raise CaptureError(f"{where}: background must be [r, g, b], three integers in 0-255; "
                           f"got {background!r}")
    r, g, b = (int(v) for v in background)
    return r, g, b


def _check_splits(splits, camera_names: list[str], num_frames: int | None, where: str) -> dict[str, list]:
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


# --------------------------------------------------------------------------------------------------
# PNG I/O


def _open_png(path: Path, kind: str, image_size: tuple[int, int]):
    height, width = image_size
    return open_png(path, ("RGB",) if kind == "image" else ("L", "1"), (width, height), CaptureError, kind,
                    "every (camera, frame) pair needs an image and a mask",
                    f"capture.json declares image_size [H, W] = [{height}, {width}]; all images and masks must "
                    "have the declared size")


def _read_png(path: Path, kind: str, image_size: tuple[int, int]) -> np.ndarray:
    im = _open_png(path, kind, image_size)
    try:
        with im:
            return np.array(im.convert("L") if kind == "mask" else im)
    except OSError as e:
        raise CaptureError(f"{path}: {kind} file is corrupt ({e}); re-export it") from None


# --------------------------------------------------------------------------------------------------
# Reading


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
        return _read_png(self.image_path(cam, frame), "image", self.image_size)

    def load_mask(self, cam: str, frame: int) -> np.ndarray:
        """Person mask, bool (H, W)."""
        return _read_png(self.mask_path(cam, frame), "mask", self.image_size) >= MASK_THRESHOLD

    def load_alpha(self, cam: str, frame: int) -> np.ndarray:
        """Soft person coverage, float32 (H, W) in [0, 1] (masks may have anti-aliased edges)."""
        return _read_png(self.mask_path(cam, frame), "mask", self.image_size).astype(np.float32) / 255.0

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


def _matrix(value, shape: tuple, what: str, where: str) -> np.ndarray:
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.shape != shape:
        need = f"a list of {shape[0]} numbers" if len(shape) == 1 else "a 3x3 list of rows of numbers"
        raise CaptureError(f"{where}: {what} must be {need}; got {value!r}")
    return arr


def _parse_cameras(doc: dict, image_size: tuple[int, int], where: str):
    entries = doc["cameras"]
    if not isinstance(entries, list) or not entries:
        raise CaptureError(f"{where}: cameras must be a non-empty list of {{name, K, R, T, D}} objects")
    cameras: dict[str, Camera] = {}
    distortion: dict[str, np.ndarray] = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not {"name", "K", "R", "T"} <= entry.keys():
            raise CaptureError(f"{where}: cameras[{i}] must be an object with keys name, K, R, T (and "
                               f"optionally D); got {entry!r:.200}")
        name = _check_camera_name(entry["name"], where)
        if name in cameras:
            raise CaptureError(f"{where}: duplicate camera name '{name}' (cameras[{i}]); "
                               "camera names must be unique, they are the image folder names")
        K = _matrix(entry["K"], (3, 3), f"camera '{name}' K", where)
        R = _matrix(entry["R"], (3, 3), f"camera '{name}' R", where)
        T = _matrix(entry["T"], (3,), f"camera '{name}' T (metres)", where)
        D = _matrix(entry.get("D", [0.0] * 5), (5,), f"camera '{name}' D (k1, k2, p1, p2, k3)", where)
        _check_camera(name, K, R, T, where)
        if not np.isfinite(D).all():
            raise CaptureError(f"{where}: camera '{name}' D is not finite (contains NaN or inf); "
                               "use zeros for no distortion")
        cameras[name] = Camera(K, R, T, image_size[1], image_size[0])
        distortion[name] = D
    return cameras, distortion


def _read_smpl(path: Path, num_frames: int) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise CaptureError(f"{path}: file is missing; it must hold the per-frame SMPL parameters "
                           f"{', '.join(SMPL_KEYS)}")
    try:
        npz = np.load(path, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise ValueError("it is a single .npy array, not an .npz archive")
        with npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise CaptureError(f"{path}: cannot be read as a numpy .npz archive ({e}); write it with np.savez("
                           "path, global_orient=..., body_pose=..., betas=..., transl=...)") from None
    missing = [k for k in SMPL_KEYS if k not in arrays]
    if missing:
        raise CaptureError(f"{path}: missing array(s) {', '.join(missing)}; "
                           f"found {sorted(arrays) or 'none'}, expected {', '.join(SMPL_KEYS)}")
    smpl = {}
    for key in SMPL_KEYS:
        arr, dim = arrays[key], SMPL_DIMS[key]
        expected = f"(num_frames, {dim if dim else 'B'})"
        if arr.ndim != 2 or (dim is not None and arr.shape[1] != dim) or arr.shape[1] == 0:
            hint = ""
            if key == "body_pose":
                hint = (f": {NUM_BODY_JOINTS} body joints x 3 axis-angle values, root excluded "
                        "(split a 72-value SMPL pose into global_orient = pose[:, :3] and "
                        "body_pose = pose[:, 3:])")
            raise CaptureError(f"{path}: {key} has shape {arr.shape} but must be {expected}{hint}")
        if not np.issubdtype(arr.dtype, np.floating):
            raise CaptureError(f"{path}: {key} has dtype {arr.dtype} but must be float (float32)")
        if len(arr) != num_frames:
            raise CaptureError(f"{path}: {key} has {len(arr)} frames but capture.json declares num_frames = "
                               f"{num_frames}; they must agree (one row per frame)")
        bad = ~np.isfinite(arr)
        if bad.any():
            frames = sorted(set(np.nonzero(bad)[0].tolist()))
            raise CaptureError(f"{path}: {key} has {int(bad.sum())} non-finite value(s) (NaN or inf) "
                               f"in frame(s) {listing(frames)}; refit or drop those frames")
        smpl[key] = arr.astype(np.float32)
    return smpl


def far_cameras(cameras: dict[str, Camera], transl: np.ndarray) -> tuple[dict[str, float], str, bool]:
    """The cameras farther than ``MAX_CAMERA_DISTANCE`` from the body (its median position), their
    distances as text, and whether every one of them looks like T in millimetres read as metres."""
    body = np.median(transl, axis=0)
    far = {n: float(np.linalg.norm(c.center - body)) for n, c in cameras.items()}
    far = {n: d for n, d in far.items() if d > MAX_CAMERA_DISTANCE}
    if not far:
        return far, "", False
    lo, hi = min(far.values()), max(far.values())
    distances = f"{lo:.3g} to {hi:.3g} m" if hi > lo else f"{hi:.3g} m"
    return far, distances, all(0.3 < d / 1000 < MAX_CAMERA_DISTANCE for d in far.values())


def _check_camera_distances(cameras: dict[str, Camera], transl: np.ndarray, where: str) -> None:
    """Cameras far from the body see (almost) nothing of it; fitting would then get no rays. The usual
    cause is T in millimetres (ZJU-MoCap's habit), which puts every camera ~1000x too far."""
    far, distances, millimetres = far_cameras(cameras, transl)
    if not far:
        return
    if millimetres:
        fix = "T looks like millimetres (ZJU-MoCap's unit); T must be in metres: divide each listed camera's T by 1000"
    else:
        fix = "fix the calibration (world-to-camera, x_cam = R @ X + T, T in metres)"
    raise CaptureError(f"{where}: camera(s) {listing([repr(n) for n in far])} are {distances} from the body "
                       f"(SMPL transl), more than {MAX_CAMERA_DISTANCE:g} m, so they would see almost nothing "
                       f"of it; {fix}")


def _check_files(capture: Capture) -> None:
    """Every (camera, frame) pair has a PNG image and mask of the declared size, and nothing else."""
    root, n = capture.root, capture.num_frames
    expected = [frame_file(f) for f in range(n)]
    missing: list[str] = []
    for sub, kind in (("images", "image"), ("masks", "mask")):
        top = root / sub
        if not top.is_dir():
            raise CaptureError(f"{top}: folder is missing; it must hold one folder of {kind} PNGs per camera")
        strays = sorted(p.name for p in top.iterdir() if p.is_dir() and p.name not in capture.cameras)
        if strays:
            raise CaptureError(f"{top}: folder(s) {listing(strays)} are not cameras in capture.json "
                               f"({listing(capture.camera_names)}); remove them or add the cameras")
        for cam in capture.cameras:
            folder = top / cam
            present = {p.name for p in folder.glob("*.png")} if folder.is_dir() else set()
            missing += [f"{sub}/{cam}/{name}" for name in expected if name not in present]
            extra = sorted(present.difference(expected))
            if extra:
                raise CaptureError(f"{folder}: holds {len(present)} PNG files but capture.json declares "
                                   f"num_frames = {n}; unexpected: {listing(extra)}. Files must be named by "
                                   "frame index (000000.png ...); remove the extras or add their frames")
    if missing:
        raise CaptureError(f"{root}: {len(missing)} of {2 * n * len(capture.cameras)} image/mask files are "
                           f"missing: {listing(missing)}; a capture needs an image and a mask for every "
                           "(camera, frame) pair, images/<camera>/<frame:06d>.png and masks/<camera>/...")
    for cam in capture.cameras:
        for frame in range(n):
            _open_png(capture.image_path(cam, frame), "image", capture.image_size).close()
            _open_png(capture.mask_path(cam, frame), "mask", capture.image_size).close()


def load_capture(path: str | os.PathLike, check_files: bool = True) -> Capture:
    """Load and validate a capture. ``check_files`` also checks every image and mask (headers only).

    Cameras more than ``MAX_CAMERA_DISTANCE`` from the body (T in millimetres) are refused here; what
    needs the body model or the pixels (cameras that miss the body, non-zero distortion, empty masks)
    is refused by fitting (``check_fittable`` and ``build_ray_bank`` in posegen_env/render/avatar/fit.py)."""
    root = Path(path)
    require_directory(root, "capture", CaptureError)
    json_path = root / CAPTURE_JSON
    doc = read_json_header(json_path, FORMAT, VERSION, REQUIRED_KEYS, ("meta",), CaptureError, "capture",
                           "CaptureWriter")
    where = str(json_path)
    image_size = _check_image_size(doc["image_size"], where)
    background = _check_background(doc["background"], where)
    if not isinstance(doc["body_model"], str):
        raise CaptureError(f"{where}: body_model must be a string; got {doc['body_model']!r}")
    num_frames = doc["num_frames"]
    if not isinstance(num_frames, int) or isinstance(num_frames, bool) or num_frames <= 0:
        raise CaptureError(f"{where}: num_frames must be a positive integer; got {num_frames!r}")
    meta = doc.get("meta", {})
    if not isinstance(meta, dict):
        raise CaptureError(f"{where}: meta must be an object; got {type(meta).__name__}")
    cameras, distortion = _parse_cameras(doc, image_size, where)
    splits = _check_splits(doc["splits"], list(cameras), num_frames, where)
    smpl = _read_smpl(root / SMPL_NPZ, num_frames)
    _check_camera_distances(cameras, smpl["transl"], where)
    capture = Capture(root=root, cameras=cameras, smpl=smpl, splits=splits, background=background,
                      image_size=image_size, body_model=doc["body_model"], distortion=distortion, meta=meta)
    if check_files:
        _check_files(capture)
    return capture


# --------------------------------------------------------------------------------------------------
# Writing


def _dump_json(doc: dict) -> str:
    """``doc`` indented as by ``json.dumps(indent=2)``, but with every list that holds no list or
    object on one line, so that a matrix reads as its rows and a frame list as one line."""
    def dump(value, pad: str) -> str:
        inner = pad + "  "
        if isinstance(value, dict) and value:
            items = (f"{inner}{json.dumps(key)}: {dump(v, inner)}" for key, v in value.items())
            return "{\n" + ",\n".join(items) + f"\n{pad}}}"
        if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
            return "[\n" + ",\n".join(inner + dump(v, inner) for v in value) + f"\n{pad}]"
        return json.dumps(value)

    # through JSON once first: keys become strings and tuples lists, as json.dumps itself would make them
    return dump(json.loads(json.dumps(doc, allow_nan=False)), "") + "\n"


def _check_replaceable(out_dir: Path, overwrite: bool) -> None:
    check_replaceable(out_dir, overwrite, CAPTURE_JSON, CaptureError, "capture")


class CaptureWriter(StagedDirectoryWriter):
    """Stream frames into a new capture; it appears at ``out_dir`` complete, or not at all.

    Use as a context manager and call :meth:`add_frame` once for each frame 0..N-1 (any order).
    Files go to a hidden sibling directory that is renamed into place on a clean exit; on an
    exception it is deleted and an existing capture at ``out_dir`` is left untouched. With
    ``overwrite=True`` an existing capture is moved to a backup name, the new one renamed in, and
    the backup deleted: at every moment a complete capture exists, at ``out_dir`` or, for the
    instant between the two renames, at the backup name (which the loader's error then points to).
    """

    def __init__(self, out_dir: str | os.PathLike, cameras: Mapping[str, Camera], image_size,
                 background, body_model: str, splits: Mapping[str, list], meta: dict | None = None,
                 overwrite: bool = False):
        self.out_dir = Path(out_dir)
        where = f"CaptureWriter({self.out_dir})"
        self.image_size = _check_image_size(image_size, where)
        self.background = _check_background(background, where)
        if not isinstance(cameras, Mapping) or not cameras:
            raise CaptureError(f"{where}: cameras must be a non-empty dict of name -> Camera")
        height, width = self.image_size
        for name, cam in cameras.items():
            _check_camera_name(name, where)
            if not isinstance(cam, Camera):
                raise CaptureError(f"{where}: camera '{name}' is a {type(cam).__name__}, expected a "
                                   "posegen_env.render.camera.Camera")
            if (cam.height, cam.width) != (height, width):
                raise CaptureError(f"{where}: camera '{name}' is {cam.width}x{cam.height} (W x H) but "
                                   f"image_size [H, W] is [{height}, {width}]; all cameras must share the "
                                   "image size")
            _check_camera(name, cam.K, cam.R, cam.t, where)
        self.cameras = dict(cameras)
        if not isinstance(body_model, str):
            raise CaptureError(f"{where}: body_model must be a string naming the body model, "
                               "e.g. 'smpl_neutral'")
        self.body_model = body_model
        self.splits = _check_splits(splits, list(self.cameras), None, where)
        self.meta = check_meta(meta, CaptureError, where)
        self.overwrite = overwrite
        _check_replaceable(self.out_dir, overwrite)
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
        splits = _check_splits(self.splits, list(self.cameras), n, where)
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
        (self._tmp / CAPTURE_JSON).write_text(_dump_json(doc), encoding="utf-8")
        load_capture(self._tmp, check_files=False)  # never produce what the loader would reject
        self._install()

    def _check_target(self, out_dir: Path) -> None:
        _check_replaceable(out_dir, self.overwrite)

