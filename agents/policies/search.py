"""``search``: several independent Gaussian search distributions trained by the cross-entropy method.

PoseExaminer-style: each agent keeps a diagonal Gaussian over steps away from an anchor (a
base-distribution body seen from a uniformly drawn camera, ``agents/policies/anchored.py``), draws a
population, and moves towards its best-rewarded quarter. Agents start from different random
steps, so they settle on different directions of failure around natural poses (turn the camera
behind, raise the arms, ...). A standard-deviation floor keeps every agent a *distribution* worth
sampling training data from rather than a single point. The environment's context picks the
agent (its first component, split into equal bins), so sampling the policy gives an even
mixture of all agents.

With a ``replay_share`` the search also replays (Prioritized Level Replay, with ACCEL's small
edits): it keeps the ``archive_size`` best-scoring actions drawn while learning against the
current estimator, and draws that share of its samples as one of them moved by Gaussian noise of
``edit_std`` action units. One draw's error varies far more than the agents' means do, so the
best draws themselves hold most of what learning found.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from agents.policies.anchored import DEFAULT_ANCHORING, Anchoring
from agents.policies.base import Progress, SamplingPolicy
from agents.policies.objectives import DEFAULT_OBJECTIVE, Objective
from posegen_env.envs.action_space import ACTION_DIM
from posegen_env.envs.vector_env import PoseGenVectorEnv
from posegen_env.files import atomic_write


class SearchPolicy(SamplingPolicy):
    name = "search"
    state_file = "search.npz"
    learns = True
    anchored = True

    def __init__(self, num_agents: int = 16, init_std: float = 0.5, min_std: float = 0.3, elite_frac: float = 0.25,
                 smoothing: float = 0.6, population_per_agent: int = 16, *, seed: int = 0,
                 anchoring: Anchoring = DEFAULT_ANCHORING, tensorboard_log: str | None = None,
                 action_dim: int = ACTION_DIM, objective: Objective = DEFAULT_OBJECTIVE,
                 fresh_share: float = 0.0, learn_part: str = "all", replay_share: float = 0.0, archive_size: int = 64,
                 edit_std: float = 0.05) -> None:
        if not 0.0 <= replay_share <= 1.0 or archive_size < 1 or not edit_std >= 0:
            raise ValueError(f"search needs replay_share in [0, 1], archive_size >= 1 and edit_std >= 0, got "
                             f"{replay_share}, {archive_size}, {edit_std}")
        if num_agents < 1 or not 0 < elite_frac <= 1 or not 0 < smoothing <= 1 or not 0 < min_std <= init_std:
            raise ValueError("search needs num_agents >= 1, elite_frac and smoothing in (0, 1], "
                             "0 < min_std <= init_std")
        super().__init__(seed=seed, anchoring=anchoring, tensorboard_log=tensorboard_log, action_dim=action_dim,
                         objective=objective, fresh_share=fresh_share, learn_part=learn_part)
        self.num_agents, self.min_std, self.elite_frac, self.smoothing = num_agents, min_std, elite_frac, smoothing
        self.population_per_agent = population_per_agent
        rng = np.random.default_rng(seed)  # the agents' starting means
        self.mean = rng.uniform(-init_std, init_std, (num_agents, action_dim))
        self.std = np.full((num_agents, action_dim), float(init_std))
        self.iterations = 0
        # Replay (PLR/ACCEL): the best-scoring actions of the last learning, re-drawn with small edits.
        self.replay_share, self.archive_size, self.edit_std = replay_share, archive_size, edit_std
        self.archive = np.zeros((0, action_dim))
        self.archive_scores = np.zeros(0)

    def agent_of(self, contexts: np.ndarray) -> np.ndarray:
        u = (np.asarray(contexts)[:, 0] + 1.0) / 2.0
        return np.clip((u * self.num_agents).astype(int), 0, self.num_agents - 1)

    def _steps(self, agents: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        steps = self.mean[agents] + self.std[agents] * rng.standard_normal((len(agents), self.action_dim))
        return self.part_kept(np.clip(steps, -1.0, 1.0))

    def act(self, contexts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        anchors = self.anchoring.draw(len(contexts), rng, self.action_dim)
        actions = self.anchoring.move(anchors, self.keep_fresh(self._steps(self.agent_of(contexts), rng), rng))
        if self.replay_share > 0 and len(self.archive):
            replayed = np.flatnonzero(rng.random(len(actions)) < self.replay_share)
            picks = self.archive[rng.integers(len(self.archive), size=len(replayed))]
            edits = rng.standard_normal(picks.shape) * (self.edit_std / self.anchoring.reach)
            actions[replayed] = self.anchoring.move(picks, edits)
        return actions

    def _remember(self, actions: np.ndarray, scores: np.ndarray) -> None:
        """Keep the ``archive_size`` best-scoring actions seen since learning began."""
        pool = np.concatenate([self.archive, actions])
        pool_scores = np.concatenate([self.archive_scores, scores])
        best = np.argsort(pool_scores, kind="stable")[::-1][:self.archive_size]
        self.archive, self.archive_scores = pool[best], pool_scores[best]

    def learn(self, env: PoseGenVectorEnv, steps: int, progress: Progress | None = None) -> None:
        rng = np.random.default_rng(1000 + self.iterations)
        self.archive, self.archive_scores = np.zeros((0, self.action_dim)), np.zeros(0)  # scores of this estimator
        # whole vector-env batches, at most the budget (but at least one batch)
        wanted = min(self.population_per_agent * self.num_agents, steps)
        population = env.num_envs * max(1, -(-wanted // env.num_envs))
        done = 0
        probe = self.objective.probe(env.task, self.anchoring, seed=2000 + self.iterations)  # one per estimator
        for _ in range(max(1, steps // population)):
            agent = np.arange(population) % self.num_agents
            moves = self._steps(agent, rng)
            actions = self.anchoring.move(self.anchoring.draw(population, rng, self.action_dim), moves)
            results = [env.step_batch(chunk)[3] for chunk in np.split(actions, population // env.num_envs)]
            rewards = self.objective.score(env.task, results, seed=1000 + self.iterations, probe=probe)
            self._remember(actions, rewards)
            for k in range(self.num_agents):
                mine = np.flatnonzero(agent == k)
                if len(mine) < 2:  # a budget smaller than twice the agents leaves some with nothing to rank
                    continue
                elite = mine[np.argsort(rewards[mine])[::-1][:max(2, int(self.elite_frac * len(mine)))]]
                a = self.smoothing
                self.mean[k] = (1 - a) * self.mean[k] + a * moves[elite].mean(axis=0)
                self.std[k] = np.maximum((1 - a) * self.std[k] + a * moves[elite].std(axis=0), self.min_std)
            done += population
            self.iterations += 1
            if progress is not None:
                progress(done, rewards)

    def save(self, path: Path) -> None:
        atomic_write(Path(path) / self.state_file,
                     lambda tmp: np.savez(tmp, mean=self.mean, std=self.std, iterations=self.iterations,
                                          archive=self.archive, archive_scores=self.archive_scores))

    def load(self, path: Path) -> None:
        with np.load(Path(path) / self.state_file) as f:
            if f["mean"].shape != self.mean.shape:
                raise ValueError(f"{path}: search state has shape {f['mean'].shape}, expected {self.mean.shape}")
            self.mean, self.std, self.iterations = f["mean"], f["std"], int(f["iterations"])
            if "archive" in f:  # states saved before replay have none
                self.archive, self.archive_scores = f["archive"], f["archive_scores"]
