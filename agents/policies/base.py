"""The one interface every sampling policy implements, so that all compare with equal sample budgets.

A policy maps the environment's context vectors to actions (``act``). Learned policies improve
against the current estimator in ``learn``, which may spend at most the given number of
environment steps; fixed ones (``random``, ``prior``) spend none. Each saves and restores its
state, so interrupted runs resume and later rounds start from the policy of the round before.

Every policy takes the same settings (``seed``, ``anchoring``, ``tensorboard_log``, ``action_dim``:
the environment's action length, longer than ``ACTION_DIM`` when it lets actions choose the subject
or background; ``objective``, what a learned policy maximises, ``fresh_share`` and ``learn_part``), so a
run builds them all alike; a policy with no use for one ignores it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

import numpy as np

from agents.policies.anchored import DEFAULT_ANCHORING, Anchoring
from agents.policies.objectives import DEFAULT_OBJECTIVE, Objective
from posegen_env.envs.action_space import ACTION_DIM, CAMERA_SLICE
from posegen_env.envs.vector_env import PoseGenVectorEnv

# Called after every batch of learning steps with (steps done so far, rewards of that batch).
Progress = Callable[[int, np.ndarray], None]
# Which part of an anchored draw a learned policy's step moves: everything, the body only (the camera
# stays the anchor's, uniform over the sphere) or the view only (the anchor's natural body stays).
LEARN_PARTS = ("all", "body", "view")


def check_step_settings(fresh_share: float, learn_part: str) -> None:
    """ValueError for a ``fresh_share`` or ``learn_part`` no learned policy can use (the run config checks
    them with this before a run starts, the policies when they are built)."""
    if not 0.0 <= fresh_share < 1.0:
        raise ValueError(f"fresh_share must be in [0, 1) (the share of a learned policy's draws left at their "
                         f"anchor), got {fresh_share!r}")
    if learn_part not in LEARN_PARTS:
        raise ValueError(f"learn_part must be one of {', '.join(LEARN_PARTS)} (what a learned policy's step "
                         f"moves), got {learn_part!r}")


class SamplingPolicy(ABC):
    name: str = ""
    learns: bool = False
    anchored: bool = False  # draws anchors (agents/policies/anchored.py), so its samples depend on ``anchoring``
    state_file: str | None = None  # the file ``save`` writes in a round's directory, if any

    def __init__(self, *, seed: int = 0, anchoring: Anchoring = DEFAULT_ANCHORING,
                 tensorboard_log: str | None = None, action_dim: int = ACTION_DIM,
                 objective: Objective = DEFAULT_OBJECTIVE, fresh_share: float = 0.0, learn_part: str = "all") -> None:
        check_step_settings(fresh_share, learn_part)
        if action_dim < ACTION_DIM:
            raise ValueError(f"action_dim must be at least {ACTION_DIM} (body and camera), got {action_dim}")
        self.action_dim = action_dim
        self.seed = seed  # of the policy's own randomness (its initial state, its learning), if it has any
        self.anchoring = anchoring  # read only by anchored policies
        self.tensorboard_log = tensorboard_log  # where a policy that logs its own training writes it
        self.objective = objective  # what a learned policy maximises (agents/policies/objectives.py)
        self.fresh_share = fresh_share  # read only by anchored learned policies (``keep_fresh``)
        self.learn_part = learn_part  # what an anchored learned policy's steps move (``LEARN_PARTS``)

    @abstractmethod
    def act(self, contexts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One action in [-1, 1] per context row: a draw from the policy's distribution."""

    def part_kept(self, steps: np.ndarray) -> np.ndarray:
        """``steps`` with the components the policy does not learn zeroed, so those stay at the anchor:
        the camera for ``learn_part="body"``, everything but the camera for ``"view"``."""
        if self.learn_part == "all":
            return steps
        kept = np.zeros(np.shape(steps))
        kept[:, CAMERA_SLICE] = np.asarray(steps)[:, CAMERA_SLICE]
        return np.asarray(steps, np.float64) - kept if self.learn_part == "body" else kept

    def keep_fresh(self, steps: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``steps`` with about ``fresh_share`` of the rows zeroed: those draws stay at their anchor.

        Prioritized Level Replay's mixture: a learned curriculum replays what scored high but keeps
        drawing fresh tasks from the fixed distribution, so what it learns adds to the anchor's broad
        coverage of views instead of replacing it. With no share the random stream is untouched."""
        if self.fresh_share == 0.0:
            return steps
        return np.where((rng.random(len(steps)) < self.fresh_share)[:, None], 0.0, steps)

    def prepare(self, env: PoseGenVectorEnv) -> None:
        """Make the policy ready to act before any learning (its untrained start), e.g. build a network."""
        return None

    def learn(self, env: PoseGenVectorEnv, steps: int, progress: Progress | None = None) -> None:
        """Improve against ``env``'s current estimator using at most ``steps`` environment steps."""
        return None

    def save(self, path: Path) -> None:
        """Write the policy's state under ``path`` (a directory); fixed policies have none."""
        return None

    def load(self, path: Path) -> None:
        """Restore what ``save`` wrote."""
        return None
