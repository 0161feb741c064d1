"""Batched ``PoseGen-v0``: all sub-environments' samples are rendered and estimated in one call.

``PoseGenVectorEnv`` is a Gymnasium ``VectorEnv`` (``agents.policies.sb3.SB3VecEnv`` exposes it to
Stable-Baselines3). Every episode lasts one step, so both reset every sub-environment in the same step that ends it
(Gymnasium's ``SAME_STEP`` autoreset; SB3's own convention), and no call is wasted on resets.

Sub-environment ``i`` seeded through ``reset(seed=s)`` draws exactly what a single ``PoseGenEnv``
reset with seed ``s + i`` draws, so vector and single runs give the same samples, and rewards equal to float
tolerance (a batched forward pass sums in another order: about 1e-7 apart).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from posegen_env.envs.action_space import as_numbers
from posegen_env.envs.checks import check_int, check_render_mode
from posegen_env.envs.env import DEFAULT_CONTEXT_DIM, action_box, context_space, draw_context
from posegen_env.envs.task import PoseGenTask
from posegen_env.render.step import StepResult


class PoseGenVectorEnv(VectorEnv):
    """``num_envs`` PoseGen environments stepped as one batch (takes ``PoseGenEnv``'s keyword arguments)."""

    metadata = {"render_modes": ["rgb_array"], "autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, num_envs: int = 16, render_mode: str | None = None, context_dim: int = DEFAULT_CONTEXT_DIM,
                 task: PoseGenTask | None = None, **task_kwargs):
        self.num_envs = check_int("num_envs", num_envs)
        self.render_mode = check_render_mode(render_mode, self.metadata["render_modes"])
        self.task = task if task is not None else PoseGenTask(**task_kwargs)
        self.single_observation_space = context_space(context_dim)
        self.single_action_space = action_box(self.task.action_dim)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._rngs = [np.random.default_rng() for _ in range(self.num_envs)]
        self._contexts = self._draw_contexts()
        self._last: StepResult | None = None  # the last step, whose crops render() copies from the device

    def _draw_contexts(self) -> np.ndarray:
        return np.stack([draw_context(rng, self.single_observation_space) for rng in self._rngs])

    def reset(self, *, seed: int | list[int | None] | None = None,
              options: dict | None = None) -> tuple[np.ndarray, dict]:
        given = seed
        if isinstance(seed, int | np.integer) and not isinstance(seed, bool):
            seed = [int(seed) + i for i in range(self.num_envs)]
        if seed is not None:
            if not isinstance(seed, list | tuple) or len(seed) != self.num_envs or not all(
                    s is None or isinstance(s, int | np.integer) and not isinstance(s, bool) and s >= 0 for s in seed):
                raise ValueError(f"reset(seed={given!r}): give a non-negative whole number, None, or a list of "
                                 f"{self.num_envs} of them (one per sub-environment)")
            self._rngs = [gym.utils.seeding.np_random(s)[0] if s is not None else rng
                          for s, rng in zip(seed, self._rngs, strict=True)]
        self._contexts = self._draw_contexts()
        return self._contexts.copy(), {}

    def step_batch(self, actions) -> tuple[np.ndarray, np.ndarray, np.ndarray, StepResult]:
        """Evaluate one action per sub-environment; returns (new contexts, ended contexts, rewards, result)."""
        actions = as_numbers(actions)
        if actions.shape != self.action_space.shape:
            raise ValueError(f"actions must have shape {self.action_space.shape}, got {actions.shape}")
        result = self.task.evaluate(actions, self._rngs)
        self._last = result
        ended = self._contexts
        self._contexts = self._draw_contexts()
        return self._contexts.copy(), ended, result.reward.astype(np.float64), result

    def step(self, actions) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        contexts, ended, rewards, result = self.step_batch(actions)
        infos = result.infos()
        infos["final_obs"], infos["_final_obs"] = ended, np.ones(self.num_envs, bool)
        done = np.ones(self.num_envs, bool)
        return contexts, rewards, done, np.zeros(self.num_envs, bool), infos

    def render(self) -> tuple[np.ndarray, ...] | None:
        """The last crop of every sub-environment with ``render_mode="rgb_array"``."""
        return tuple(self.last_images()) if self.render_mode == "rgb_array" else None

    def last_images(self) -> np.ndarray:
        """The crops (num_envs, S, S, 3) uint8 of the last step (black before the first), copied from the
        device only now."""
        if self._last is None:
            return np.zeros((self.num_envs, self.task.image_size, self.task.image_size, 3), np.uint8)
        return self._last.data.images
