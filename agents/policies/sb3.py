"""``ppo`` and ``sac``: Stable-Baselines3 agents trained on the batched environment.

Both are anchored (``agents/policies/anchored.py``): the policy network reads the environment's context
vector (a generator's input noise) and an anchor (a base-distribution body seen from a uniformly
drawn camera), and outputs a Gaussian over steps away from that anchor. It so learns which views
and nearby pose changes make natural poses hard, conditioned on the pose at hand. Every episode
is one step, so the discount factor is irrelevant and the value function only learns the mean
reward (PPO's baseline). Learning continues across rounds from the saved model.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.vec_env import VecEnv

from agents.policies.anchored import DEFAULT_ANCHORING, Anchoring, observation_space, observe
from agents.policies.base import Progress, SamplingPolicy
from agents.policies.objectives import DEFAULT_OBJECTIVE, Objective, Probe
from posegen_env.envs.action_space import ACTION_DIM
from posegen_env.envs.vector_env import PoseGenVectorEnv
from posegen_env.files import atomic_write


class SB3VecEnv(VecEnv):
    """Stable-Baselines3 view of a ``PoseGenVectorEnv``: one ``step_wait`` renders the whole batch."""

    def __init__(self, env: PoseGenVectorEnv, objective: Objective = DEFAULT_OBJECTIVE, seed: int = 0):
        self.env, self.objective = env, objective
        # transfer's probe, made at the first step of a learning call (the estimator is fixed until it ends)
        self._probe: Probe | None = None
        self.anchoring = DEFAULT_ANCHORING
        self._scoring_seed = seed  # of the objective's own draws (learnability's folds), one per step
        super().__init__(env.num_envs, env.single_observation_space, env.single_action_space)
        self._actions: np.ndarray | None = None
        self.render_mode = env.render_mode

    def reset(self) -> np.ndarray:
        seeds = self._seeds if any(s is not None for s in self._seeds) else None
        contexts, _ = self.env.reset(seed=seeds)
        self._reset_seeds()
        return contexts

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.clip(np.asarray(actions, np.float32), -1.0, 1.0)

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict]]:
        contexts, ended, rewards, result = self.env.step_batch(self._actions)
        if self.objective.needs_probe and self._probe is None:
            self._probe = self.objective.probe(self.env.task, self.anchoring, seed=self._scoring_seed)
        rewards = self.objective.score(self.env.task, [result], seed=self._scoring_seed, probe=self._probe)
        self._scoring_seed += 1
        infos = [result.info(i) | {"terminal_observation": ended[i], "TimeLimit.truncated": False}
                 for i in range(self.num_envs)]
        return contexts, rewards.astype(np.float32), np.ones(self.num_envs, bool), infos

    def close(self) -> None:
        self.env.close()

    def get_images(self) -> list[np.ndarray]:
        return list(self.env.last_images())

    def get_attr(self, attr_name: str, indices=None) -> list:
        return [getattr(self.env, attr_name) for _ in self._get_indices(indices)]

    def set_attr(self, attr_name, value, indices=None) -> None:
        setattr(self.env, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs) -> list:
        return [getattr(self.env, method_name)(*method_args, **method_kwargs) for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]


class _Report(BaseCallback):
    """Forwards each vector step's rewards to the run's progress function."""

    def __init__(self, progress, start: int):
        super().__init__()
        self.progress, self.start = progress, start

    def _on_step(self) -> bool:
        if self.progress is not None:
            self.progress(self.num_timesteps - self.start, np.asarray(self.locals["rewards"]))
        return True


class AnchoredVecEnv(SB3VecEnv):
    """SB3's view of the vector env for an anchored policy: observations carry the anchor, actions step from it."""

    def __init__(self, env: PoseGenVectorEnv, rng: np.random.Generator, anchoring: Anchoring = DEFAULT_ANCHORING,
                 objective: Objective = DEFAULT_OBJECTIVE, seed: int = 0,
                 shape_steps: Callable[[np.ndarray], np.ndarray] | None = None):
        super().__init__(env, objective, seed)
        self._shape_steps = shape_steps  # what the policy does to its steps before they move the anchor
        self.action_dim = env.task.action_dim
        self.observation_space = observation_space(env.single_observation_space, self.action_dim)
        self._rng, self.anchoring = rng, anchoring
        self._anchors = self._observed = np.zeros((0, 0))  # set by every reset

    def _observe(self, contexts: np.ndarray) -> np.ndarray:
        self._anchors = self.anchoring.draw(self.num_envs, self._rng, self.action_dim)
        self._observed = observe(contexts, self._anchors)
        return self._observed

    def reset(self) -> np.ndarray:
        return self._observe(super().reset())

    def step_async(self, actions: np.ndarray) -> None:
        steps = actions if self._shape_steps is None else self._shape_steps(actions)
        super().step_async(self.anchoring.move(self._anchors, steps))

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict]]:
        ended = self._observed
        contexts, rewards, dones, infos = super().step_wait()
        for i, info in enumerate(infos):
            info["terminal_observation"] = ended[i]
        return self._observe(contexts), rewards, dones, infos


class SB3Policy(SamplingPolicy):
    """Shared plumbing of the SB3 agents: build on first use, learn, act, save/load."""

    learns = True
    anchored = True
    state_file: str = ""  # set by each agent: <name>.zip
    algorithm: type[OnPolicyAlgorithm] | type[OffPolicyAlgorithm]

    # The policies are small MLPs fed batches of 64: they run faster on the CPU, even beside a GPU
    # that renders and runs the estimator (SB3 warns when PPO without a CNN is put on a GPU).
    def __init__(self, *, seed: int = 0, anchoring: Anchoring = DEFAULT_ANCHORING, tensorboard_log: str | None = None,
                 device: str = "cpu", action_dim: int = ACTION_DIM, objective: Objective = DEFAULT_OBJECTIVE,
                 fresh_share: float = 0.0, learn_part: str = "all", **hyperparameters) -> None:
        super().__init__(seed=seed, anchoring=anchoring, tensorboard_log=tensorboard_log, action_dim=action_dim,
                         objective=objective, fresh_share=fresh_share, learn_part=learn_part)
        self.device = device
        self.hyperparameters = self.defaults() | hyperparameters
        self.model: OnPolicyAlgorithm | OffPolicyAlgorithm | None = None

    def defaults(self) -> dict:
        return {}

    def _ensure_model(self, env: PoseGenVectorEnv) -> OnPolicyAlgorithm | OffPolicyAlgorithm:
        done = 0 if self.model is None else self.model.num_timesteps
        vec = AnchoredVecEnv(env, np.random.default_rng([self.seed, done]), self.anchoring, self.objective,
                             seed=1000 * self.seed + done, shape_steps=self.part_kept)
        if self.model is None:
            self.model = self.algorithm("MlpPolicy", vec, seed=self.seed, device=self.device,
                                        tensorboard_log=self.tensorboard_log, verbose=0, **self.hyperparameters)
        else:
            self.model.set_env(vec)
        return self.model

    def prepare(self, env: PoseGenVectorEnv) -> None:
        """Build the network (its initial weights, from the seed): the untrained start acts with it."""
        self._ensure_model(env)

    def learn(self, env: PoseGenVectorEnv, steps: int, progress: Progress | None = None) -> None:
        model = self._ensure_model(env)
        model.learn(total_timesteps=steps, callback=_Report(progress, model.num_timesteps),
                    reset_num_timesteps=False, tb_log_name=self.name, progress_bar=False)

    def act(self, contexts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.model is None:
            raise RuntimeError(f"the {self.name} policy has no network yet; call prepare(), learn() or load() first")
        # SB3 samples with torch's generator: seed it from ``rng`` so draws are reproducible.
        anchors = self.anchoring.draw(len(contexts), rng, self.action_dim)
        torch.manual_seed(int(rng.integers(2**31)))
        steps, _ = self.model.predict(observe(np.asarray(contexts, np.float32), anchors), deterministic=False)
        return self.anchoring.move(anchors, self.keep_fresh(self.part_kept(steps), rng))

    def save(self, path: Path) -> None:
        model = self.model
        if model is not None:
            atomic_write(Path(path) / self.state_file, lambda tmp: model.save(tmp))

    def load(self, path: Path) -> None:
        file = Path(path) / self.state_file
        if not file.is_file():
            raise FileNotFoundError(f"no saved {self.name} model at {file}")
        self.model = self.algorithm.load(file, device=self.device)


class PPOPolicy(SB3Policy):
    name = "ppo"
    state_file = "ppo.zip"
    algorithm = PPO

    def defaults(self) -> dict:
        # Short rollouts of many parallel one-step episodes: frequent updates from few samples.
        return {"n_steps": 4, "batch_size": 64, "n_epochs": 10, "learning_rate": 1e-3, "gamma": 0.0,
                "gae_lambda": 1.0, "ent_coef": 0.0, "policy_kwargs": {"net_arch": [64, 64], "log_std_init": -0.7}}


class SACPolicy(SB3Policy):
    name = "sac"
    state_file = "sac.zip"
    algorithm = SAC

    def defaults(self) -> dict:
        return {"learning_starts": 256, "batch_size": 128, "train_freq": 1, "gradient_steps": 4, "gamma": 0.0,
                "buffer_size": 50_000, "learning_rate": 1e-3, "policy_kwargs": {"net_arch": [64, 64]}}
