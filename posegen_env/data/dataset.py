"""Pose datasets on disk: square person crops plus one SPIN/HMR-style ``annotations.npz``.

Every dataset PoseGen writes (test suites, generated training data) uses this one format, so
human-mesh training code that already reads SPIN's ``.npz`` files needs only a joint mapping, not
a new loader. See docs/dataset_format.md for every key, unit and convention. A broken dataset
would otherwise surface only once training is under way, so the loader checks everything up front
and every failure names the file, the problem and the fix. The writer streams images into a hidden
sibling directory and renames it into place only once complete, so no reader ever sees a
half-written dataset.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from posegen_env import __version__
from posegen_env.body.joints import NUM_JOINTS, ROOT_JOINT, SMPL_JOINT_NAMES
from posegen_env.files import (
    StagedDirectoryWriter,
    check_meta,
    check_replaceable,
    listing,
    open_png,
    read_json_header,
    require_directory,
)
from posegen_env.render.camera import Camera
from posegen_env.render.step import PoseBatch

FORMAT = "posegen-dataset"
VERSION = 1
DATASET_JSON = "dataset.json"
ANNOTATIONS_NPZ = "annotations.npz"
IMAGES_DIR = "images"
EXTRA_PREFIX = "extra_"
BACKGROUND = "background"  # optional (N,) str key: each crop's background record as JSON (render.backgrounds)
NUM_BETAS = 10
POSE_DIM = NUM_JOINTS * 3
SCALE_UNIT = 200.0  # SPIN: scale = bounding-box side in pixels / 200
ROTATION_TOL = 1e-3
ROOT_TOL = 1e-3  # metres: how far from 0 the pelvis of a root-relative skeleton may be
MAX_JOINT_DIST = 5.0  # metres from the pelvis; farther means the joints are not in metres
PNG_COMPRESS_LEVEL = 1  # fast to write; crops are small, so size hardly matters

# Required arrays: key -> (shape after the leading N, dtype kind, what the trailing axes hold).
ARRAY_SPECS: dict[str, tuple[tuple[int, ...], str, str]] = {
    "imgname": ((), "str", "relative image path, e.g. 'images/000000.png'"),
    "center": ((2,), "float", "bounding-box centre (x, y) in crop pixels"),
    "scale": ((), "float", "bounding-box side / 200"),
    "part": ((NUM_JOINTS, 3), "float", f"{NUM_JOINTS} SMPL joints x (x px, y px, confidence)"),
    "S": ((NUM_JOINTS, 4), "float", f"{NUM_JOINTS} SMPL joints x (x, y, z in metres, confidence)"),
    "pose": ((POSE_DIM,), "float", f"SMPL axis-angle: global_orient (3) + body_pose ({POSE_DIM - 3})"),
    "shape": ((NUM_BETAS,), "float", f"{NUM_BETAS} SMPL betas"),
    "has_smpl": ((), "uint8", "1 if pose/shape are valid, else 0"),
    "cam_K": ((3, 3), "float", "pinhole intrinsics of the crop camera"),
    "cam_R": ((3, 3), "float", "world-to-camera rotation"),
    "cam_t": ((3,), "float", "world-to-camera translation in metres"),
}
REQUIRED_KEYS = tuple(ARRAY_SPECS)
JSON_REQUIRED = ("format", "version", "num_samples", "image_size", "joint_names")
JSON_OPTIONAL = ("meta", "created_by")
_NAME_RE = re.compile(r"[A-Za-z0-9_]+")


class DatasetError(ValueError):
    """A dataset (or the data given to the writer) breaks the format; the message says where and how."""


def image_name(index: int) -> str:
    """``imgname`` of sample ``index`` as the writer stores it: images/<index:06d>.png."""
    return f"{IMAGES_DIR}/{index:06d}.png"


def _rows(bad: np.ndarray, unit: str | None) -> str:
    """' in sample(s) 3, 7' for a per-row boolean mask; empty for a single sample (unit None)."""
    if unit is None:
        return ""
    return f" in {unit}(s) {listing(np.nonzero(bad)[0].tolist())}"


def _shape_text(trailing: tuple[int, ...], lead: str | None) -> str:
    dims = ((lead,) if lead is not None else ()) + tuple(str(d) for d in trailing)
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def _is_record(text) -> bool:
    """Whether ``text`` is "" (unknown) or a background record as JSON: an object with a "kind"."""
    if not isinstance(text, str):
        return False
    if not text:
        return True
    try:
        record = json.loads(text)
    except ValueError:
        return False
    return isinstance(record, dict) and "kind" in record


# --------------------------------------------------------------------------------------------------
# Checks shared by the loader and the writer


def crop_box(part: np.ndarray, image_size: int) -> tuple[np.ndarray, np.ndarray]:
    """SPIN ``center`` (N, 2) and ``scale`` (N,) from 2D joints (N, 24, >=2): the tight square box
    around the joints inside the image (occluded ones included: they are still part of the person).

    Inside means the pixel-centre convention of camera.py: ``-0.5 <= x, y <= image_size - 0.5``.
    A sample with no joint inside gets the whole crop; the side is at least 1 px so that code
    dividing by the scale never divides by zero.
    """
    xy = np.asarray(part, dtype=np.float64)[..., :2]
    inside: np.ndarray = _in_frame(xy, image_size)
    lo = np.where(inside[..., None], xy, np.inf).min(axis=1)
    hi = np.where(inside[..., None], xy, -np.inf).max(axis=1)
    any_in = np.asarray(inside.any(axis=1))
    full = (image_size - 1) / 2.0
    with np.errstate(invalid="ignore"):  # inf - inf in rows without a joint inside; np.where drops them
        center = np.where(any_in[:, None], (lo + hi) / 2.0, full)
        side = np.where(any_in, (hi - lo).max(axis=1), float(image_size))
    side = np.maximum(side, 1.0)
    return center.astype(np.float32), (side / SCALE_UNIT).astype(np.float32)


def _in_frame(xy: np.ndarray, image_size: int) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.asarray(((xy >= -0.5) & (xy <= image_size - 0.5)).all(axis=-1))


def _check_values(arrays: Mapping[str, np.ndarray], where: str, unit: str | None,
                  names: Mapping[str, str] | None = None) -> None:
    """Value checks on SPIN-keyed arrays with a leading sample axis (any subset of the keys).

    ``unit`` names the rows in messages ("sample", "batch item"; None for a single sample) and
    ``names`` maps keys to the names the caller used (e.g. S -> joints3d_cam).
    """
    names = names or {}

    def nm(key: str) -> str:
        return names.get(key, key)

    for key, arr in arrays.items():
        if arr.dtype.kind != "f" or len(arr) == 0:
            continue
        bad = ~np.isfinite(arr.reshape(len(arr), -1)).all(axis=1)
        if bad.any():
            raise DatasetError(f"{where}: {nm(key)} has NaN or inf values (or overflows float32){_rows(bad, unit)}; "
                               "every value must be finite: fix or drop those samples")
    if "cam_K" in arrays:
        K = arrays["cam_K"]
        bad = ~((K[:, 0, 0] > 0) & (K[:, 1, 1] > 0))
        if bad.any():
            raise DatasetError(f"{where}: {nm('cam_K')} has a non-positive focal length{_rows(bad, unit)}; "
                               "focal lengths are in pixels and must be > 0")
        bad = np.abs(K[:, 2] - (0.0, 0.0, 1.0)).max(axis=1) > 1e-6
        if bad.any():
            raise DatasetError(f"{where}: {nm('cam_K')} last row is not [0, 0, 1]{_rows(bad, unit)}; K must be "
                               "a pinhole intrinsics matrix (divide K by K[2, 2] if it is scaled)")
    if "cam_R" in arrays:
        R = arrays["cam_R"].astype(np.float64)
        err = np.abs(R @ np.swapaxes(R, 1, 2) - np.eye(3)).max(axis=(1, 2))
        bad = err > ROTATION_TOL
        if bad.any():
            raise DatasetError(f"{where}: {nm('cam_R')} is not orthonormal{_rows(bad, unit)} (|R R^T - I| up to "
                               f"{err.max():.3g}); R must be a rotation matrix, world-to-camera, OpenCV convention")
        bad = np.linalg.det(R) < 0
        if bad.any():
            raise DatasetError(f"{where}: {nm('cam_R')} has determinant -1{_rows(bad, unit)}, a reflection; R must "
                               "be a proper rotation (det +1)")
    if "S" in arrays:
        xyz = arrays["S"][..., :3]
        root = np.abs(xyz[:, ROOT_JOINT]).max(axis=1)
        bad = root > ROOT_TOL
        if bad.any():
            raise DatasetError(f"{where}: {nm('S')} is not root-relative{_rows(bad, unit)}: the pelvis "
                               f"(joint {ROOT_JOINT}) is up to {root.max():.3g} m from 0; subtract the pelvis from "
                               "every joint: joints - joints[..., :1, :]")
        dist = np.linalg.norm(xyz, axis=-1).max(axis=1)
        bad = dist > MAX_JOINT_DIST
        if bad.any():
            raise DatasetError(f"{where}: {nm('S')} has joints up to {dist.max():.3g} from the pelvis"
                               f"{_rows(bad, unit)}, more than {MAX_JOINT_DIST} m; 3D joints must be in metres "
                               "(divide millimetres by 1000)")
    for key, axis in (("part", 2), ("S", 3)):
        if key in arrays:
            conf = arrays[key][..., axis]
            bad = np.asarray(((conf < 0) | (conf > 1)).any(axis=1))
            if bad.any():
                raise DatasetError(f"{where}: {nm(key)} confidence (last column) is outside [0, 1]"
                                   f"{_rows(bad, unit)}; use 1 for a visible joint and 0 otherwise")
    if "scale" in arrays:
        bad = arrays["scale"] <= 0
        if bad.any():
            raise DatasetError(f"{where}: {nm('scale')} is not positive{_rows(bad, unit)}; scale is the "
                               "bounding-box side in pixels / 200")
    if "has_smpl" in arrays:
        bad = (arrays["has_smpl"] != 0) & (arrays["has_smpl"] != 1)
        if bad.any():
            raise DatasetError(f"{where}: {nm('has_smpl')} must be 0 or 1{_rows(bad, unit)}")


# --------------------------------------------------------------------------------------------------
# PNG I/O


def _open_png(path: Path, image_size: int):
    return open_png(path, ("RGB",), (image_size, image_size), DatasetError, "image", "every sample needs its image",
                    f"{DATASET_JSON} declares image_size = {image_size} (square {image_size}x{image_size} crops); "
                    "all images must have that size")


def _read_png(path: Path, image_size: int) -> np.ndarray:
    im = _open_png(path, image_size)
    try:
        with im:
            return np.asarray(im)
    except OSError as e:
        raise DatasetError(f"{path}: image file is corrupt ({e}); re-export it") from None


# --------------------------------------------------------------------------------------------------
# Reading


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
        return _read_png(self.image_path(i), self.image_size)

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


def _read_json(path: Path) -> dict:
    doc = read_json_header(path, FORMAT, VERSION, JSON_REQUIRED, JSON_OPTIONAL, DatasetError, "dataset",
                           "DatasetWriter or write_dataset")
    for key in ("num_samples", "image_size"):
        value = doc[key]
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise DatasetError(f"{path}: {key} must be a positive integer; got {value!r}")
    if doc["joint_names"] != list(SMPL_JOINT_NAMES):
        raise DatasetError(f"{path}: joint_names must be SMPL's {NUM_JOINTS} joints in SMPL order "
                           f"({', '.join(SMPL_JOINT_NAMES[:3])}, ...); got {doc['joint_names']!r:.200}. Joint "
                           "arrays in other orders must be remapped before writing")
    if not isinstance(doc.get("meta", {}), dict):
        raise DatasetError(f"{path}: meta must be an object; got {type(doc['meta']).__name__}")
    if not isinstance(doc.get("created_by", ""), str):
        raise DatasetError(f"{path}: created_by must be a string; got {doc['created_by']!r}")
    return doc


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DatasetError(f"{path}: file is missing; it must hold the per-sample annotations "
                           f"({', '.join(REQUIRED_KEYS)}); rewrite the dataset")
    try:
        with open(path, "rb") as f:  # our handle: np.load leaks its own when the archive is truncated
            npz = np.load(f, allow_pickle=False)
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise ValueError("it is a single .npy array, not an .npz archive")
            with npz:
                return {k: npz[k] for k in npz.files}
    except ValueError as e:
        if "Object arrays" in str(e):
            raise DatasetError(f"{path}: holds object (pickled) arrays, which are not allowed; store imgname "
                               "as a str array, np.array(names, dtype=str), and every other key as numbers") from None
        raise DatasetError(f"{path}: cannot be read as a numpy .npz archive: the file is truncated or corrupt "
                           f"({e}); rewrite the dataset") from None
    except (OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as e:
        raise DatasetError(f"{path}: cannot be read as a numpy .npz archive: the file is truncated or corrupt "
                           f"({type(e).__name__}: {e}); rewrite the dataset") from None


def _check_arrays(raw: dict[str, np.ndarray], num_samples: int, path: Path, json_path: Path
                  ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray | None]:
    """Keys, shapes, dtypes and sample counts of the annotation arrays; returns (required, extras,
    background or None)."""
    missing = [k for k in REQUIRED_KEYS if k not in raw]
    if missing:
        raise DatasetError(f"{path}: missing array(s) {', '.join(missing)}; found {listing(sorted(raw)) or 'none'}")
    unknown = [k for k in raw if k not in ARRAY_SPECS and k != BACKGROUND and not k.startswith(EXTRA_PREFIX)]
    if unknown:
        raise DatasetError(f"{path}: unknown array(s) {listing(sorted(unknown))}; name extra per-sample arrays "
                           f"'{EXTRA_PREFIX}<name>'")
    for key, (trailing, kind, meaning) in ARRAY_SPECS.items():
        arr = raw[key]
        if arr.ndim != 1 + len(trailing) or arr.shape[1:] != trailing:
            raise DatasetError(f"{path}: {key} has shape {arr.shape} but must be {_shape_text(trailing, 'N')}: "
                               f"{meaning}")
        ok = {"str": arr.dtype.kind == "U", "float": arr.dtype.kind == "f",
              "uint8": arr.dtype.kind in "biu"}[kind]
        if not ok:
            raise DatasetError(f"{path}: {key} has dtype {arr.dtype} but must be {kind}"
                               + (" (float32)" if kind == "float" else ""))
    extras = {}
    for key in sorted(k for k in raw if k.startswith(EXTRA_PREFIX)):
        arr = raw[key]
        name = key[len(EXTRA_PREFIX):]
        if not _NAME_RE.fullmatch(name):
            raise DatasetError(f"{path}: array name {key!r} is not valid; extras are '{EXTRA_PREFIX}<name>' with "
                               "letters, digits and '_'")
        if arr.ndim not in (1, 2) or arr.dtype.kind not in "fiub":
            raise DatasetError(f"{path}: {key} has shape {arr.shape} and dtype {arr.dtype}; extras must be numeric "
                               "(N,) or (N, D) arrays, one row per sample")
        extras[name] = arr.astype(np.float32)
    background = raw.get(BACKGROUND)
    if background is not None and (background.ndim != 1 or background.dtype.kind != "U"):
        raise DatasetError(f"{path}: {BACKGROUND} has shape {background.shape} and dtype {background.dtype} but must "
                           "be an (N,) str array, each sample's background record as JSON ('' where unknown): "
                           "store np.array(records, dtype=str)")
    optional = (BACKGROUND,) if background is not None else ()
    counts = {k: len(raw[k]) for k in (*REQUIRED_KEYS, *(EXTRA_PREFIX + n for n in extras), *optional)}
    if len(set(counts.values())) > 1:
        shown = ", ".join(f"{k} {v}" for k, v in counts.items())
        raise DatasetError(f"{path}: arrays disagree on the number of samples ({shown}); every array needs one "
                           "row per sample")
    n = counts["imgname"]
    if n != num_samples:
        raise DatasetError(f"{path}: arrays have {n} samples but {json_path.name} declares num_samples = "
                           f"{num_samples}; they must agree (rewrite the dataset)")
    out = {k: raw[k].astype(np.float32) if ARRAY_SPECS[k][1] == "float" else raw[k] for k in REQUIRED_KEYS}
    _check_values({**out, **{EXTRA_PREFIX + k: v for k, v in extras.items()}}, str(path), "sample")
    out["has_smpl"] = out["has_smpl"].astype(np.uint8)
    names = [str(s) for s in out["imgname"]]
    for i, name in enumerate(names):
        p = PurePosixPath(name)
        if not name or p.is_absolute() or "\\" in name or ".." in p.parts:
            raise DatasetError(f"{path}: imgname[{i}] = {name!r} is not a relative path inside the dataset; "
                               "use e.g. 'images/000000.png'")
    if len(set(names)) != len(names):
        dupes = sorted(name for name, count in Counter(names).items() if count > 1)
        raise DatasetError(f"{path}: imgname lists {listing(dupes)} more than once; each sample needs its own image")
    return out, extras, background


def _check_images(ds: PoseDataset) -> None:
    """Every image exists and is an RGB PNG of the declared size (headers only)."""
    paths = [ds.root / str(name) for name in ds.arrays["imgname"]]
    missing = [str(name) for name, p in zip(ds.arrays["imgname"], paths, strict=True) if not p.is_file()]
    if missing:
        raise DatasetError(f"{ds.root}: {len(missing)} of {len(paths)} image files listed in {ANNOTATIONS_NPZ} "
                           f"(imgname) are missing: {listing(missing)}; restore them or rewrite the dataset")
    for p in paths:
        _open_png(p, ds.image_size).close()


def load_dataset(path: str | os.PathLike, check_images: bool = True) -> PoseDataset:
    """Load and validate a dataset. ``check_images`` also checks every image (headers only, cheap)."""
    root = Path(path)
    require_directory(root, "dataset", DatasetError)
    json_path = root / DATASET_JSON
    doc = _read_json(json_path)
    npz_path = root / ANNOTATIONS_NPZ
    arrays, extras, background = _check_arrays(_read_npz(npz_path), doc["num_samples"], npz_path, json_path)
    ds = PoseDataset(root=root, arrays=arrays, image_size=doc["image_size"], extras=extras,
                     meta=doc.get("meta", {}), created_by=doc.get("created_by", ""), background=background)
    if check_images:
        _check_images(ds)
    return ds


# --------------------------------------------------------------------------------------------------
# Writing


def _check_replaceable(out_dir: Path, overwrite: bool) -> None:
    check_replaceable(out_dir, overwrite, DATASET_JSON, DatasetError, "dataset")


def _dump_json(doc: dict) -> str:
    """One top-level key per line: joint names and meta stay on one line each."""
    lines = [f"  {json.dumps(k)}: {json.dumps(v, allow_nan=False)}" for k, v in doc.items()]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def _numeric(value, name: str, trailing: tuple[int, ...], batch: int | None, where: str, hint: str = "",
             kinds: str = "fiu", alt_trailing: tuple[int, ...] | None = None) -> np.ndarray:
    """``value`` as a float64 array of shape (batch, *trailing), or (1, *trailing) for a single sample;
    trailing axes shaped ``alt_trailing`` (e.g. a pose as (24, 3)) are flattened into ``trailing``."""
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError, RuntimeError) as e:
        raise DatasetError(f"{where}: {name} is not a numeric array ({e}); pass numpy arrays "
                           "(for torch tensors use .detach().cpu().numpy())") from None
    if arr.dtype.kind not in kinds:
        raise DatasetError(f"{where}: {name} has dtype {arr.dtype} but must be numeric (float)")
    if alt_trailing is not None and arr.shape[-len(alt_trailing):] == alt_trailing:
        arr = arr.reshape(*arr.shape[:arr.ndim - len(alt_trailing)], *trailing)
    shape = trailing if batch is None else (batch, *trailing)
    if arr.shape != shape:
        lead = None if batch is None else "B"
        need = _shape_text(trailing, lead) + ("" if batch is None else f" with B = {batch}, the number of images")
        raise DatasetError(f"{where}: {name} has shape {arr.shape} but must be {need}{hint}")
    arr = arr.astype(np.float64)
    return arr[None] if batch is None else arr


class DatasetWriter(StagedDirectoryWriter):
    """Add samples to a new dataset; it appears at ``out_dir`` complete, or not at all.

    Use as a context manager and call :meth:`add` or :meth:`add_batch`. Images go to a hidden
    sibling directory that is renamed into place on a clean exit; on an exception it is deleted and
    an existing dataset at ``out_dir`` is left untouched. With ``overwrite=True`` an existing
    dataset is moved to a backup name, the new one renamed in, and the backup deleted: at every
    moment a complete dataset exists, at ``out_dir`` or, for the instant between the two renames,
    at the backup name (which the loader's error then points to).
    """

    def __init__(self, out_dir: str | os.PathLike, image_size: int, meta: dict | None = None,
                 overwrite: bool = False):
        self.out_dir = Path(out_dir)
        where = f"DatasetWriter({self.out_dir})"
        if not isinstance(image_size, int | np.integer) or isinstance(image_size, bool) or image_size <= 0:
            raise DatasetError(f"{where}: image_size must be a positive integer, the side of the square crops "
                               f"in pixels; got {image_size!r}")
        self.image_size = int(image_size)
        self.meta = check_meta(meta, DatasetError, where)
        self.overwrite = overwrite
        _check_replaceable(self.out_dir, overwrite)
        self._chunks: list[dict[str, np.ndarray]] = []
        self._extra_shapes: dict[str, tuple[int, ...]] | None = None
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def _prepare(self, tmp: Path) -> None:
        (tmp / IMAGES_DIR).mkdir()

    def add(self, image, joints2d, joints3d_cam, pose, betas, K, R, t, visible=None,
            extras: Mapping | None = None, background: str | None = None) -> int:
        """Add one sample; returns its index. Everything is checked before anything is written.

        image: RGB uint8 (S, S, 3); joints2d: (24, 2) crop pixels; joints3d_cam: (24, 3) camera
        coordinates in metres, pelvis at 0; pose: (72,) or (24, 3) SMPL axis-angle, global_orient
        in the world frame; betas: (10,); K, R, t: the crop camera, x_cam = R X + t; visible: (24,)
        bool, False for occluded joints (joints outside the crop are never visible); extras:
        name -> float or (D,) array, stored as ``extra_<name>``; background: the crop's background
        record as JSON (``PoseBatch.background``), so its image can be made again; "" if unknown.
        """
        return self._add(image, joints2d, joints3d_cam, pose, betas, K, R, t, visible, extras, background, None)

    def add_batch(self, images, joints2d, joints3d_cam, pose, betas, K, R, t, visible=None,
                  extras: Mapping | None = None, background: str | Sequence[str] | None = None) -> range:
        """Add B samples at once (the arguments of :meth:`add` with a leading B axis); returns their
        indices. A single camera (K (3, 3), R (3, 3), t (3,)) or background record is shared by all B."""
        where = "DatasetWriter.add_batch"
        try:
            b = len(images)
        except TypeError:
            raise DatasetError(f"{where}: images must be a uint8 array (B, S, S, 3)") from None
        K, R, t = (np.broadcast_to(np.asarray(a), (b, *single)) if np.shape(a) == single else a
                   for a, single in ((K, (3, 3)), (R, (3, 3)), (t, (3,))))
        start = self._count
        self._add(images, joints2d, joints3d_cam, pose, betas, K, R, t, visible, extras, background, b)
        return range(start, self._count)

    def _add(self, images, joints2d, joints3d_cam, pose, betas, K, R, t, visible, extras, background,
             batch: int | None) -> int:
        where = "DatasetWriter.add" if batch is None else "DatasetWriter.add_batch"
        if self._tmp is None:
            raise DatasetError(f"DatasetWriter({self.out_dir}): not open; use `with DatasetWriter(...) as w:`")
        unit = None if batch is None else "batch item"
        size = self.image_size
        imgs = np.asarray(images)
        img_shape = (size, size, 3) if batch is None else (batch, size, size, 3)
        if imgs.dtype != np.uint8:
            raise DatasetError(f"{where}: image dtype is {imgs.dtype} but must be uint8 (0-255); convert with "
                               "(img * 255).round().clip(0, 255).astype(np.uint8)")
        if imgs.shape != img_shape:
            raise DatasetError(f"{where}: image shape is {imgs.shape} but must be {img_shape}: RGB square crops "
                               f"of image_size = {size}" + ("" if batch is None else ", with a leading batch axis"))
        if batch is None:
            imgs = imgs[None]
        n = len(imgs)
        j2d = _numeric(joints2d, "joints2d", (NUM_JOINTS, 2), batch, where, " (SMPL joints, crop pixels)")
        j3d = _numeric(joints3d_cam, "joints3d_cam", (NUM_JOINTS, 3), batch, where,
                       " (SMPL joints, camera coordinates, metres, pelvis at 0)")
        pose_arr = _numeric(pose, "pose", (POSE_DIM,), batch, where,
                            " (SMPL axis-angle: global_orient (3) then body_pose (69))", alt_trailing=(NUM_JOINTS, 3))
        betas_arr = _numeric(betas, "betas", (NUM_BETAS,), batch, where, f" ({NUM_BETAS} SMPL shape coefficients)")
        K_arr = _numeric(K, "K", (3, 3), batch, where)
        R_arr = _numeric(R, "R", (3, 3), batch, where, " (world-to-camera rotation)")
        t_arr = _numeric(t, "t", (3,), batch, where, " (world-to-camera translation, metres)")
        if visible is None:
            vis = np.ones((n, NUM_JOINTS), bool)
        else:
            vis = _numeric(visible, "visible", (NUM_JOINTS,), batch, where, " (one flag per SMPL joint)", "fiub")
            if not ((vis == 0) | (vis == 1)).all():
                raise DatasetError(f"{where}: visible must be bool or 0/1 per joint")
            vis = vis.astype(bool)
        extra = self._check_extras(extras, batch, where)
        records = self._check_background(background, n, batch, where)
        chunk = {
            "part": np.concatenate([j2d, (vis & _in_frame(j2d, size))[..., None]], axis=-1),
            "S": np.concatenate([j3d, np.ones((n, NUM_JOINTS, 1))], axis=-1),
            "pose": pose_arr, "shape": betas_arr, "cam_K": K_arr, "cam_R": R_arr, "cam_t": t_arr,
        }
        chunk = {k: v.astype(np.float32) for k, v in chunk.items()}
        names = {"part": "joints2d", "S": "joints3d_cam", "shape": "betas", "cam_K": "K", "cam_R": "R",
                 "cam_t": "t"}
        _check_values({**chunk, **{f"extras['{k}']": v for k, v in extra.items()}}, where, unit, names)
        chunk["center"], chunk["scale"] = crop_box(chunk["part"], size)
        chunk["has_smpl"] = np.ones(n, np.uint8)
        chunk["imgname"] = np.array([image_name(self._count + i) for i in range(n)])
        for i in range(n):
            Image.fromarray(imgs[i]).save(self._tmp / chunk["imgname"][i], compress_level=PNG_COMPRESS_LEVEL)
        chunk.update({EXTRA_PREFIX + k: v for k, v in extra.items()})
        if records is not None:
            chunk[BACKGROUND] = records
        if self._extra_shapes is None:
            self._extra_shapes = {k: v.shape[1:] for k, v in extra.items()}
        self._chunks.append(chunk)
        self._count += n
        return self._count - 1

    def _check_extras(self, extras: Mapping | None, batch: int | None, where: str) -> dict[str, np.ndarray]:
        if extras is None:
            extras = {}
        if not isinstance(extras, Mapping):
            raise DatasetError(f"{where}: extras must be a dict of name -> per-sample float or (D,) array")
        out = {}
        for key, value in extras.items():
            name = key[len(EXTRA_PREFIX):] if isinstance(key, str) and key.startswith(EXTRA_PREFIX) else key
            if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
                raise DatasetError(f"{where}: extras name {key!r} is not valid; use letters, digits and '_' "
                                   f"(it is stored as '{EXTRA_PREFIX}<name>')")
            if name in out:
                raise DatasetError(f"{where}: extras give {name!r} twice (with and without '{EXTRA_PREFIX}')")
            arr = np.asarray(value) if not isinstance(value, np.ndarray) else value
            if arr.dtype.kind not in "fiub":
                raise DatasetError(f"{where}: extras['{name}'] has dtype {arr.dtype} but must be numeric")
            if batch is None:
                arr = arr[None]
            elif arr.ndim == 0 or len(arr) != batch:
                raise DatasetError(f"{where}: extras['{name}'] has shape {arr.shape} but must be (B,) or (B, D) "
                                   f"with B = {batch}, the number of images")
            if arr.ndim > 2 or (arr.ndim == 2 and arr.shape[1] == 0):
                need = "a float or a (D,) array per sample" if batch is None else "(B,) or (B, D)"
                got = arr.shape[1:] if batch is None else arr.shape
                raise DatasetError(f"{where}: extras['{name}'] has shape {got} but must be {need}")
            out[name] = arr.astype(np.float32)
        if self._extra_shapes is not None:
            got = {k: v.shape[1:] for k, v in out.items()}
            if got != self._extra_shapes:
                want = ", ".join(f"{k} {s}" for k, s in self._extra_shapes.items()) or "none"
                have = ", ".join(f"{k} {s}" for k, s in got.items()) or "none"
                raise DatasetError(f"{where}: extras differ from earlier samples (earlier: {want}; now: {have}); "
                                   "every sample needs the same extras with the same per-sample shape")
        return out

    def _check_background(self, background, n: int, batch: int | None, where: str) -> np.ndarray | None:
        """The (n,) str array of background records, or None if none were given."""
        if background is None:
            return None
        if isinstance(background, str):
            records = [background] * n
        elif batch is not None and isinstance(background, Sequence | np.ndarray):
            records = list(background)
        else:
            raise DatasetError(f"{where}: background must be a str" + ("" if batch is None else " or B str")
                               + f", a background record as JSON (json.dumps(record)); got {type(background).__name__}")
        if len(records) != n:
            raise DatasetError(f"{where}: background has {len(records)} records but must have B = {n}, one per image")
        bad = [i for i, r in enumerate(records) if not _is_record(r)]
        if bad:
            rows = "" if batch is None else f" of batch item(s) {listing(bad)}"
            samples = listing([self._count + i for i in bad])
            raise DatasetError(f'{where}: background{rows} (sample(s) {samples}) is not a JSON object with a "kind": '
                               f"got {str(records[bad[0]])!r:.80}; pass json.dumps of a render.backgrounds record, "
                               'e.g. {"kind": "plain", "colour": [12.0, 200.0, 3.0]}, or "" where it is unknown')
        return np.array(records, dtype=str)

    def _commit(self) -> None:
        where = f"DatasetWriter({self.out_dir})"
        if not self._chunks:
            raise DatasetError(f"{where}: no samples were added; call add or add_batch at least once")
        assert self._tmp is not None
        if any(BACKGROUND in c for c in self._chunks):  # samples added without a record: "" (unknown)
            for c in self._chunks:
                c.setdefault(BACKGROUND, np.full(len(c["imgname"]), "", dtype=str))
        arrays = {k: np.concatenate([c[k] for c in self._chunks]) for k in self._chunks[0]}
        arrays = {**{k: arrays[k] for k in REQUIRED_KEYS}, **{k: v for k, v in arrays.items() if k not in ARRAY_SPECS}}
        np.savez(self._tmp / ANNOTATIONS_NPZ, **arrays)  # type: ignore[arg-type]  # numpy's stub misreads **arrays
        doc = {"format": FORMAT, "version": VERSION, "num_samples": self._count, "image_size": self.image_size,
               "joint_names": list(SMPL_JOINT_NAMES), "created_by": f"posegen {__version__}", "meta": self.meta}
        (self._tmp / DATASET_JSON).write_text(_dump_json(doc), encoding="utf-8")
        load_dataset(self._tmp, check_images=False)  # never produce what the loader would reject
        self._install()

    def _check_target(self, out_dir: Path) -> None:
        _check_replaceable(out_dir, self.overwrite)


def write_dataset(out_dir: str | os.PathLike, batch: PoseBatch, *, extras: Mapping | None = None,
                  meta: dict | None = None, overwrite: bool = False) -> Path:
    """Write a whole dataset in one call from rendered crops and their labels; ``batch.images``
    (N, S, S, 3) uint8 fixes the image size. ``extras`` as for :meth:`DatasetWriter.add_batch`;
    ``batch.background``, when present, is stored as ``background``. Returns ``out_dir``."""
    if not isinstance(batch, PoseBatch):
        raise DatasetError(f"write_dataset: batch must be a PoseBatch (posegen_env.render.crops), got "
                           f"{type(batch).__name__}; for separate arrays use DatasetWriter.add_batch")
    shape = np.shape(batch.images)
    if len(shape) != 4 or shape[1] != shape[2]:
        raise DatasetError(f"write_dataset: images have shape {shape} but must be (N, S, S, 3): square RGB crops")
    if batch.subject is not None:  # which cast subject each crop shows, beside the betas it was posed with
        extras = {"subject": batch.subject, **(extras or {})}
    with DatasetWriter(out_dir, shape[1], meta=meta, overwrite=overwrite) as w:
        w.add_batch(batch.images, batch.joints2d, batch.joints3d, batch.pose, batch.betas, batch.K, batch.R, batch.t,
                    visible=batch.visible, extras=extras, background=batch.background)
    return Path(out_dir)
