"""Anchored actions: learned policies search *around* natural poses seen from anywhere, not the whole box.

Error alone pulls a policy towards contorted bodies, which every estimator gets wrong and no
test set contains (PoseExaminer's warning). PoseGen keeps its generator realistic with a pose
discriminator; here the base distribution's poses play that part. Each draw starts from an
*anchor*: a base-distribution body (library pose, body tilt and shape) seen by a camera drawn
uniformly from the action box. The policy sees the anchor and outputs a step in [-1, 1]^85 that
moves it by at most ``reach`` in every action component, so it learns which views and which
nearby pose changes the estimator fails on. With a zero step the samples are the anchor
distribution itself; ``benchmarks/RESULTS.md`` compares the learned policies with it.

Base poses alone leave the novel poses uncovered, where ``random`` does best. So a
``uniform_share`` of the anchors is drawn uniformly over the whole box, as ``random`` draws.

The reach trades realism for novelty: too short and the policy cannot leave the base poses,
too long and it is back to contorted bodies. ``REACH`` was chosen among 0.25, 0.5 and 1.0, and
``UNIFORM_SHARE`` among 0, 0.25 and 0.5, on the suites' validation split
(``benchmarks/validate_runs.py``), never on the test suites.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from gymnasium.spaces import Box, Space

from posegen_env.distributions import BasePoseSampler
from posegen_env.envs.action_space import (
    ACTION_DIM,
    CAMERA_SLICE,
    POSE_INSIDE_LIMITS,
    POSE_SLICE,
    decode,
    encode,
    uniform_actions,
)

REACH = 0.5  # largest move of any action component from its anchor; chosen on the validation split
UNIFORM_SHARE = 0.25  # share of anchors drawn uniformly over the box; chosen on the validation split
_AZIMUTH = CAMERA_SLICE.start  # the one periodic component: it wraps around instead of clipping


@dataclass(frozen=True)
class Anchoring:
    """Where an anchored policy's draws start (``uniform_share``) and how far it may step (``reach``).

    One value, checked once, so every anchored policy and the run config read the same two settings.
    """

    reach: float = REACH
    uniform_share: float = UNIFORM_SHARE

    def __post_init__(self):
        if not 0.0 < self.reach <= 2.0:
            raise ValueError(f"reach must be in (0, 2] action units (2 spans the whole box), got {self.reach}")
        if not 0.0 <= self.uniform_share <= 1.0:
            raise ValueError(f"uniform_share must be in [0, 1] (the share of anchors drawn uniformly over the "
                             f"action box), got {self.uniform_share}")

    def draw(self, n: int, rng: np.random.Generator, dim: int = ACTION_DIM) -> np.ndarray:
        """``n`` anchors as actions: cameras (and any choices, ``dim`` > ``ACTION_DIM``) uniform over
        the action box; base-distribution bodies, except for about ``uniform_share`` of the anchors,
        which are uniform over the whole box."""
        uniform = uniform_actions(n, rng, dim)
        anchors = np.concatenate([encode(BasePoseSampler().sample(n, rng), decode(uniform[:, :ACTION_DIM]).cameras),
                                  uniform[:, ACTION_DIM:]], axis=1)
        if self.uniform_share > 0:
            drawn_uniformly = rng.random(n) < self.uniform_share
            anchors[drawn_uniformly] = uniform[drawn_uniformly]
        return anchors

    def move(self, anchors: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """The actions ``reach * steps`` away from ``anchors``: inside the box, the pose inside the joint limits."""
        out = np.asarray(anchors, np.float64) + self.reach * np.clip(np.asarray(steps, np.float64), -1.0, 1.0)
        out[:, _AZIMUTH] = (out[:, _AZIMUTH] + 1.0) % 2.0 - 1.0
        out = np.clip(out, -1.0, 1.0)
        out[:, POSE_SLICE] = np.clip(out[:, POSE_SLICE], -POSE_INSIDE_LIMITS, POSE_INSIDE_LIMITS)
        return out


DEFAULT_ANCHORING = Anchoring()  # frozen, so one shared default is safe


def observation_space(context_space: Space, action_dim: int = ACTION_DIM) -> Box:
    """What an anchored policy reads: the environment's context followed by the anchor."""
    (context_dim,) = context_space.shape or (0,)
    return Box(-1.0, 1.0, (context_dim + action_dim,), np.float32)


def observe(contexts: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    return np.concatenate([contexts, anchors], axis=1).astype(np.float32)
