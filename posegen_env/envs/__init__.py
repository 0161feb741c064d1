"""The environment layer: ``PoseGen-v0``, its batched vector version and what one step does.

``action_space`` maps an action to a body and camera, ``task`` renders and scores a batch of
them, ``reward`` shapes the error, ``env`` and ``vector_env`` are the Gymnasium faces.
"""

from posegen_env.envs.action_space import ACTION_DIM, decode, encode, uniform_actions
from posegen_env.envs.env import PoseGenEnv
from posegen_env.envs.reward import RewardConfig
from posegen_env.envs.task import PoseGenTask
from posegen_env.envs.vector_env import PoseGenVectorEnv
from posegen_env.render.step import Sample, StepResult

__all__ = [
    "ACTION_DIM",
    "PoseGenEnv",
    "PoseGenTask",
    "PoseGenVectorEnv",
    "RewardConfig",
    "Sample",
    "StepResult",
    "decode",
    "encode",
    "uniform_actions",
]
