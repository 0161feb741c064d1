"""Reward shaping: the estimator's error, made to favour samples that are hard *but plausible and learnable*.

An unbounded error search drifts to bizarre poses with huge errors that teach an estimator
nothing useful (PoseExaminer's warning). So the error term is capped or banded (PoseAug keeps
augmentation hardness inside a band), and leaving the joint limits or driving limbs through each
other costs reward. A policy bounded in another way needs no cap: the alternating rounds' anchored
policies stay near natural bodies, so they use the raw error, which ties no draws (docs/environment.md).

    reward = shaped(error) / 1000 - limit_weight * limit_violation - penetration_weight * depth

with the error in mm (so the first term is metres), ``limit_violation`` in radians outside the
joint limits, and ``depth`` the self-penetration beyond ``penetration_tolerance_m`` in metres.
``shaped`` is the error itself (``"raw"``), ``min(error, cap)`` (``"capped"``), or a tent that
rises to ``cap`` and falls back to 0 at twice the cap (``"band"``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

METRICS = ("mpjpe", "pa_mpjpe")
MODES = ("raw", "capped", "band")


@dataclass(frozen=True)
class RewardConfig:
    metric: str = "mpjpe"
    mode: str = "capped"
    cap_mm: float = 300.0
    limit_weight: float = 1.0
    penetration_weight: float = 5.0
    penetration_tolerance_m: float = 0.02

    def __post_init__(self):
        if self.metric not in METRICS:
            raise ValueError(f"reward metric must be one of {METRICS}, got {self.metric!r}")
        if self.mode not in MODES:
            raise ValueError(f"reward mode must be one of {MODES}, got {self.mode!r}")
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float | int) and not (np.isfinite(value) and value >= 0):
                raise ValueError(f"reward {f.name} must be a finite number >= 0, got {value!r}")
        if self.cap_mm <= 0:
            raise ValueError(f"reward cap_mm must be positive, got {self.cap_mm}")

    @classmethod
    def from_any(cls, value) -> RewardConfig:
        """A RewardConfig from None (defaults), a RewardConfig, or a dict of its fields."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            unknown = set(value) - {f.name for f in fields(cls)}
            if unknown:
                raise ValueError(f"unknown reward settings {sorted(unknown)}; known: {[f.name for f in fields(cls)]}")
            return cls(**value)
        raise ValueError(f"reward must be a RewardConfig or a dict of its fields, got {type(value).__name__}")

    def as_dict(self) -> dict:
        return asdict(self)

    def shaped_error(self, error_mm) -> np.ndarray:
        e = np.asarray(error_mm, dtype=np.float64)
        if self.mode == "raw":
            return e
        if self.mode == "capped":
            return np.minimum(e, self.cap_mm)
        return np.clip(self.cap_mm - np.abs(e - self.cap_mm), 0.0, None)

    def __call__(self, error_mm, limit_violation, penetration_m) -> np.ndarray:
        """Reward of each sample (see the module docstring)."""
        excess = np.clip(np.asarray(penetration_m, dtype=np.float64) - self.penetration_tolerance_m, 0.0, None)
        return (self.shaped_error(error_mm) / 1000.0 - self.limit_weight * np.asarray(limit_violation)
                - self.penetration_weight * excess)
