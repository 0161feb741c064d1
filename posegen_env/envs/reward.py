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

import math
from dataclasses import asdict, dataclass, fields
from numbers import Real
from typing import Any, overload

import numpy as np
import torch

from posegen_env.settings import from_text, option

METRICS = ("mpjpe", "pa_mpjpe")
MODES = ("raw", "capped", "band")


@dataclass(frozen=True)
class RewardConfig:
    metric: str = option("mpjpe", flag="reward-metric", choices=METRICS, help="the error the reward is")
    mode: str = option("capped", flag="reward-mode", choices=MODES, help=(
        "how the error is shaped: raw, capped at --cap-mm, or a band peaking there"))
    cap_mm: float = option(300.0, help="error cap (capped) or band peak (band), mm")
    limit_weight: float = option(1.0, flag="reward-limit-weight", help="cost per radian outside the joint limits")
    penetration_weight: float = option(5.0, flag="reward-penetration-weight", help=(
        "cost per metre of self-penetration"))
    penetration_tolerance_m: float = option(0.02, flag="reward-penetration-tolerance-m", help=(
        "self-penetration depth that costs nothing, metres"))

    def __post_init__(self) -> None:
        # Checked here, not at the first step: a string from a command line or a config file would only
        # fail deep inside the reward's arithmetic.
        for name, known in (("metric", METRICS), ("mode", MODES)):
            value = getattr(self, name)
            if not isinstance(value, str) or value not in known:
                raise ValueError(f"reward {name} must be one of {known}, got {value!r}")
        for name in (f.name for f in fields(self) if f.name not in ("metric", "mode")):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Real):  # a bool is an int, but never a weight
                raise ValueError(f"reward {name} must be a number, got {value!r} ({type(value).__name__})")
            if not (math.isfinite(float(value)) and float(value) >= 0):
                raise ValueError(f"reward {name} must be a finite number >= 0, got {value!r}")
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

    @overload
    def shaped_error(self, error_mm: torch.Tensor) -> torch.Tensor: ...
    @overload
    def shaped_error(self, error_mm: Any) -> np.ndarray: ...
    def shaped_error(self, error_mm: Any) -> np.ndarray | torch.Tensor:
        """``error_mm`` shaped by the mode: a float64 tensor on its device for a tensor, float64 numpy otherwise."""
        (e,), as_numpy = _as_float64(error_mm)
        return _out(self._shaped(e), as_numpy)

    def _shaped(self, e: torch.Tensor) -> torch.Tensor:
        if self.mode == "raw":
            return e
        if self.mode == "capped":
            return e.clamp(max=self.cap_mm)
        return (self.cap_mm - (e - self.cap_mm).abs()).clamp(min=0.0)

    @overload
    def __call__(self, error_mm: torch.Tensor, limit_violation: Any, penetration_m: Any) -> torch.Tensor: ...
    @overload
    def __call__(self, error_mm: Any, limit_violation: torch.Tensor, penetration_m: Any) -> torch.Tensor: ...
    @overload
    def __call__(self, error_mm: Any, limit_violation: Any, penetration_m: torch.Tensor) -> torch.Tensor: ...
    @overload
    def __call__(self, error_mm: Any, limit_violation: Any, penetration_m: Any) -> np.ndarray: ...
    def __call__(self, error_mm: Any, limit_violation: Any, penetration_m: Any) -> np.ndarray | torch.Tensor:
        """Reward of each sample (see the module docstring). If any input is a tensor, all are scored in
        float64 on its device and the reward is a tensor there (a step's scoring stays on the GPU); else numpy."""
        (error, limit, depth), as_numpy = _as_float64(error_mm, limit_violation, penetration_m)
        excess = (depth - self.penetration_tolerance_m).clamp(min=0.0)
        return _out(self._shaped(error) / 1000.0 - self.limit_weight * limit - self.penetration_weight * excess,
                    as_numpy)


def reward_pairs(text: str) -> dict:
    """Reward settings written ``KEY=VALUE,...`` (e.g. ``mode=capped,cap_mm=250``), each read by its type."""
    pairs = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"{item!r}: write KEY=VALUE, e.g. penetration_weight=10")
        pairs[key.strip()] = from_text(RewardConfig, key.strip(), value.strip())
    RewardConfig.from_any(pairs)
    return pairs


def _as_float64(*values: Any) -> tuple[list[torch.Tensor], bool]:
    """``values`` as float64 tensors on the device of the first tensor among them (the CPU if none), and
    whether the result goes back as numpy (none was a tensor)."""
    tensors = [v for v in values if isinstance(v, torch.Tensor)]
    device = tensors[0].device if tensors else torch.device("cpu")
    return [v.detach().to(device, torch.float64) if isinstance(v, torch.Tensor)
            else torch.from_numpy(np.array(v, dtype=np.float64)).to(device) for v in values], not tensors


def _out(x: torch.Tensor, as_numpy: bool) -> np.ndarray | torch.Tensor:
    return x.numpy() if as_numpy else x
