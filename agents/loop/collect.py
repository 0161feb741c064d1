"""Collecting a policy's samples as training data: plausible, de-duplicated, labelled.

Every policy goes through this same routine with the same budget, so they compare fairly: draw
batches from the policy through the vector environment, drop samples whose limbs pass through
each other, drop near-duplicates (actions closer than ``min_distance`` to a kept one), and stop at
``num_samples``. Hardness is not filtered for: it must come from the policy itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree
from tqdm import tqdm

from agents.policies.base import SamplingPolicy
from posegen_env.envs.vector_env import PoseGenVectorEnv
from posegen_env.render.step import PoseBatch


@dataclass
class Collected:
    data: PoseBatch
    actions: np.ndarray  # (N, the env's action length)
    mpjpe_mm: np.ndarray  # the estimator's error when the sample was drawn
    reward: np.ndarray
    drawn: int  # samples drawn, including the rejected ones
    implausible: int
    duplicates: int
    predicted: np.ndarray  # (N, J, 3) the estimator's joints (its set, root-relative metres; NaN: not detected)
    detected: np.ndarray  # (N,) bool: it returned a pose

    def __len__(self) -> int:
        return len(self.actions)


def collect(policy: SamplingPolicy, env: PoseGenVectorEnv, num_samples: int, seed: int = 0,
            min_distance: float = 0.05, max_draws_factor: float = 4.0, desc: str = "collecting") -> Collected:
    """``num_samples`` accepted samples of ``policy`` (fewer only if ``max_draws_factor`` x that many draws
    could not supply them, e.g. a policy collapsed onto one sample)."""
    rng = np.random.default_rng(seed)
    kept_actions: list[np.ndarray] = []
    parts: list[PoseBatch] = []
    errors: list[np.ndarray] = []
    rewards: list[np.ndarray] = []
    predicted: list[np.ndarray] = []
    detected: list[np.ndarray] = []
    drawn = implausible = duplicates = 0
    contexts, _ = env.reset(seed=seed)
    with tqdm(total=num_samples, desc=desc, unit="sample") as bar:
        while len(kept_actions) < num_samples and drawn < max_draws_factor * num_samples:
            actions = policy.act(contexts, rng)
            contexts, _, reward, result = env.step_batch(actions)
            drawn += len(actions)
            tree = cKDTree(np.array(kept_actions)) if kept_actions else None
            chosen: list[int] = []
            for i in range(len(actions)):
                if not result.plausible[i]:
                    implausible += 1
                elif (tree is not None and tree.query(actions[i])[0] < min_distance) or any(
                        np.linalg.norm(actions[i] - actions[j]) < min_distance for j in chosen):
                    duplicates += 1
                elif len(kept_actions) + len(chosen) < num_samples:
                    chosen.append(i)
            keep = np.array(chosen, dtype=int)
            kept_actions.extend(actions[keep])
            d = result.data
            parts.append(d.select(keep))
            errors.append(result.mpjpe_mm[keep])
            rewards.append(reward[keep])
            predicted.append(result.predicted[keep])
            detected.append(result.detected[keep])
            bar.update(len(keep))
    return Collected(PoseBatch.concat(parts), np.array(kept_actions).reshape(-1, env.task.action_dim),
                     np.concatenate(errors), np.concatenate(rewards), drawn, implausible, duplicates,
                     np.concatenate(predicted), np.concatenate(detected))
