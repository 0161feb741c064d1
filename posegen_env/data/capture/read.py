"""Reading a PoseGen capture: everything is checked up front, since a broken capture would otherwise
surface only once a fit is under way, and every failure names the file, the problem and the fix."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from posegen_env.body.joints import NUM_BODY_JOINTS
from posegen_env.data.capture.data import Capture
from posegen_env.data.capture.schema import (
    CAPTURE_JSON,
    FORMAT,
    REQUIRED_KEYS,
    SMPL_DIMS,
    SMPL_KEYS,
    SMPL_NPZ,
    VERSION,
    CaptureError,
    capture_png,
    check_background,
    check_camera,
    check_camera_name,
    check_image_size,
    check_splits,
    frame_file,
)
from posegen_env.files import listing, open_png, read_json_header, require_directory
from posegen_env.render.camera import MAX_CAMERA_DISTANCE, Camera


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
        name = check_camera_name(entry["name"], where)
        if name in cameras:
            raise CaptureError(f"{where}: duplicate camera name '{name}' (cameras[{i}]); "
                               "camera names must be unique, they are the image folder names")
        K = _matrix(entry["K"], (3, 3), f"camera '{name}' K", where)
        R = _matrix(entry["R"], (3, 3), f"camera '{name}' R", where)
        T = _matrix(entry["T"], (3,), f"camera '{name}' T (metres)", where)
        D = _matrix(entry.get("D", [0.0] * 5), (5,), f"camera '{name}' D (k1, k2, p1, p2, k3)", where)
        check_camera(name, K, R, T, where)
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
    image, mask = capture_png("image", capture.image_size), capture_png("mask", capture.image_size)
    for cam in capture.cameras:
        for frame in range(n):
            open_png(capture.image_path(cam, frame), image).close()
            open_png(capture.mask_path(cam, frame), mask).close()


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
    image_size = check_image_size(doc["image_size"], where)
    background = check_background(doc["background"], where)
    if not isinstance(doc["body_model"], str):
        raise CaptureError(f"{where}: body_model must be a string; got {doc['body_model']!r}")
    num_frames = doc["num_frames"]
    if not isinstance(num_frames, int) or isinstance(num_frames, bool) or num_frames <= 0:
        raise CaptureError(f"{where}: num_frames must be a positive integer; got {num_frames!r}")
    meta = doc.get("meta", {})
    if not isinstance(meta, dict):
        raise CaptureError(f"{where}: meta must be an object; got {type(meta).__name__}")
    cameras, distortion = _parse_cameras(doc, image_size, where)
    splits = check_splits(doc["splits"], list(cameras), num_frames, where)
    smpl = _read_smpl(root / SMPL_NPZ, num_frames)
    _check_camera_distances(cameras, smpl["transl"], where)
    capture = Capture(root=root, cameras=cameras, smpl=smpl, splits=splits, background=background,
                      image_size=image_size, body_model=doc["body_model"], distortion=distortion, meta=meta)
    if check_files:
        _check_files(capture)
    return capture
