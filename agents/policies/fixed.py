"""Policies that learn nothing: the baselines every learned policy must beat."""

from __future__ import annotations

import numpy as np

from agents.policies.base import SamplingPolicy
from posegen_env.distributions import BaseCameraSampler, BasePoseSampler
from posegen_env.envs.action_space import ACTION_DIM, encode, uniform_actions


class RandomPolicy(SamplingPolicy):
    """Uniform over the action box, body pose inside the joint limits: every pose, view and shape."""

    name = "random"

    def act(self, contexts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return uniform_actions(len(contexts), rng, self.action_dim)


class PriorPolicy(SamplingPolicy):
    """The base distribution the estimator was trained on: "just render more of the same data"."""

    name = "prior"

    def act(self, contexts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        n = len(contexts)
        body = encode(BasePoseSampler().sample(n, rng), BaseCameraSampler().sample(n, rng))
        return np.concatenate([body, rng.uniform(-1.0, 1.0, (n, self.action_dim - ACTION_DIM))], axis=1)


class AnchorPolicy(SamplingPolicy):
    """The anchored policies' starting point: base bodies from uniformly drawn cameras, with no step taken.

    What ``ppo``, ``sac`` and ``search`` would sample had they learned nothing; comparing with it
    separates what learning adds from what the anchoring adds. Of the anchoring only the
    ``uniform_share`` matters: this policy takes no step.
    """

    name = "anchor"
    anchored = True

    def act(self, contexts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.anchoring.draw(len(contexts), rng, self.action_dim)
