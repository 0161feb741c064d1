"""The types of one environment step, from the decoded sample to its result, in one place.

``Sample`` (what an action decodes to) -> ``PoseTensors`` (the rendered crops and their labels,
on the device that rendered them) -> ``StepResult`` (with the estimate and the reward, numpy at
the boundary). ``PoseBatch`` is the crops and labels in numpy, as datasets hold them. The batch
of cameras a step renders with is ``render.cameras.Cameras``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
import torch

from posegen_env.render.camera import CameraParams


@dataclass
class Sample:
    """N decoded samples: what gets rendered, plus how far the raw pose left the joint limits."""

    global_orient: np.ndarray  # (N, 3) axis-angle, world
    body_pose: np.ndarray  # (N, 69), inside the joint limits
    betas: np.ndarray  # (N, 10)
    cameras: CameraParams
    limit_violation: np.ndarray  # (N,) radians outside the limits before clipping
    choices: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (N,) component in [-1, 1]

    def poses(self) -> dict[str, np.ndarray]:
        return {"global_orient": self.global_orient, "body_pose": self.body_pose, "betas": self.betas}


@dataclass
class PoseBatch:
    """N labelled crops. joints3d are root-relative camera-frame metres; joints2d are crop pixels."""

    images: np.ndarray  # (N, S, S, 3) uint8
    joints3d: np.ndarray  # (N, 24, 3)
    joints2d: np.ndarray  # (N, 24, 2)
    visible: np.ndarray  # (N, 24) bool: joint projects inside the crop
    pose: np.ndarray  # (N, 72) global_orient (world) + body_pose
    betas: np.ndarray  # (N, 10)
    K: np.ndarray  # (N, 3, 3) crop camera
    R: np.ndarray  # (N, 3, 3)
    t: np.ndarray  # (N, 3)
    background: np.ndarray | None = None  # (N,) str: each crop's background record as JSON (render.backgrounds)
    subject: np.ndarray | None = None  # (N,) int: the cast subject each crop shows (a cast's renders only)

    def __len__(self) -> int:
        return len(self.images)

    def select(self, index) -> PoseBatch:
        """The samples at ``index`` (indices, a boolean mask or a slice), as a new batch."""
        values: list[Any] = [None if (v := getattr(self, f.name)) is None else v[index] for f in fields(PoseBatch)]
        return PoseBatch(*values)

    @staticmethod
    def concat(parts: list[PoseBatch]) -> PoseBatch:
        """One batch of all parts; an optional field is kept only if every part has it."""
        columns = ([getattr(p, f.name) for p in parts] for f in fields(PoseBatch))
        values: list[Any] = [None if any(v is None for v in c) else np.concatenate(c) for c in columns]
        return PoseBatch(*values)


@dataclass
class PoseTensors:
    """``PoseBatch`` as tensors on the device that rendered it (the environment step's form); the
    background records and nothing else stay on the CPU. ``numpy()`` converts at the boundary."""

    images: torch.Tensor  # (N, S, S, 3) uint8
    joints3d: torch.Tensor  # (N, 24, 3) float32
    joints2d: torch.Tensor
    visible: torch.Tensor  # (N, 24) bool
    pose: torch.Tensor  # (N, 72) float32
    betas: torch.Tensor
    K: torch.Tensor
    R: torch.Tensor
    t: torch.Tensor
    background: np.ndarray | None = None
    subject: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.images)

    def select(self, index) -> PoseTensors:
        """The samples at ``index`` (indices or a boolean mask, a tensor or an array), as a new batch."""
        rows = torch.as_tensor(index, device=self.images.device)
        picked: dict[str, Any] = {f.name: None if (v := getattr(self, f.name)) is None else v[rows]
                                  for f in fields(PoseTensors) if f.name != "background"}
        background = None if self.background is None else self.background[rows.cpu().numpy()]
        return PoseTensors(**picked, background=background)

    def numpy(self) -> PoseBatch:
        values = {f.name: v.cpu().numpy() if torch.is_tensor(v := getattr(self, f.name)) else v
                  for f in fields(PoseTensors)}
        return PoseBatch(**values)

    @staticmethod
    def concat(parts: list[PoseTensors]) -> PoseTensors:
        """One batch of all parts; an optional field is kept only if every part has it."""
        values: dict[str, Any] = {}
        for f in fields(PoseTensors):
            column = [getattr(p, f.name) for p in parts]
            join = np.concatenate if f.name == "background" else torch.cat
            values[f.name] = None if any(v is None for v in column) else join(column)
        return PoseTensors(**values)


@dataclass
class StepResult:
    """Everything about N evaluated samples: rendered data, the estimator's output and the reward."""

    sample: Sample
    tensors: PoseTensors  # images and exact labels on the task's device (``data`` is their numpy copy)
    predicted: np.ndarray  # (N, J, 3) root-relative camera-frame metres, the estimator's joint set (NaN: none found)
    mpjpe_mm: np.ndarray  # (N,) on its set's evaluation joints; ``no_detection_mm`` where it found no person
    pa_mpjpe_mm: np.ndarray
    penetration_m: np.ndarray
    plausible: np.ndarray  # (N,) bool: limbs interpenetrate no deeper than the reward tolerates
    reward: np.ndarray
    detected: np.ndarray  # (N,) bool: the estimator returned a pose (False only in examine mode)

    def __len__(self) -> int:
        return len(self.reward)

    @functools.cached_property
    def data(self) -> PoseBatch:
        """Images and exact labels in numpy (a ``PoseBatch``), copied from the device when
        first asked for: an agent that learns from the reward alone never moves the images."""
        return self.tensors.numpy()

    @functools.cached_property
    def _labels(self) -> PoseBatch:
        """``data`` without the images (zero-size placeholders), for the info dicts."""
        images = self.tensors.images
        return replace(self.tensors, images=images.new_zeros((len(images), 0, 0, 3))).numpy()

    def _columns(self) -> dict:
        """Every info key as one array over the N samples (the camera as a dict of them): the single
        source that ``info`` reads rows from and ``infos`` hands to the vector env whole."""
        cameras, labels = self.sample.cameras, self._labels
        return {
            "global_orient": self.sample.global_orient, "body_pose": self.sample.body_pose,
            "betas": self.sample.betas,
            "camera": cameras.as_dict() | {"fov_deg": cameras.fov_deg},
            "K": labels.K, "R": labels.R, "t": labels.t,
            "joints3d": labels.joints3d, "joints2d": labels.joints2d,
            "predicted_joints3d": self.predicted, "detected": self.detected,
            "mpjpe_mm": self.mpjpe_mm.astype(np.float64), "pa_mpjpe_mm": self.pa_mpjpe_mm.astype(np.float64),
            "limit_violation": self.sample.limit_violation.astype(np.float64),
            "penetration_m": self.penetration_m.astype(np.float64),
            # -1 without a cast; the background as render.backgrounds records it (JSON)
            "subject": np.full(len(self), -1) if labels.subject is None else labels.subject,
            "background": labels.background if labels.background is not None else np.full(len(self), ""),
        }

    def info(self, i: int) -> dict:
        """The whole i-th sample as plain arrays and floats, ready to be saved (the env's ``info``)."""
        return _row(self._columns(), i)

    def infos(self) -> dict:
        """All N samples in Gymnasium's vector ``info`` layout, built from the arrays without per-sample
        dicts: each key an array over the samples (the camera a dict of them) with a boolean ``_key``
        mask beside it, all True since every sample has every key."""
        present = np.ones(len(self), bool)
        infos = {}
        for key, column in self._columns().items():
            infos[key], infos[f"_{key}"] = column, present.copy()
        return infos


def _row(columns: dict, i: int) -> dict:
    """Row ``i`` of ``columns``: arrays stay arrays, a column of one number per sample gives a float."""
    return {key: _cell(column, i) for key, column in columns.items()}


def _cell(column: dict | np.ndarray, i: int) -> dict | np.ndarray | float | int | bool | str:
    if isinstance(column, dict):
        return _row(column, i)
    if column.ndim > 1:
        return column[i]
    if column.dtype.kind in "US":
        return str(column[i])
    if column.dtype.kind == "b":
        return bool(column[i])
    return int(column[i]) if column.dtype.kind in "iu" else float(column[i])
