"""How an estimator is called: the interface, the crops it takes and the joints it returns.

The interface is one call (``PoseEstimator``): a batch of square person crops in, 3D joints in
camera axes out. It lives here, with ``EstimatorError`` and ``spec_of``, because every other
estimation module needs them and this one imports none of those.

PoseGen renders crops for each estimator as *it* expects them -- the size it was trained at, with
the context margin its detector wants -- prepares them as it was trained (normalisation, channel
order), and reads its output in its own joint set and unit. An estimator declares this as a
``spec`` attribute (an ``EstimatorSpec`` or a dict of its fields) or as plain attributes of the
same names; what it leaves out takes the defaults, which are the shipped baseline's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from posegen_env.body.joint_sets import JointSet, JointSetError, get_joint_set
from posegen_env.body.joints import MIRROR_JOINTS
from posegen_env.render.crops import DEFAULT_CROP_SCALE

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
UNITS = {"m": 1.0, "mm": 1000.0}
CHANNEL_ORDERS = ("RGB", "BGR")


class SpecError(ValueError):
    """An estimator's declared spec that cannot be used, and how to fix it."""


class EstimatorError(ValueError):
    """An estimator, its file, its input or its output that cannot be used, and what to do."""


@dataclass(frozen=True)
class EstimatorSpec:
    """What an estimator takes and returns (defaults: the shipped baseline's).

    ``input_mean``/``input_std`` normalise RGB crops in [0, 1] before the call, or ``input_transform``
    (a callable on the (B, 3, S, S) batch) does; ``channel_order`` "BGR" reverses the channels first.
    The names are distinct enough that a model's own buffers (a ``mean``, say) are never mistaken for
    them. The output is
    (B, J, 3) in ``joint_set``'s order, in ``units``, in camera axes; ``root_relative=False`` says it
    carries a global offset, which PoseGen removes. ``crop_scale`` is the crop's side over the
    person's projected extent: a detector trained with more context wants a larger one.
    """

    input_size: int = 64
    input_mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    input_std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    input_transform: Callable[[torch.Tensor], torch.Tensor] | None = field(default=None, compare=False)
    channel_order: str = "RGB"
    joint_set: JointSet = field(default_factory=lambda: get_joint_set("smpl24"))
    units: str = "m"
    root_relative: bool = True
    crop_scale: float = DEFAULT_CROP_SCALE

    def __post_init__(self):
        size = self.input_size
        if isinstance(size, bool) or not isinstance(size, int | np.integer) or not 16 <= size <= 2048:
            raise SpecError(f"input_size must be a whole number of pixels in [16, 2048], got {size!r}")
        for name in ("input_mean", "input_std"):
            value = getattr(self, name)
            try:
                triple = tuple(float(v) for v in value)
            except TypeError:
                triple = ()
            if len(triple) != 3 or not np.isfinite(triple).all():
                raise SpecError(f"{name} must be three finite numbers (R, G, B) for images in [0, 1], got {value!r}")
            object.__setattr__(self, name, triple)
        if min(self.input_std) <= 0:
            raise SpecError(f"input_std must be positive, got {self.input_std}")
        if self.input_transform is not None and not callable(self.input_transform):
            raise SpecError(f"input_transform must be a callable on the (B, 3, S, S) batch, got "
                            f"{self.input_transform!r}")
        if str(self.channel_order).upper() not in CHANNEL_ORDERS:
            raise SpecError(f"channel_order must be one of {CHANNEL_ORDERS}, got {self.channel_order!r}")
        object.__setattr__(self, "channel_order", str(self.channel_order).upper())
        try:
            object.__setattr__(self, "joint_set", get_joint_set(self.joint_set))
        except JointSetError as err:
            raise SpecError(f"joint_set: {err}") from None
        if self.units not in UNITS:
            raise SpecError(f"units must be 'm' or 'mm', got {self.units!r}")
        if not (isinstance(self.crop_scale, float | int) and 1.0 <= self.crop_scale <= 3.0):
            raise SpecError(f"crop_scale (crop side / person extent) must be in [1, 3], got {self.crop_scale!r}")
        object.__setattr__(self, "crop_scale", float(self.crop_scale))

    @classmethod
    def of(cls, estimator) -> EstimatorSpec:
        """The spec an estimator declares: its ``spec`` (an EstimatorSpec or dict), else its attributes."""
        declared = getattr(estimator, "spec", None)
        if isinstance(declared, cls):
            return declared
        names = [f.name for f in fields(cls)]
        if isinstance(declared, dict):
            unknown = sorted(set(declared) - set(names))
            if unknown:
                raise SpecError(f"unknown spec fields {unknown}; an estimator spec has {names}")
            return cls(**declared)
        return cls(**{n: getattr(estimator, n) for n in names if getattr(estimator, n, None) is not None})

    def with_(self, **changes) -> EstimatorSpec:
        return replace(self, **changes)

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """RGB crops in [0, 1] at ``input_size`` -> the estimator's input."""
        if self.channel_order == "BGR":
            images = images.flip(1)
        if self.input_transform is not None:
            return self.input_transform(images)
        if self.input_mean == (0.0, 0.0, 0.0) and self.input_std == (1.0, 1.0, 1.0):
            return images
        shape = (1, 3, 1, 1)
        mean, std = (torch.tensor(v, dtype=images.dtype, device=images.device).reshape(shape)
                     for v in (self.input_mean, self.input_std))
        if self.channel_order == "BGR":
            mean, std = mean.flip(1), std.flip(1)
        return (images - mean) / std

    def to_metres(self, joints: torch.Tensor) -> torch.Tensor:
        """The estimator's output -> metres, root-relative (the joint set's root at 0)."""
        joints = joints.float() / UNITS[self.units]
        return joints - joints[:, list(self.joint_set.root_index)].mean(dim=1, keepdim=True)

    def from_metres(self, joints: torch.Tensor) -> torch.Tensor:
        """Root-relative metres -> the estimator's unit (targets for its own loss)."""
        return joints * UNITS[self.units]

    def describe(self) -> str:
        norm = "a callable" if self.input_transform is not None else f"mean {self.input_mean}, std {self.input_std}"
        return (f"{self.input_size} px {self.channel_order} crops (scale {self.crop_scale}), normalised with {norm}; "
                f"{self.joint_set.name} joints in {self.units}")


def check_units(joints_m: np.ndarray | torch.Tensor, spec: EstimatorSpec, name: str) -> None:
    """Refuse outputs whose size says the declared unit is wrong: a body spans about 0.2-1 m from its root.
    Tensors are checked on their device (one number comes back)."""
    joints = torch.as_tensor(joints_m)
    finite = joints[torch.isfinite(joints).all(dim=2).all(dim=1)]
    if not len(finite):
        return
    reach = float(torch.quantile(torch.linalg.vector_norm(finite.double(), dim=-1).amax(dim=1), 0.5))
    other = "mm" if spec.units == "m" else "m"
    if reach > 20.0 if spec.units == "m" else 0.0 < reach < 0.02:
        raise SpecError(f"{name} declares units={spec.units!r}, but its joints reach {reach:.3g} m from the root "
                        f"(a body reaches about 0.2-1 m): its output looks like {other}; declare units={other!r}")


@runtime_checkable
class PoseEstimator(Protocol):
    """Anything PoseGen can evaluate and (if it is a torch module) fine-tune; its spec attributes
    (``EstimatorSpec`` fields, or one ``spec``) are optional."""

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) prepared crops -> (B, J, 3) joints in camera axes, in the declared set and unit."""
        ...


def spec_of(estimator) -> EstimatorSpec:
    """The estimator's declared spec, or a clear error naming the estimator."""
    try:
        return EstimatorSpec.of(estimator)
    except SpecError as err:
        raise EstimatorError(f"{getattr(estimator, 'name', type(estimator).__name__)}: {err}") from None


def mirror_joints(joints: torch.Tensor, mirror=MIRROR_JOINTS) -> torch.Tensor:
    """Camera-frame joints of the horizontally flipped image: swap left/right (``mirror``: each
    joint's partner in the set), negate x."""
    mirrored = joints[:, list(mirror)].clone()
    mirrored[..., 0] = -mirrored[..., 0]
    return mirrored
