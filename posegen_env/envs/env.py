"""``PoseGen-v0``: one step renders one sample chosen by the policy and rewards the estimator's error on it.

Spaces (details in docs/environment.md):

- action: ``Box(-1, 1, (85,))``, decoded by ``posegen_env.envs.action_space`` into body pose (inside the
  joint limits), root tilt, orbit camera and body shape; with ``choose=`` one more component per
  choice (the subject of a cast, the background style);
- observation: ``Box(-1, 1, (context_dim,))``, a random context drawn at every reset. It plays the
  part of a generator's input noise: a policy conditioned on it can represent a distribution with
  several modes rather than a single Gaussian;
- reward: the estimator's error (raw, capped or banded) minus plausibility penalties (``reward.py``);
- every episode is one step and ends with ``terminated=True``; ``info`` is the whole sample
  (SMPL pose and shape, camera, joints, prediction, errors, penalties) so it can be saved.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from posegen_env.envs.action_space import ACTION_DIM, as_numbers
from posegen_env.envs.checks import check_int, check_render_mode
from posegen_env.envs.task import PoseGenTask

DEFAULT_CONTEXT_DIM = 8


def context_space(context_dim: int) -> gym.spaces.Box:
    return gym.spaces.Box(-1.0, 1.0, (check_int("context_dim", context_dim),), np.float32)


def action_box(dim: int = ACTION_DIM) -> gym.spaces.Box:
    return gym.spaces.Box(-1.0, 1.0, (dim,), np.float32)


def draw_context(rng: np.random.Generator, space: gym.spaces.Space) -> np.ndarray:
    return rng.uniform(-1.0, 1.0, size=space.shape).astype(np.float32)


class PoseGenEnv(gym.Env):
    """One NeRF rendering and one estimator forward pass per step (see the module docstring).

    Keyword arguments (all optional) are those of ``PoseGenTask`` -- ``avatar``, ``body_model``,
    ``estimator``, ``image_size``, ``reward`` (a ``RewardConfig`` or dict), ``device``, ``subjects``,
    ``background``, ``choose`` -- plus
    ``context_dim`` and ``render_mode="rgb_array"``; or an existing ``task`` to share.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(self, render_mode: str | None = None, context_dim: int = DEFAULT_CONTEXT_DIM,
                 task: PoseGenTask | None = None, **task_kwargs):
        self.render_mode = check_render_mode(render_mode, self.metadata["render_modes"])
        self.task = task if task is not None else PoseGenTask(**task_kwargs)
        self.observation_space = context_space(context_dim)
        self.action_space = action_box(self.task.action_dim)
        self._context = np.zeros(self.observation_space.shape, np.float32)
        self._image = np.zeros((self.task.image_size, self.task.image_size, 3), np.uint8)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self._context = draw_context(self.np_random, self.observation_space)
        return self._context.copy(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        result = self.task.evaluate(as_numbers(action)[None], [self.np_random])
        self._image = result.data.images[0]
        info = result.info(0)
        return self._context.copy(), float(result.reward[0]), True, False, info

    def render(self) -> np.ndarray | None:
        """The last rendered crop (uint8 H x W x 3) with ``render_mode="rgb_array"``."""
        return self._image.copy() if self.render_mode == "rgb_array" else None
