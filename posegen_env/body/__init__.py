"""The body layer: SMPL's joints, the body model, the space of plausible poses and a library of them.

Everything above renders, samples or scores bodies defined here; nothing here knows about images.
"""

from posegen_env.body.body_model import BodyModel, BodyModelError, BodyOutput, load_body_model
from posegen_env.body.joints import (
    EVAL_JOINT_NAMES,
    EVAL_JOINTS,
    JOINT_INDEX,
    MIRROR_JOINTS,
    NUM_BODY_JOINTS,
    NUM_JOINTS,
    ROOT_JOINT,
    SMPL_JOINT_NAMES,
    SMPL_PARENTS,
)
from posegen_env.body.plausibility import penetration_depth
from posegen_env.body.pose_library import (
    get_pose,
    interpolate_poses,
    library_array,
    mirror_pose,
    pose_from_degrees,
    pose_names,
)
from posegen_env.body.pose_space import (
    BODY_POSE_DIM,
    BODY_POSE_HIGH,
    BODY_POSE_LOW,
    JOINT_LIMITS_DEG,
    clip_to_limits,
    is_within_limits,
    limit_violation,
)
from posegen_env.body.subjects import subject_betas

__all__ = [
    "BODY_POSE_DIM",
    "BODY_POSE_HIGH",
    "BODY_POSE_LOW",
    "BodyModel",
    "BodyModelError",
    "BodyOutput",
    "EVAL_JOINTS",
    "EVAL_JOINT_NAMES",
    "JOINT_INDEX",
    "JOINT_LIMITS_DEG",
    "MIRROR_JOINTS",
    "NUM_BODY_JOINTS",
    "NUM_JOINTS",
    "ROOT_JOINT",
    "SMPL_JOINT_NAMES",
    "SMPL_PARENTS",
    "clip_to_limits",
    "get_pose",
    "interpolate_poses",
    "is_within_limits",
    "library_array",
    "limit_violation",
    "load_body_model",
    "mirror_pose",
    "penetration_depth",
    "pose_from_degrees",
    "pose_names",
    "subject_betas",
]
