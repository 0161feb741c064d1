"""ZJU-MoCap's conventions turned into PoseGen's, with no file access: EasyMocap's body transform
to SMPL's and back, and OpenCV lens distortion undone. Kept apart from the reader so that both
directions (reading, and train/export_zju.py writing) share one derivation."""

from __future__ import annotations

import numpy as np
import torch
from scipy.ndimage import map_coordinates
from scipy.spatial.transform import Rotation

from posegen_env.body.body_model import BodyModel
from posegen_env.body.joints import NUM_BODY_JOINTS
from posegen_env.data.capture.schema import SMPL_KEYS

# --------------------------------------------------------------------------------------------------
# EasyMocap's body transform <-> SMPL's


@torch.no_grad()
def rest_root_joint(body: BodyModel, betas: np.ndarray) -> np.ndarray:
    """The root joint J0 (N, 3) of the unposed body for each row of betas (N, B).

    J0 is linear in betas, so the body is evaluated once per shape direction, not per frame.
    """
    betas = np.atleast_2d(np.asarray(betas, dtype=np.float64))
    width = betas.shape[1]
    basis = np.vstack([np.zeros(width), np.eye(width)])
    zeros = np.zeros((len(basis), 3))
    j0 = body(zeros, np.zeros((len(basis), NUM_BODY_JOINTS * 3)), basis).joints[:, 0].cpu().numpy()
    j0 = j0.astype(np.float64)
    return j0[0] + betas @ (j0[1:] - j0[0])


def easymocap_to_smpl(poses: np.ndarray, Rh: np.ndarray, Th: np.ndarray, shapes: np.ndarray,
                      body: BodyModel) -> dict[str, np.ndarray]:
    """SMPL parameters (global_orient, body_pose, betas, transl; (N, .) float32) of EasyMocap's.

    EasyMocap poses the body with all 72 ``poses`` values (root rotation about J0, no translation)
    and then maps it to the world as R(Rh) X + Th. SMPL maps it as R(go) (X0 - J0) + J0 + transl,
    with X0 the body posed without root rotation, so go = Rh o poses[:3] and
    transl = Th + R(Rh) J0 - J0.
    """
    poses, Rh, Th, shapes = (np.asarray(a, dtype=np.float64) for a in (poses, Rh, Th, shapes))
    rot_h = Rotation.from_rotvec(Rh)
    j0 = rest_root_joint(body, shapes)
    return {"global_orient": (rot_h * Rotation.from_rotvec(poses[:, :3])).as_rotvec().astype(np.float32),
            "body_pose": poses[:, 3:].astype(np.float32),
            "betas": shapes.astype(np.float32),
            "transl": (Th + rot_h.apply(j0) - j0).astype(np.float32)}


def smpl_to_easymocap(smpl: dict[str, np.ndarray], body: BodyModel) -> dict[str, np.ndarray]:
    """EasyMocap parameters (poses with a zero root, Rh, Th, shapes; (N, .) float64) of SMPL's."""
    go, bp, betas, transl = (np.atleast_2d(np.asarray(smpl[k], dtype=np.float64)) for k in SMPL_KEYS)
    j0 = rest_root_joint(body, betas)
    return {"poses": np.hstack([np.zeros((len(bp), 3)), bp]), "Rh": go,
            "Th": transl + j0 - Rotation.from_rotvec(go).apply(j0), "shapes": betas}


# --------------------------------------------------------------------------------------------------
# Undistortion


def undistortion_coords(K: np.ndarray, D: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """For every pixel of the undistorted image, where to sample the distorted one: (2, H, W) rows, cols.

    OpenCV's model (k1, k2, p1, p2, k3), the same K before and after, as ``cv2.undistort``. Done
    with numpy and scipy, already dependencies, since OpenCV's wheel is tens of MB for one remap.
    """
    height, width = size_hw
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    K_inv = np.linalg.inv(K)
    x = K_inv[0, 0] * u + K_inv[0, 1] * v + K_inv[0, 2]
    y = K_inv[1, 1] * v + K_inv[1, 2]
    k1, k2, p1, p2, k3 = np.asarray(D, dtype=np.float64)
    r2 = x * x + y * y
    radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return np.stack([K[1, 1] * yd + K[1, 2], K[0, 0] * xd + K[0, 1] * yd + K[0, 2]]).astype(np.float32)


def remap(image: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """``image`` (H, W) or (H, W, C) sampled bilinearly at ``coords`` (2, H, W); black outside."""
    sample = lambda channel: map_coordinates(channel, coords, order=1, mode="constant", cval=0.0)  # noqa: E731
    data = image.astype(np.float32)
    if data.ndim == 2:
        return sample(data)
    return np.stack([sample(data[..., c]) for c in range(data.shape[-1])], axis=-1)
