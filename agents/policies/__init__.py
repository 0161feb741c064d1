"""Sampling policies: ``random``, ``prior`` and ``anchor`` baselines, ``search`` CEM agents, SB3 ``ppo`` and ``sac``."""

from agents.policies.base import SamplingPolicy
from agents.policies.fixed import AnchorPolicy, PriorPolicy, RandomPolicy
from agents.policies.sb3 import PPOPolicy, SACPolicy
from agents.policies.search import SearchPolicy

POLICIES = {cls.name: cls for cls in (RandomPolicy, PriorPolicy, AnchorPolicy, SearchPolicy, PPOPolicy, SACPolicy)}


def make_policy(name: str, **kwargs) -> SamplingPolicy:
    """A fresh policy by name (``POLICIES``); keyword arguments go to its constructor.

    Every policy takes ``seed``, ``anchoring`` and ``tensorboard_log`` (``SamplingPolicy``); some take more."""
    if name not in POLICIES:
        raise ValueError(f"unknown policy {name!r}; choose one of {sorted(POLICIES)}")
    return POLICIES[name](**kwargs)


__all__ = ["POLICIES", "SamplingPolicy", "make_policy"]
