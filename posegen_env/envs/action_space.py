"""The policy's action: a vector in [-1, 1]^85 that decodes to one full sample (pose, shape, camera).

Layout (documented in docs/environment.md):

=========  ====  =================================================================================
slice      size  meaning
=========  ====  =================================================================================
0:69       69    body pose, one entry per axis-angle component: ``a`` maps linearly onto the joint's
                 range widened by ``LIMIT_MARGIN`` on each side, so ``|a| <= 1 / (1 + margin)`` is
                 exactly the joint limits; the overshoot is clipped for rendering and penalised in the
                 reward, which gives optimisers a slope at the limits instead of a wall.
69:71      2     root tilt of the whole body: pitch (forward/backward, +-90 deg) and roll (sideways,
                 +-90 deg). The heading is the camera azimuth, so it is not repeated here.
71:75      4     camera orbiting the pelvis: azimuth (full circle), elevation (uniform on the sphere
                 between -60 and +85 deg: ``a`` is linear in sin(elevation)), distance (log-uniform,
                 1.5-12 m) and roll (+-30 deg).
75:85      10    body shape: betas = 2.5 ``a`` (within +-2.5 standard deviations).
85:        0-2   optional choices (``CHOICES``), in this order, each one component present only when the
                 environment is made with ``choose=`` naming it: ``subject`` picks one of the subjects
                 the environment draws from, ``background`` one background style (plain, a texture
                 kind, photos) of its mix. ``[-1, 1]`` is cut into equal bins, one per option
                 (``choice_index``); ``choice_action`` is the inverse. Without a choice the
                 environment draws it (uniformly over the training subjects; the mix's weights).
=========  ====  =================================================================================

The field of view is fixed (``FOV_DEG``): crops are centred on the person, so only the camera's
position and roll change the image. ``encode`` is the inverse of ``decode`` (up to clipping), so
samples of any distribution, e.g. the base one, can be expressed as actions.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from posegen_env.body.pose_space import BODY_POSE_DIM, BODY_POSE_HIGH, BODY_POSE_LOW, clip_to_limits, limit_violation
from posegen_env.distributions import NUM_BETAS
from posegen_env.render.camera import REFERENCE_WIDTH, CameraParams, focal_from_fov
from posegen_env.render.step import Sample

LIMIT_MARGIN = 0.1  # the pose part of the action reaches this fraction of each range beyond the limits
ROOT_TILT_DEG = 90.0
AZIMUTH_DEG = (-180.0, 180.0)
ELEVATION_DEG = (-60.0, 85.0)
DISTANCE_M = (1.5, 12.0)
CAMERA_ROLL_DEG = 30.0
BETAS_RANGE = 2.5
FOV_DEG = 45.0

POSE_SLICE = slice(0, BODY_POSE_DIM)
ROOT_SLICE = slice(69, 71)
CAMERA_SLICE = slice(71, 75)
BETAS_SLICE = slice(75, 75 + NUM_BETAS)
ACTION_DIM = 75 + NUM_BETAS  # without choices
CHOICES = ("subject", "background")
POSE_INSIDE_LIMITS = 1.0 / (1.0 + LIMIT_MARGIN)  # |a| up to this keeps a pose component inside its limit

_CENTRE = (BODY_POSE_HIGH + BODY_POSE_LOW) / 2.0
_HALF = (BODY_POSE_HIGH - BODY_POSE_LOW) / 2.0 * (1.0 + LIMIT_MARGIN)
_SIN_EL = np.sin(np.deg2rad(ELEVATION_DEG))
_LOG_DIST = np.log(DISTANCE_M)


def _lerp(a: np.ndarray, lo_hi) -> np.ndarray:
    lo, hi = lo_hi
    return lo + (a + 1.0) * 0.5 * (hi - lo)


def _unlerp(x: np.ndarray, lo_hi) -> np.ndarray:
    lo, hi = lo_hi
    return 2.0 * (np.asarray(x) - lo) / (hi - lo) - 1.0


def check_choose(choose: str | Iterable[str] | None) -> tuple[str, ...]:
    """The optional action components as a tuple in ``CHOICES`` order ("subject,background" is accepted)."""
    names = [c.strip() for c in choose.split(",") if c.strip()] if isinstance(choose, str) else list(choose or ())
    unknown = [c for c in names if c not in CHOICES]
    if unknown or len(set(names)) != len(names):
        raise ValueError(f"choose must name each of {CHOICES} at most once, got {choose!r}")
    return tuple(c for c in CHOICES if c in names)


def choose_list(text: str) -> list[str]:
    """A command line's ``--choose`` ("subject,background") as a checked list."""
    return list(check_choose(text))


def action_dim(choose: str | Iterable[str] | None = ()) -> int:
    """The action's length with the choices ``choose`` appended."""
    return ACTION_DIM + len(check_choose(choose))


def choice_index(a: np.ndarray, count: int) -> np.ndarray:
    """Which of ``count`` options choice components in [-1, 1] pick: equal bins, the last one closed."""
    return np.minimum(((np.asarray(a, np.float64) + 1.0) * 0.5 * count).astype(np.int64), count - 1)


def choice_action(index, count: int) -> np.ndarray:
    """The component value at the centre of option ``index``'s bin (the inverse of ``choice_index``)."""
    index = np.asarray(index)
    if index.dtype.kind not in "iu" or ((index < 0) | (index >= count)).any():
        raise ValueError(f"option index {index.tolist()} out of range; there are {count} options, 0..{count - 1}")
    return -1.0 + (2.0 * index + 1.0) / count


def as_numbers(actions) -> np.ndarray:
    """``actions`` (an array, a list or a torch tensor, with or without grad) as a float64 array, else a
    ValueError naming what was passed."""
    if torch.is_tensor(actions):
        actions = actions.detach().cpu().numpy()
    if np.iscomplexobj(actions):
        raise ValueError("actions must be real numbers in [-1, 1], got complex values; pass their real part if "
                         "that is what the policy means")
    try:
        a = np.asarray(actions, dtype=np.float64)
    except (TypeError, ValueError):
        a = None
    if a is None or isinstance(actions, dict | str | bytes):
        raise ValueError(f"actions must be numbers (a numpy array, list or torch tensor in [-1, 1]), got "
                         f"{type(actions).__name__}")
    return a


def check_actions(actions, dim: int = ACTION_DIM) -> np.ndarray:
    """``actions`` as a float64 (N, dim) array, else a ValueError that says what is wrong."""
    a = as_numbers(actions)
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2 or a.shape[1] != dim:
        extra = "" if dim == ACTION_DIM else f" ({ACTION_DIM} body and camera components plus {dim - ACTION_DIM} " \
                                             "choices)"
        raise ValueError(f"actions must have shape ({dim},) or (N, {dim}){extra}, got {np.shape(actions)}")
    bad = ~np.isfinite(a).all(axis=1)
    if bad.any():
        raise ValueError(f"actions {np.flatnonzero(bad)[:5].tolist()} contain NaN or inf; every component must be "
                         "a finite number in [-1, 1]")
    outside = (np.abs(a) > 1.0 + 1e-6).any(axis=1)
    if outside.any():
        raise ValueError(f"actions {np.flatnonzero(outside)[:5].tolist()} leave the action box [-1, 1] (largest "
                         f"|a| = {np.abs(a).max():.3g}); clip or squash the policy output into [-1, 1]")
    return np.clip(a, -1.0, 1.0)


def decode(actions, choose: str | Iterable[str] | None = ()) -> Sample:
    """Map actions in [-1, 1] to samples (see the module docstring for the layout); ``choose``: the
    choices the actions carry after the first ``ACTION_DIM`` components."""
    choose = check_choose(choose)
    a = check_actions(actions, ACTION_DIM + len(choose))
    n = len(a)
    raw_pose = _CENTRE + a[:, POSE_SLICE] * _HALF
    tilt = a[:, ROOT_SLICE] * ROOT_TILT_DEG
    global_orient = Rotation.from_euler("XZ", tilt, degrees=True).as_rotvec() if n else np.zeros((0, 3))
    cam = a[:, CAMERA_SLICE]
    cameras = CameraParams(
        azimuth_deg=_lerp(cam[:, 0], AZIMUTH_DEG),
        elevation_deg=np.rad2deg(np.arcsin(_lerp(cam[:, 1], _SIN_EL))),
        distance=np.exp(_lerp(cam[:, 2], _LOG_DIST)),
        roll_deg=cam[:, 3] * CAMERA_ROLL_DEG,
        focal_px=np.full(n, focal_from_fov(FOV_DEG, REFERENCE_WIDTH)),
    )
    return Sample(global_orient.reshape(n, 3), clip_to_limits(raw_pose), a[:, BETAS_SLICE] * BETAS_RANGE,
                  cameras, limit_violation(raw_pose), {c: a[:, ACTION_DIM + k] for k, c in enumerate(choose)})


def encode(poses: dict, cameras: CameraParams) -> np.ndarray:
    """Actions that decode to (nearly) these samples: the inverse of ``decode``.

    The body's heading (its yaw about the vertical) moves into the camera azimuth; anything the
    action box cannot express (a tilt beyond +-90 deg, a camera out of range, extreme betas) is
    clipped to the nearest expressible value.
    """
    bp = np.asarray(poses["body_pose"], np.float64).reshape(-1, BODY_POSE_DIM)
    n = len(bp)
    if len(cameras) != n:
        raise ValueError(f"{n} poses but {len(cameras)} cameras; pass one camera per pose")
    with warnings.catch_warnings():  # gimbal lock (tilt of exactly 90 deg) only makes yaw and roll ambiguous
        warnings.simplefilter("ignore", UserWarning)
        rotvec = np.asarray(poses["global_orient"], np.float64).reshape(n, 3)
        yaw, pitch, roll = Rotation.from_rotvec(rotvec).as_euler("YXZ", degrees=True).T if n else np.zeros((3, 0))
    betas = np.zeros((n, NUM_BETAS))
    given = np.asarray(poses["betas"], np.float64).reshape(n, -1)[:, :NUM_BETAS]
    betas[:, :given.shape[1]] = given
    azimuth = (cameras.azimuth_deg - yaw + 180.0) % 360.0 - 180.0
    a = np.concatenate([
        (bp - _CENTRE) / _HALF,
        np.stack([pitch, roll], axis=1) / ROOT_TILT_DEG,
        np.stack([_unlerp(azimuth, AZIMUTH_DEG),
                  _unlerp(np.sin(np.deg2rad(cameras.elevation_deg)), _SIN_EL),
                  _unlerp(np.log(cameras.distance), _LOG_DIST),
                  cameras.roll_deg / CAMERA_ROLL_DEG], axis=1),
        betas / BETAS_RANGE], axis=1)
    return np.clip(a, -1.0, 1.0)


def uniform_actions(n: int, rng: np.random.Generator, dim: int = ACTION_DIM) -> np.ndarray:
    """Uniform over the action box with the pose part inside the joint limits (the ``random`` policy);
    ``dim`` > ``ACTION_DIM`` adds uniform choice components."""
    a = rng.uniform(-1.0, 1.0, size=(n, dim))
    a[:, POSE_SLICE] *= POSE_INSIDE_LIMITS
    return a
