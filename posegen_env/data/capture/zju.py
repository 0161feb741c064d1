"""ZJU-MoCap / EasyMocap captures, read in place into the same :class:`Capture` the fitting code uses.

The layout (``annots.npy``, per-camera image folders, ``mask/`` and ``mask_cihp/``, one EasyMocap
parameter file per frame) is what neuralbody, HumanNeRF and EasyMocap read; docs/capture_format.md
describes it and the conversion. Converting costs nothing on disk and keeps one source of truth.
Three things differ from PoseGen's own layout and are converted on reading: ``T`` is in
millimetres; images are distorted and have real backgrounds, so they are undistorted and
composited onto black with the mask (``zju_data``); and the body's global transform is EasyMocap's
``Rh``/``Th`` applied to the posed mesh, not SMPL's ``global_orient``/``transl``, which rotate
about the root joint (``zju_convert``).
"""

from __future__ import annotations

import math
import os
import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from posegen_env.body.body_model import BodyModel, load_body_model
from posegen_env.body.joints import NUM_JOINTS
from posegen_env.data.capture.read import far_cameras
from posegen_env.data.capture.schema import CaptureError, check_camera, check_splits
from posegen_env.data.capture.zju_convert import easymocap_to_smpl
from posegen_env.data.capture.zju_data import ANNOTS, BACKGROUND, ZjuCapture, fail, open_image
from posegen_env.files import listing, require_directory
from posegen_env.render.camera import MAX_CAMERA_DISTANCE, Camera

PARAMS_DIRS = ("new_params", "params")  # new_params (EasyMocap's refit) wins when both are present
MASK_DIRS = ("mask", "mask_cihp")
PARAM_KEYS = ("poses", "Rh", "Th", "shapes")
TEST_CAMERA_EVERY = 4  # cameras 3, 7, 11, ... are held out
TEST_FRAME_FRACTION = 0.1  # the last 10 % of the frames are held out
METRE_CENTRES = 50.0  # camera centres nearer than this to the origin mean T is in metres, not mm


# --------------------------------------------------------------------------------------------------
# annots.npy


def _load_pickled_dict(path: Path, what: str, fix: str) -> dict:
    if not path.is_file():
        raise fail(path, f"file is missing; {fix}")
    try:
        value = np.load(path, allow_pickle=True)
        value = value.item() if isinstance(value, np.ndarray) and value.dtype == object else value
    except (OSError, ValueError, EOFError, pickle.UnpicklingError) as e:
        raise fail(path, f"cannot be read as a pickled numpy dict ({e}); it must hold {what}") from None
    if not isinstance(value, dict):
        raise fail(path, f"holds a {type(value).__name__}, not a dict; it must hold {what}, saved with "
                          "np.save(path, the_dict)")
    return value


def _vector(value, sizes: tuple[int, ...] | None, what: str, path: Path) -> np.ndarray:
    """A (n,), (1, n) or (n, 1) array as (n,), n one of ``sizes`` (any n >= 1 when None)."""
    arr = _array(value)
    flat = arr.ndim <= 1 or (arr.ndim == 2 and 1 in arr.shape)
    if not flat or arr.size == 0 or (sizes is not None and arr.size not in sizes):
        need = " or ".join(map(str, sizes)) if sizes else "one or more"
        raise fail(path, f"{what} has shape {np.shape(value)}; expected {need} numbers as (n,), (1, n) or (n, 1)")
    return arr.reshape(-1)


def _matrix(value, what: str, path: Path) -> np.ndarray:
    arr = _array(value)
    if arr.shape != (3, 3):
        raise fail(path, f"{what} has shape {np.shape(value)}; expected a 3x3 matrix")
    return arr


def _array(value) -> np.ndarray:
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return np.empty(0)


def _read_cameras(annots: dict, path: Path) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """(K, D (5,), R, T in metres) per camera, in the order of the cams lists."""
    cams = annots.get("cams")
    if not isinstance(cams, dict) or not {"K", "D", "R", "T"} <= cams.keys():
        raise fail(path, f"'cams' must be a dict of per-camera lists K, D, R, T; got "
                          f"{sorted(cams) if isinstance(cams, dict) else type(cams).__name__}")
    counts = {k: len(cams[k]) for k in ("K", "D", "R", "T")}
    if len(set(counts.values())) != 1 or not counts["K"]:
        raise fail(path, f"cams lists have {counts} entries; K, D, R and T need one entry per camera each")
    cameras = []
    for i in range(counts["K"]):
        K = _matrix(cams["K"][i], f"cams['K'][{i}]", path)
        R = _matrix(cams["R"][i], f"cams['R'][{i}]", path)
        T = _vector(cams["T"][i], (3,), f"cams['T'][{i}] (millimetres)", path)
        D = np.pad(_vector(cams["D"][i], (4, 5), f"cams['D'][{i}] (k1, k2, p1, p2[, k3])", path), (0, 1))[:5]
        check_camera(f"cams[{i}]", K, R, T, str(path))
        if not np.isfinite(D).all():
            raise fail(path, f"cams['D'][{i}] is not finite (NaN or inf); use zeros for no distortion")
        cameras.append((K, D, R, T))
    _check_millimetres([R for _, _, R, _ in cameras], [T for *_, T in cameras], path)
    return [(K, D, R, T / 1000.0) for K, D, R, T in cameras]


def _check_millimetres(Rs: list[np.ndarray], Ts: list[np.ndarray], path: Path) -> None:
    """ZJU-MoCap's T is in millimetres: a capture stage puts its cameras about 1e3-1e4 mm from the origin."""
    distances = np.array([np.linalg.norm(-R.T @ T) for R, T in zip(Rs, Ts, strict=True)])
    median = float(np.median(distances))
    if median < METRE_CENTRES:
        raise fail(path, f"camera centres |-R^T T| are {distances.min():.3g} to {distances.max():.3g} (median "
                          f"{median:.3g}) from the origin, which is metres, not the millimetres ZJU-MoCap's T is "
                          "in (centres of order 1e3). Multiply every cams['T'] by 1000 and save annots.npy again")


def _check_distances(cameras: dict[str, Camera], transl: np.ndarray, path: Path) -> None:
    """Cameras far from the body see (almost) nothing of it, so fitting would get no rays: refused here as
    ``load_capture`` refuses them, in annots.npy's terms (its T is in millimetres, read as T / 1000 m)."""
    named = {f"'{n}' (cams[{i}])": c for i, (n, c) in enumerate(cameras.items())}
    far, distances, millimetres = far_cameras(named, transl)
    if not far:
        return
    if millimetres:
        fix = (f"their cams['T'] look 1000 times too large: {ANNOTS}'s T must be in millimetres (ZJU-MoCap's "
               f"unit), so divide each listed camera's T by 1000 and save {ANNOTS} again")
    else:
        fix = (f"fix the calibration in {ANNOTS} (world-to-camera, x_cam = R @ X + T, T in millimetres) or the "
               "SMPL parameters (Th in metres)")
    raise fail(path, f"camera(s) {listing(list(far))} are {distances} from the body (its median position over "
                      f"the frames), more than {MAX_CAMERA_DISTANCE:g} m, so they would see almost nothing of it; "
                      f"{fix}")


def _read_image_lists(annots: dict, num_cameras: int, root: Path) -> tuple[list[str], dict[str, list[str]]]:
    """Camera names (their image folders) and each camera's image path per frame, checked on disk."""
    path = root / ANNOTS
    ims = annots.get("ims")
    if not isinstance(ims, list | tuple | np.ndarray) or not len(ims):
        raise fail(path, "'ims' must be a non-empty list over frames of {'ims': [one image path per camera]}")
    frames: list[list[str]] = []
    for f, entry in enumerate(ims):
        paths = entry.get("ims") if isinstance(entry, dict) else None
        if paths is None or len(paths) != num_cameras:
            found = "no 'ims' list" if paths is None else f"{len(paths)} image paths"
            raise fail(path, f"ims[{f}] has {found} but cams has {num_cameras} cameras (K, D, R, T); every frame "
                              "needs one image path per camera, in the order of the cams lists")
        frames.append([str(p) for p in paths])
    folders = [Path(p).parent.as_posix() for p in frames[0]]
    names = [folder if folder != "." else f"camera_{c:02d}" for c, folder in enumerate(folders)]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise fail(path, f"ims[0] puts the images of several cameras in the same folder ({listing(dupes)}); "
                          "each camera needs its own image folder, in the order of the cams lists")
    for f, paths in enumerate(frames):
        for c, p in enumerate(paths):
            if Path(p).parent.as_posix() != folders[c]:
                raise fail(path, f"ims[{f}]['ims'][{c}] = '{p}' is not in camera {c}'s folder '{folders[c]}' "
                                  "(from ims[0]); every frame must list the cameras in the order of the cams lists")
    missing_dirs = [n for n in folders if not (root / n).is_dir()]
    if missing_dirs:
        raise fail(path, f"lists images in folder(s) {listing(missing_dirs)}, which do not exist under {root}; "
                          f"rename the image folders or fix the paths in ims (found folders: "
                          f"{listing(sorted(p.name for p in root.iterdir() if p.is_dir()))})")
    return names, {name: [paths[c] for paths in frames] for c, name in enumerate(names)}


# --------------------------------------------------------------------------------------------------
# Parameters


def _params_dir(root: Path, chosen: str | None) -> Path:
    names = (chosen,) if chosen else PARAMS_DIRS
    for name in names:
        if (root / name).is_dir():
            return root / name
    raise fail(root, f"no SMPL parameter folder ({' or '.join(f'{n}/' for n in names)}); the ZJU layout needs "
                      "one EasyMocap file <frame>.npy per frame with poses, Rh, Th and shapes")


def _first_index(folder: Path, num_frames: int) -> int:
    """0, or 1 for sequences whose parameter files count from 1 (ZJU-MoCap's CoreView_313 and 315)."""
    if not (folder / "0.npy").is_file() and (folder / f"{num_frames}.npy").is_file():
        return 1
    return 0


def _read_params(path: Path, frame: int, num_frames: int, first: int) -> dict[str, np.ndarray]:
    numbering = "frame f in <f>.npy" if first == 0 else "frame f in <f + 1>.npy"
    fix = (f"{ANNOTS} lists {num_frames} frames, so {path.parent.name}/ needs {first}.npy to "
           f"{first + num_frames - 1}.npy ({numbering}); add the file for frame {frame} or drop frame {frame} "
           f"from ims in {ANNOTS}")
    params = _load_pickled_dict(path, f"frame {frame}'s EasyMocap parameters {', '.join(PARAM_KEYS)}", fix)
    missing = [k for k in PARAM_KEYS if k not in params]
    if missing:
        raise fail(path, f"missing key(s) {', '.join(missing)}; found {sorted(params)}, expected "
                          f"{', '.join(PARAM_KEYS)}")
    out = {"poses": _vector(params["poses"], (NUM_JOINTS * 3,), "poses (72 SMPL axis-angle values)", path),
           "Rh": _vector(params["Rh"], (3,), "Rh (axis-angle)", path),
           "Th": _vector(params["Th"], (3,), "Th (metres)", path)}
    out["shapes"] = _vector(params["shapes"], None, "shapes (betas)", path)
    for key, arr in out.items():
        if not np.isfinite(arr).all():
            raise fail(path, f"{key} has NaN or inf values; refit the frame or drop it from ims in {ANNOTS}")
    return out


def _read_all_params(folder: Path, num_frames: int, body: BodyModel) -> dict[str, np.ndarray]:
    first = _first_index(folder, num_frames)
    frames = [_read_params(folder / f"{f + first}.npy", f, num_frames, first) for f in range(num_frames)]
    widths = sorted({len(p["shapes"]) for p in frames})
    if len(widths) > 1 or widths[0] > body.num_betas:
        raise fail(folder, f"shapes have {listing(widths)} betas but the body model takes {body.num_betas} (and "
                            "every frame the same number); pass a body with as many betas (the SMPL model the "
                            "parameters were fitted with, e.g. POSEGEN_BODY_MODEL=/path/to/SMPL_NEUTRAL.pkl)")
    stacked = {k: np.stack([p[k] for p in frames]) for k in PARAM_KEYS}
    _check_metres(stacked["Th"], folder)
    return easymocap_to_smpl(stacked["poses"], stacked["Rh"], stacked["Th"], stacked["shapes"], body)


def _check_metres(Th: np.ndarray, folder: Path) -> None:
    median = float(np.median(np.linalg.norm(Th, axis=1)))
    if median > METRE_CENTRES:
        raise fail(folder, f"Th is {median:.3g} from the origin (median over frames), which is millimetres; "
                            "EasyMocap's Th is in metres: divide every Th by 1000")


# --------------------------------------------------------------------------------------------------
# Masks, sizes, splits


def _mask_dirs(root: Path) -> tuple[str, ...]:
    found = tuple(d for d in MASK_DIRS if (root / d).is_dir())
    if not found:
        raise fail(root, f"no mask folder ({' or '.join(f'{d}/' for d in MASK_DIRS)}); the ZJU layout needs a "
                          "person mask per image, mask/<image path with .png>, non-zero on the person")
    return found


def _check_files(capture: ZjuCapture, check_headers: bool) -> None:
    """Every listed image and its masks exist (and, with ``check_headers``, have the capture's size)."""
    missing = []
    for cam in capture.cameras:
        for frame in range(capture.num_frames):
            paths = [capture.image_path(cam, frame), *capture.mask_paths(cam, frame)]
            missing += [str(p.relative_to(capture.root)) for p in paths if not p.is_file()]
    if missing:
        raise fail(capture.root, f"{len(missing)} image/mask file(s) listed in {ANNOTS} are missing: "
                                  f"{listing(missing)}; every image needs its file and a mask of the same path "
                                  f"with .png in {' and '.join(f'{d}/' for d in capture.mask_dirs)}")
    if not check_headers:
        return
    for cam in capture.cameras:
        for frame in range(capture.num_frames):
            for path in (capture.image_path(cam, frame), *capture.mask_paths(cam, frame)):
                with open_image(path, "image") as im:
                    if im.size != (capture.image_size[1], capture.image_size[0]):
                        raise fail(path, f"is {im.size[0]}x{im.size[1]} (W x H) but "
                                          f"{capture.image_path(capture.camera_names[0], 0)} is "
                                          f"{capture.image_size[1]}x{capture.image_size[0]}; all images and masks "
                                          "must share one size")


def _image_size(path: Path) -> tuple[int, int]:
    with open_image(path, "image") as im:
        return im.size[1], im.size[0]


def default_splits(names: Sequence[str], num_frames: int, test_cameras: Sequence[str] | None = None,
                   test_frames: int | None = None) -> dict[str, list]:
    """Held out: every 4th camera (3, 7, ...) unless named, and the last 10 % of frames (at least one
    when there are two or more) unless counted; the rest trains."""
    if test_cameras is None:
        test_cameras = [n for i, n in enumerate(names) if i % TEST_CAMERA_EVERY == TEST_CAMERA_EVERY - 1]
    if test_frames is None:
        test_frames = math.ceil(TEST_FRAME_FRACTION * num_frames) if num_frames > 1 else 0
    if not 0 <= test_frames < num_frames:
        raise CaptureError(f"test_frames = {test_frames}: the capture has {num_frames} frames; hold out 0 to "
                           f"{num_frames - 1} of them, so that some remain for training")
    unknown = [c for c in test_cameras if c not in names]
    if unknown:
        raise CaptureError(f"test cameras {listing(unknown)} are not cameras of the capture ({listing(list(names))}); "
                           "name them by their image folder")
    train = [n for n in names if n not in test_cameras]
    if not train:
        raise CaptureError("every camera is held out for testing; leave at least one for training")
    split = num_frames - test_frames
    return {"train_cameras": train, "test_cameras": [n for n in names if n in test_cameras],
            "train_frames": list(range(split)), "test_frames": list(range(split, num_frames))}


# --------------------------------------------------------------------------------------------------
# Loading


def load_zju_capture(path: str | os.PathLike, body: BodyModel | str | os.PathLike | None = None,
                     test_cameras: Sequence[str] | None = None, test_frames: int | None = None,
                     params_dir: str | None = None, check_files: bool = True) -> ZjuCapture:
    """Load and check a ZJU-MoCap / EasyMocap capture; its frame parameters are converted with ``body``
    (a body model or its file; default ``$POSEGEN_BODY_MODEL`` or the shipped body), which must be the
    model the parameters were fitted with. ``check_files`` also reads every file's header."""
    root = Path(path)
    require_directory(root, "capture", CaptureError)
    annots = _load_pickled_dict(root / ANNOTS, "the dict {'cams': {K, D, R, T}, 'ims': [...]}",
                                f"{root} is not a ZJU-MoCap capture (see docs/capture_format.md)")
    cams = _read_cameras(annots, root / ANNOTS)
    names, image_files = _read_image_lists(annots, len(cams), root)
    mask_dirs = _mask_dirs(root)
    num_frames = len(image_files[names[0]])
    model = body if isinstance(body, BodyModel) else load_body_model(body)
    folder = _params_dir(root, params_dir)
    smpl = _read_all_params(folder, num_frames, model)
    image_size = _image_size(root / image_files[names[0]][0])
    cameras = {n: Camera(K, R, T, image_size[1], image_size[0]) for n, (K, _, R, T) in zip(names, cams, strict=True)}
    _check_distances(cameras, smpl["transl"], root / ANNOTS)
    splits = check_splits(default_splits(names, num_frames, test_cameras, test_frames), names, num_frames,
                           str(root / ANNOTS))
    capture = ZjuCapture(root=root, cameras=cameras, smpl=smpl, splits=splits, background=BACKGROUND,
                         image_size=image_size, body_model=model.identifier,
                         distortion={n: np.zeros(5) for n in names},
                         meta={"layout": "zju-mocap", "params": folder.name, "masks": list(mask_dirs)},
                         image_files=image_files, mask_dirs=mask_dirs,
                         raw_distortion={n: D for n, (_, D, _, _) in zip(names, cams, strict=True)})
    _check_files(capture, check_headers=check_files)
    return capture
