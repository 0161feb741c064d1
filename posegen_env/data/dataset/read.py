"""Reading a dataset: everything is checked up front, since a broken dataset would otherwise surface
only once training is under way, and every failure names the file, the problem and the fix."""

from __future__ import annotations

import os
import zipfile
import zlib
from collections import Counter
from pathlib import Path, PurePosixPath

import numpy as np

from posegen_env.body.joints import NUM_JOINTS, SMPL_JOINT_NAMES
from posegen_env.data.dataset.data import PoseDataset
from posegen_env.data.dataset.schema import (
    ANNOTATIONS_NPZ,
    ARRAY_SPECS,
    BACKGROUND,
    DATASET_JSON,
    DTYPE_KINDS,
    EXTRA_PREFIX,
    FORMAT,
    JSON_OPTIONAL,
    JSON_REQUIRED,
    NAME_RE,
    REQUIRED_KEYS,
    VERSION,
    DatasetError,
    check_values,
    crop_png,
    shape_text,
)
from posegen_env.files import listing, open_png, read_json_header, require_directory


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
    """Keys, shapes, dtypes and sample counts of the annotation arrays, then :func:`check_values`;
    returns (required, extras, background or None)."""
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
            raise DatasetError(f"{path}: {key} has shape {arr.shape} but must be {shape_text(trailing, 'N')}: "
                               f"{meaning}")
        if arr.dtype.kind not in DTYPE_KINDS[kind]:
            raise DatasetError(f"{path}: {key} has dtype {arr.dtype} but must be {kind}"
                               + (" (float32)" if kind == "float" else ""))
    extras = {}
    for key in sorted(k for k in raw if k.startswith(EXTRA_PREFIX)):
        arr = raw[key]
        name = key[len(EXTRA_PREFIX):]
        if not NAME_RE.fullmatch(name):
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
    out = {k: raw[k].astype(np.float32) if ARRAY_SPECS[k].kind == "float" else raw[k] for k in REQUIRED_KEYS}
    check_values({**out, **{EXTRA_PREFIX + k: v for k, v in extras.items()}}, str(path), "sample")
    out["has_smpl"] = out["has_smpl"].astype(np.uint8)
    _check_image_names([str(s) for s in out["imgname"]], path)
    return out, extras, background


def _check_image_names(names: list[str], path: Path) -> None:
    for i, name in enumerate(names):
        p = PurePosixPath(name)
        if not name or p.is_absolute() or "\\" in name or ".." in p.parts:
            raise DatasetError(f"{path}: imgname[{i}] = {name!r} is not a relative path inside the dataset; "
                               "use e.g. 'images/000000.png'")
    if len(set(names)) != len(names):
        dupes = sorted(name for name, count in Counter(names).items() if count > 1)
        raise DatasetError(f"{path}: imgname lists {listing(dupes)} more than once; each sample needs its own image")


def _check_images(ds: PoseDataset) -> None:
    """Every image exists and is an RGB PNG of the declared size (headers only)."""
    paths = [ds.root / str(name) for name in ds.arrays["imgname"]]
    missing = [str(name) for name, p in zip(ds.arrays["imgname"], paths, strict=True) if not p.is_file()]
    if missing:
        raise DatasetError(f"{ds.root}: {len(missing)} of {len(paths)} image files listed in {ANNOTATIONS_NPZ} "
                           f"(imgname) are missing: {listing(missing)}; restore them or rewrite the dataset")
    rules = crop_png(ds.image_size)
    for p in paths:
        open_png(p, rules).close()


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
