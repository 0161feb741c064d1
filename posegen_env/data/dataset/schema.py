"""The dataset format's schema: names, array shapes and dtypes, and the value checks both the
loader and the writer apply, so that the writer never produces what the loader would reject.

docs/dataset_format.md describes every key, unit and convention in prose.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import NamedTuple

import numpy as np

from posegen_env.body.joints import NUM_JOINTS, ROOT_JOINT
from posegen_env.files import PngRules, listing

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


class ArraySpec(NamedTuple):
    trailing: tuple[int, ...]  # shape after the leading sample axis N
    kind: str  # "str", "float" or "uint8" (see DTYPE_KINDS)
    meaning: str  # what the trailing axes hold, for messages


# Required arrays, in the order they are stored.
ARRAY_SPECS: dict[str, ArraySpec] = {
    "imgname": ArraySpec((), "str", "relative image path, e.g. 'images/000000.png'"),
    "center": ArraySpec((2,), "float", "bounding-box centre (x, y) in crop pixels"),
    "scale": ArraySpec((), "float", "bounding-box side / 200"),
    "part": ArraySpec((NUM_JOINTS, 3), "float", f"{NUM_JOINTS} SMPL joints x (x px, y px, confidence)"),
    "S": ArraySpec((NUM_JOINTS, 4), "float", f"{NUM_JOINTS} SMPL joints x (x, y, z in metres, confidence)"),
    "pose": ArraySpec((POSE_DIM,), "float", f"SMPL axis-angle: global_orient (3) + body_pose ({POSE_DIM - 3})"),
    "shape": ArraySpec((NUM_BETAS,), "float", f"{NUM_BETAS} SMPL betas"),
    "has_smpl": ArraySpec((), "uint8", "1 if pose/shape are valid, else 0"),
    "cam_K": ArraySpec((3, 3), "float", "pinhole intrinsics of the crop camera"),
    "cam_R": ArraySpec((3, 3), "float", "world-to-camera rotation"),
    "cam_t": ArraySpec((3,), "float", "world-to-camera translation in metres"),
}
DTYPE_KINDS = {"str": "U", "float": "f", "uint8": "biu"}  # numpy dtype kinds each ArraySpec.kind accepts
REQUIRED_KEYS = tuple(ARRAY_SPECS)
JSON_REQUIRED = ("format", "version", "num_samples", "image_size", "joint_names")
JSON_OPTIONAL = ("meta", "created_by")
NAME_RE = re.compile(r"[A-Za-z0-9_]+")


class DatasetError(ValueError):
    """A dataset (or the data given to the writer) breaks the format; the message says where and how."""


def image_name(index: int) -> str:
    """``imgname`` of sample ``index`` as the writer stores it: images/<index:06d>.png."""
    return f"{IMAGES_DIR}/{index:06d}.png"


def crop_png(image_size: int) -> PngRules:
    """What every crop must be: an RGB PNG of the declared square size."""
    return PngRules(DatasetError, "image", ("RGB",), (image_size, image_size), "every sample needs its image",
                    f"{DATASET_JSON} declares image_size = {image_size} (square {image_size}x{image_size} crops); "
                    "all images must have that size")


def shape_text(trailing: tuple[int, ...], lead: str | None) -> str:
    """A shape as messages write it: (N, 24, 3), or (3,) without a leading axis."""
    dims = ((lead,) if lead is not None else ()) + tuple(str(d) for d in trailing)
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def is_record(text) -> bool:
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


def crop_box(part: np.ndarray, image_size: int) -> tuple[np.ndarray, np.ndarray]:
    """SPIN ``center`` (N, 2) and ``scale`` (N,) from 2D joints (N, 24, >=2): the tight square box
    around the joints inside the image (occluded ones included: they are still part of the person).

    Inside means the pixel-centre convention of camera.py: ``-0.5 <= x, y <= image_size - 0.5``.
    A sample with no joint inside gets the whole crop; the side is at least 1 px so that code
    dividing by the scale never divides by zero.
    """
    xy = np.asarray(part, dtype=np.float64)[..., :2]
    inside: np.ndarray = in_frame(xy, image_size)
    lo = np.where(inside[..., None], xy, np.inf).min(axis=1)
    hi = np.where(inside[..., None], xy, -np.inf).max(axis=1)
    any_in = np.asarray(inside.any(axis=1))
    full = (image_size - 1) / 2.0
    with np.errstate(invalid="ignore"):  # inf - inf in rows without a joint inside; np.where drops them
        center = np.where(any_in[:, None], (lo + hi) / 2.0, full)
        side = np.where(any_in, (hi - lo).max(axis=1), float(image_size))
    side = np.maximum(side, 1.0)
    return center.astype(np.float32), (side / SCALE_UNIT).astype(np.float32)


def in_frame(xy: np.ndarray, image_size: int) -> np.ndarray:
    """Whether each point (..., 2) lies inside a crop of ``image_size`` pixels (pixel-centre convention)."""
    with np.errstate(invalid="ignore"):
        return np.asarray(((xy >= -0.5) & (xy <= image_size - 0.5)).all(axis=-1))


# --------------------------------------------------------------------------------------------------
# Value checks


class Rule(NamedTuple):
    """A per-sample value check: samples whose ``measure`` exceeds ``limit`` break it.

    ``problem`` follows the array's name in the message; {rows} lists the failing samples and {worst}
    is the largest measure.
    """

    key: str | None  # the array it applies to; None: every float array
    measure: Callable[[np.ndarray], np.ndarray]
    problem: str
    limit: float = 0.0


def _confidence_outside(column: int) -> Callable[[np.ndarray], np.ndarray]:
    return lambda a: np.asarray(((a[..., column] < 0) | (a[..., column] > 1)).any(axis=1))


def _orthonormality_error(R: np.ndarray) -> np.ndarray:
    R = R.astype(np.float64)
    return np.abs(R @ np.swapaxes(R, 1, 2) - np.eye(3)).max(axis=(1, 2))


_CONFIDENCE = "confidence (last column) is outside [0, 1]{rows}; use 1 for a visible joint and 0 otherwise"

# In the order they are checked, which decides the message for data with several faults.
RULES: tuple[Rule, ...] = (
    Rule(None, lambda a: ~np.isfinite(a.reshape(len(a), -1)).all(axis=1),
         "has NaN or inf values (or overflows float32){rows}; every value must be finite: fix or drop those samples"),
    Rule("cam_K", lambda K: ~((K[:, 0, 0] > 0) & (K[:, 1, 1] > 0)),
         "has a non-positive focal length{rows}; focal lengths are in pixels and must be > 0"),
    Rule("cam_K", lambda K: np.abs(K[:, 2] - (0.0, 0.0, 1.0)).max(axis=1),
         "last row is not [0, 0, 1]{rows}; K must be a pinhole intrinsics matrix (divide K by K[2, 2] if it is "
         "scaled)", 1e-6),
    Rule("cam_R", _orthonormality_error,
         "is not orthonormal{rows} (|R R^T - I| up to {worst:.3g}); R must be a rotation matrix, world-to-camera, "
         "OpenCV convention", ROTATION_TOL),
    Rule("cam_R", lambda R: np.linalg.det(R.astype(np.float64)) < 0,
         "has determinant -1{rows}, a reflection; R must be a proper rotation (det +1)"),
    Rule("S", lambda S: np.abs(S[:, ROOT_JOINT, :3]).max(axis=1),
         f"is not root-relative{{rows}}: the pelvis (joint {ROOT_JOINT}) is up to {{worst:.3g}} m from 0; subtract "
         "the pelvis from every joint: joints - joints[..., :1, :]", ROOT_TOL),
    Rule("S", lambda S: np.linalg.norm(S[..., :3], axis=-1).max(axis=1),
         f"has joints up to {{worst:.3g}} from the pelvis{{rows}}, more than {MAX_JOINT_DIST} m; 3D joints must be "
         "in metres (divide millimetres by 1000)", MAX_JOINT_DIST),
    Rule("part", _confidence_outside(2), _CONFIDENCE),
    Rule("S", _confidence_outside(3), _CONFIDENCE),
    Rule("scale", lambda s: s <= 0, "is not positive{rows}; scale is the bounding-box side in pixels / 200"),
    Rule("has_smpl", lambda h: (h != 0) & (h != 1), "must be 0 or 1{rows}"),
)


def check_values(arrays: Mapping[str, np.ndarray], where: str, unit: str | None,
                 names: Mapping[str, str] | None = None) -> None:
    """Apply :data:`RULES` to SPIN-keyed arrays with a leading sample axis (any subset of the keys).

    ``unit`` names the rows in messages ("sample", "batch item"; None for a single sample) and
    ``names`` maps keys to the names the caller used (e.g. S -> joints3d_cam).
    """
    names = names or {}
    for rule in RULES:
        if rule.key is None:
            keys = [k for k, a in arrays.items() if a.dtype.kind == "f" and len(a)]
        else:
            keys = [rule.key] if rule.key in arrays else []
        for key in keys:
            measure = rule.measure(arrays[key])
            bad = np.asarray(measure > rule.limit)
            if bad.any():
                rows = "" if unit is None else f" in {unit}(s) {listing(np.nonzero(bad)[0].tolist())}"
                raise DatasetError(f"{where}: {names.get(key, key)} "
                                   + rule.problem.format(rows=rows, worst=measure.max()))
