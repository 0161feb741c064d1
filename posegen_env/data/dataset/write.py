"""Writing a dataset: samples are checked as they are added, images streamed into a hidden sibling
directory, and the whole renamed into place only once complete, so no reader ever sees a
half-written dataset."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image

from posegen_env import __version__
from posegen_env.body.joints import NUM_JOINTS, SMPL_JOINT_NAMES
from posegen_env.data.dataset.read import load_dataset
from posegen_env.data.dataset.schema import (
    ANNOTATIONS_NPZ,
    ARRAY_SPECS,
    BACKGROUND,
    DATASET_JSON,
    EXTRA_PREFIX,
    FORMAT,
    IMAGES_DIR,
    NAME_RE,
    NUM_BETAS,
    POSE_DIM,
    REQUIRED_KEYS,
    VERSION,
    DatasetError,
    check_values,
    crop_box,
    image_name,
    in_frame,
    is_record,
    shape_text,
)
from posegen_env.files import StagedDirectoryWriter, check_meta, dump_json, listing
from posegen_env.render.step import PoseBatch

PNG_COMPRESS_LEVEL = 1  # fast to write; crops are small, so size hardly matters

class Input(NamedTuple):
    trailing: tuple[int, ...]  # shape of one sample
    hint: str  # what it holds, for messages
    alt_trailing: tuple[int, ...] | None = None  # another shape accepted and flattened into ``trailing``


# The writer's numeric arguments, in the order they are checked.
INPUTS: dict[str, Input] = {
    "joints2d": Input((NUM_JOINTS, 2), " (SMPL joints, crop pixels)"),
    "joints3d_cam": Input((NUM_JOINTS, 3), " (SMPL joints, camera coordinates, metres, pelvis at 0)"),
    "pose": Input((POSE_DIM,), " (SMPL axis-angle: global_orient (3) then body_pose (69))", (NUM_JOINTS, 3)),
    "betas": Input((NUM_BETAS,), f" ({NUM_BETAS} SMPL shape coefficients)"),
    "K": Input((3, 3), ""),
    "R": Input((3, 3), " (world-to-camera rotation)"),
    "t": Input((3,), " (world-to-camera translation, metres)"),
    "visible": Input((NUM_JOINTS,), " (one flag per SMPL joint)"),
}
# The stored arrays that hold a writer argument under another name, which messages use.
STORED_AS = {"part": "joints2d", "S": "joints3d_cam", "shape": "betas", "cam_K": "K", "cam_R": "R", "cam_t": "t"}


def _numeric(value, name: str, batch: int | None, where: str, kinds: str = "fiu") -> np.ndarray:
    """Argument ``name`` as a float64 array of shape (batch, *trailing), or (1, *trailing) for a single
    sample, with the shapes of ``INPUTS[name]``."""
    trailing, hint, alt_trailing = INPUTS[name]
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
        need = shape_text(trailing, lead) + ("" if batch is None else f" with B = {batch}, the number of images")
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

    _kind, _marker, _error = "dataset", DATASET_JSON, DatasetError

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
        self._check_target(self.out_dir)
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
        imgs = self._check_images(images, batch, where)
        n = len(imgs)
        given = {"joints2d": joints2d, "joints3d_cam": joints3d_cam, "pose": pose, "betas": betas, "K": K, "R": R,
                 "t": t}
        args = {name: _numeric(value, name, batch, where) for name, value in given.items()}
        if visible is None:
            vis = np.ones((n, NUM_JOINTS), bool)
        else:
            vis = _numeric(visible, "visible", batch, where, "fiub")
            if not ((vis == 0) | (vis == 1)).all():
                raise DatasetError(f"{where}: visible must be bool or 0/1 per joint")
            vis = vis.astype(bool)
        extra = self._check_extras(extras, batch, where)
        records = self._check_background(background, n, batch, where)
        j2d = args["joints2d"]
        chunk = {"part": np.concatenate([j2d, (vis & in_frame(j2d, self.image_size))[..., None]], axis=-1),
                 "S": np.concatenate([args["joints3d_cam"], np.ones((n, NUM_JOINTS, 1))], axis=-1)}
        chunk.update({key: args[STORED_AS.get(key, key)] for key in ("pose", "shape", "cam_K", "cam_R", "cam_t")})
        chunk = {k: v.astype(np.float32) for k, v in chunk.items()}
        check_values({**chunk, **{f"extras['{k}']": v for k, v in extra.items()}}, where,
                     None if batch is None else "batch item", STORED_AS)
        chunk["center"], chunk["scale"] = crop_box(chunk["part"], self.image_size)
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

    def _check_images(self, images, batch: int | None, where: str) -> np.ndarray:
        """The images as uint8 (n, S, S, 3)."""
        size = self.image_size
        imgs = np.asarray(images)
        img_shape = (size, size, 3) if batch is None else (batch, size, size, 3)
        if imgs.dtype != np.uint8:
            raise DatasetError(f"{where}: image dtype is {imgs.dtype} but must be uint8 (0-255); convert with "
                               "(img * 255).round().clip(0, 255).astype(np.uint8)")
        if imgs.shape != img_shape:
            raise DatasetError(f"{where}: image shape is {imgs.shape} but must be {img_shape}: RGB square crops "
                               f"of image_size = {size}" + ("" if batch is None else ", with a leading batch axis"))
        return imgs[None] if batch is None else imgs

    def _check_extras(self, extras: Mapping | None, batch: int | None, where: str) -> dict[str, np.ndarray]:
        if extras is None:
            extras = {}
        if not isinstance(extras, Mapping):
            raise DatasetError(f"{where}: extras must be a dict of name -> per-sample float or (D,) array")
        out = {}
        for key, value in extras.items():
            name = key[len(EXTRA_PREFIX):] if isinstance(key, str) and key.startswith(EXTRA_PREFIX) else key
            if not isinstance(name, str) or not NAME_RE.fullmatch(name):
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
        bad = [i for i, r in enumerate(records) if not is_record(r)]
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
        # one top-level key per line: joint names and meta stay on one line each
        (self._tmp / DATASET_JSON).write_text(dump_json(doc, depth=1), encoding="utf-8")
        load_dataset(self._tmp, check_images=False)  # never produce what the loader would reject
        self._install()


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
