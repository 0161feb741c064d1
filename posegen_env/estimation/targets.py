"""Ground truth in an estimator's own joint set, from the labels PoseGen renders with every crop.

SMPL's 24 joints are stored with each crop; any other set (H36M-17, COCO-17, ...) is computed by
posing the body again with the crop's stored pose and shape and turning it into the crop
camera's axes (``body.joint_sets.ground_truth``), so one rendered dataset serves every estimator.
"""

from __future__ import annotations

from typing import overload

import numpy as np
import torch

from posegen_env.body.joint_sets import JOINT_SETS, JointSet, ground_truth
from posegen_env.body.joints import SMPL_JOINT_NAMES
from posegen_env.data.dataset import PoseData
from posegen_env.render.step import PoseBatch, PoseTensors


def is_smpl24(joint_set: JointSet) -> bool:
    return tuple(joint_set.joints) == SMPL_JOINT_NAMES and tuple(joint_set.root) == JOINT_SETS["smpl24"].root \
        and joint_set.regressor is None


@overload
def targets(joint_set: JointSet, batch: PoseBatch, body) -> np.ndarray: ...
@overload
def targets(joint_set: JointSet, batch: PoseTensors, body) -> torch.Tensor: ...
def targets(joint_set: JointSet, batch: PoseBatch | PoseTensors, body) -> np.ndarray | torch.Tensor:
    """Root-relative camera-frame joints (N, J, 3) in metres in ``joint_set`` for the crops of ``batch``;
    ``body`` is the body model they were rendered with (unused for SMPL-24, which is stored). A batch
    of tensors (the environment's step) gives a tensor on its device."""
    if is_smpl24(joint_set):
        return batch.joints3d
    if body is None:
        raise ValueError(f"ground truth in the {joint_set.name} joint set needs the body model the data were "
                         "rendered with")
    return ground_truth(joint_set, body, batch.pose, batch.betas, batch.R)


def training_data(joint_set: JointSet, batch: PoseBatch, body) -> PoseData:
    """``batch`` as training data for an estimator of ``joint_set``: its targets, and every label."""
    return PoseData(batch.images, targets(joint_set, batch, body), batch)
