"""Policies that learn nothing: the two baselines every learned policy must beat."""

from __future__ import annotations

from agents.base import SamplingPolicy
from posegen_env.action_space import encode, uniform_actions
from posegen_env.samplers import BaseCameraSampler, BasePoseSampler


class RandomPolicy(SamplingPolicy):
    """Uniform over the action box, body pose inside the joint limits: every pose, view and shape."""

    name = "random"

    def act(self, contexts, rng):
        return uniform_actions(len(contexts), rng)


class PriorPolicy(SamplingPolicy):
    """The base distribution the estimator was trained on: "just render more of the same data"."""

    name = "prior"

    def act(self, contexts, rng):
        n = len(contexts)
        return encode(BasePoseSampler().sample(n, rng), BaseCameraSampler().sample(n, rng))
