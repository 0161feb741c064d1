"""Sampling policies: ``random``, ``prior`` and ``anchor`` baselines, ``search`` CEM agents, SB3 ``ppo`` and ``sac``."""

from agents.policies.base import SamplingPolicy
from agents.policies.fixed import AnchorPolicy, PriorPolicy, RandomPolicy
from agents.policies.sb3 import PPOPolicy, SACPolicy
from agents.policies.search import SearchPolicy

POLICIES = {cls.name: cls for cls in (RandomPolicy, PriorPolicy, AnchorPolicy, SearchPolicy, PPOPolicy, SACPolicy)}
ORDER = ["search", "ppo", "sac", "random", "prior", "anchor"]  # of a comparison's tables


def check_policies(names: list[str]) -> list[str]:
    """``names`` if they are one or more distinct policy names; ValueError naming the choices otherwise."""
    if not names or any(name not in POLICIES for name in names) or len(set(names)) != len(names):
        raise ValueError(f"policies {names}: name one or more distinct ones of {', '.join(ORDER)}")
    return names


def policy_list(text: str) -> list[str]:
    """``"all"`` or comma-separated distinct policy names, as a list (a command line's ``--policy``)."""
    try:
        return check_policies(list(ORDER) if text == "all" else [name for name in text.split(",") if name])
    except ValueError:
        raise ValueError(f"{text!r}: use one of {', '.join(ORDER)}, a comma-separated list without "
                         "repeats, or 'all'") from None


def make_policy(name: str, **kwargs) -> SamplingPolicy:
    """A fresh policy by name (``POLICIES``); keyword arguments go to its constructor.

    Every policy takes ``seed``, ``anchoring`` and ``tensorboard_log`` (``SamplingPolicy``); some take more."""
    if name not in POLICIES:
        raise ValueError(f"unknown policy {name!r}; choose one of {sorted(POLICIES)}")
    return POLICIES[name](**kwargs)


__all__ = ["ORDER", "POLICIES", "SamplingPolicy", "make_policy", "policy_list"]
