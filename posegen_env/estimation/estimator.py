"""3D pose estimators: one small interface, PoseGen's baseline CNN, and an adapter for your own.

The interface: a batch of square person crops in, root-relative 3D joints in camera
coordinates out (metres, SMPL's 24 joints, pelvis = 0). Images are float tensors (B, 3, S, S)
in [0, 1]; the baseline's input size S is 64 px.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F

from posegen_env.body.joints import MIRROR_JOINTS, NUM_JOINTS
from posegen_env.device import resolve_device
from posegen_env.files import atomic_write, read_checkpoint

ESTIMATOR_FORMAT = "posegen-estimator-v1"
DEFAULT_ESTIMATOR_PATH = Path(__file__).resolve().parents[1] / "assets" / "default_estimator.pt"
# The shipped estimators by name: the one-person baseline, and the baseline pre-trained on the cast.
SHIPPED_ESTIMATORS = {"baseline": DEFAULT_ESTIMATOR_PATH,
                      "cast-baseline": DEFAULT_ESTIMATOR_PATH.with_name("default_cast_estimator.pt")}
INPUT_SIZE = 64


class EstimatorError(ValueError):
    """An estimator, its file, its input or its output that cannot be used, and what to do."""


@runtime_checkable
class PoseEstimator(Protocol):
    """Anything PoseGen can evaluate and (if it is a torch module) fine-tune."""

    input_size: int

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) float in [0, 1] -> (B, 24, 3) root-relative camera-frame joints, metres."""
        ...


def mirror_joints(joints: torch.Tensor) -> torch.Tensor:
    """Camera-frame joints of the horizontally flipped image: swap left/right, negate x."""
    mirrored = joints[:, list(MIRROR_JOINTS)].clone()
    mirrored[..., 0] = -mirrored[..., 0]
    return mirrored


def _block(c_in: int, c_out: int) -> torch.nn.Sequential:
    """Downsample by 2 then refine: conv-BN-ReLU twice."""
    return torch.nn.Sequential(
        torch.nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False), torch.nn.BatchNorm2d(c_out),
        torch.nn.ReLU(inplace=True),
        torch.nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), torch.nn.BatchNorm2d(c_out),
        torch.nn.ReLU(inplace=True))


class BaselineEstimator(torch.nn.Module):
    """A compact CNN sized for CPU (~13 M multiply-adds per 64 px crop) regressing the 23 non-root joints."""

    # Per-channel statistics of the base-distribution crops (mean and the real standard deviation).
    MEAN = (0.49, 0.47, 0.46)
    STD = (0.28, 0.29, 0.27)
    mean: torch.Tensor  # buffers, registered in __init__
    std: torch.Tensor

    def __init__(self, input_size: int = INPUT_SIZE, width: int = 32, flip_test: bool = False):
        super().__init__()
        self.input_size = int(input_size)
        self.width = int(width)
        self.flip_test = bool(flip_test)
        w = self.width
        self.features = torch.nn.Sequential(_block(3, w // 2), _block(w // 2, w), _block(w, 2 * w),
                                            _block(2 * w, 4 * w))
        cells = (self.input_size // 16) ** 2
        self.head = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4 * w * cells, 256),
                                        torch.nn.ReLU(inplace=True), torch.nn.Linear(256, (NUM_JOINTS - 1) * 3))
        self.register_buffer("mean", torch.tensor(self.MEAN).reshape(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(self.STD).reshape(1, 3, 1, 1), persistent=False)

    def regress(self, images: torch.Tensor) -> torch.Tensor:
        # Channels-last: oneDNN's convolutions run faster on CPU in that layout, with the same numbers
        # (benchmarks/RESULTS.md).
        x = self.features(((images - self.mean) / self.std).contiguous(memory_format=torch.channels_last))
        joints = self.head(x).reshape(-1, NUM_JOINTS - 1, 3)
        return torch.cat([joints.new_zeros(joints.shape[0], 1, 3), joints], dim=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """With ``flip_test``, evaluation also predicts the mirrored crop and averages. It is off by
        default: on an asymmetric subject (a different colour on each sleeve) it costs accuracy."""
        joints = self.regress(images)
        if not self.training and self.flip_test:
            joints = 0.5 * (joints + mirror_joints(self.regress(images.flip(-1))))
        return joints

    def config(self) -> dict:
        return {"input_size": self.input_size, "width": self.width, "flip_test": self.flip_test}


class CallableEstimator:
    """Wraps a user's function or model so it meets the interface; checks what it returns."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], input_size: int = INPUT_SIZE, name: str = "",
                 device=None):
        self.fn = fn
        self.input_size = int(getattr(fn, "input_size", input_size))
        self.name = name or getattr(fn, "__name__", type(fn).__name__)
        # the crops' device: as given, else as the callable declares (a ``device`` attribute), else the CPU
        self.device = torch.device(device if device is not None else getattr(fn, "device", "cpu"))

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return self.fn(images)


def as_batch(images, input_size: int) -> torch.Tensor:
    """Crops as float (B, 3, S, S) in [0, 1]: accepts uint8 or float, NHWC or NCHW, numpy or torch.

    Crops of another square size are resized (area-averaged), since the crop size is a property
    of the estimator, not of the data.
    """
    x = torch.as_tensor(np.asarray(images) if not torch.is_tensor(images) else images)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4:
        raise EstimatorError(f"images must be (B, H, W, 3) or (B, 3, H, W), got shape {tuple(x.shape)}")
    if x.shape[-1] == 3 and x.shape[1] != 3:
        x = x.permute(0, 3, 1, 2)
    if x.shape[1] != 3:
        raise EstimatorError(f"images must have 3 colour channels (RGB), got shape {tuple(x.shape)}")
    if x.shape[2] != x.shape[3]:
        raise EstimatorError(f"images must be square person crops, got {x.shape[2]}x{x.shape[3]}")
    if x.dtype == torch.uint8:
        x = x.float() / 255.0
    elif x.dtype.is_floating_point:
        x = x.float()
        if x.numel() and (x.min() < -1e-3 or x.max() > 1.001):
            raise EstimatorError("float images must be in [0, 1] (divide uint8 images by 255)")
    else:
        raise EstimatorError(f"images must be uint8 or float, got {x.dtype}")
    if x.shape[2] != input_size:
        x = F.interpolate(x, size=(input_size, input_size), mode="area" if x.shape[2] > input_size else "bilinear")
    return x.contiguous()


def check_prediction(pred, batch: int, name: str = "estimator") -> torch.Tensor:
    """The estimator's output as float (B, 24, 3), or a clear error saying what is wrong with it."""
    if not torch.is_tensor(pred):
        try:
            pred = torch.as_tensor(np.asarray(pred), dtype=torch.float32)
        except (TypeError, ValueError) as err:
            raise EstimatorError(f"{name} returned {type(pred).__name__}, expected a (B, 24, 3) array") from err
    if tuple(pred.shape) != (batch, NUM_JOINTS, 3):
        raise EstimatorError(f"{name} returned shape {tuple(pred.shape)} for {batch} images; expected "
                             f"({batch}, {NUM_JOINTS}, 3): SMPL's 24 joints, root-relative, camera frame, metres")
    bad = ~torch.isfinite(pred).reshape(batch, -1).all(dim=1)
    if bad.any():
        raise EstimatorError(f"{name} predicted NaN or inf for samples {torch.nonzero(bad)[:5, 0].tolist()}")
    return pred.float()


@torch.no_grad()
def predict(estimator, images, batch_size: int = 256, device=None) -> np.ndarray:
    """Root-relative 3D joints (N, 24, 3) in metres for N crops, checked, in evaluation mode."""
    size = estimator.input_size
    module = estimator if isinstance(estimator, torch.nn.Module) else None
    was_training = module.training if module is not None else False
    if module is not None:
        module.eval()
        device = device or next(module.parameters()).device
    else:
        device = device or getattr(estimator, "device", None)
    out = []
    try:
        for start in range(0, len(images), batch_size):
            batch = as_batch(images[start:start + batch_size], size)
            if device is not None:
                batch = batch.to(device)
            pred = check_prediction(estimator(batch), batch.shape[0], getattr(estimator, "name", "estimator"))
            out.append((pred - pred[:, :1]).cpu().numpy())
    finally:
        if module is not None:
            module.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, NUM_JOINTS, 3), np.float32)


def save_estimator(path: str | os.PathLike, model: BaselineEstimator, meta: dict | None = None,
                   extra: dict | None = None) -> None:
    """Write a baseline checkpoint atomically."""
    state = {"format": ESTIMATOR_FORMAT, "config": model.config(),
             "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "meta": meta or {}}
    atomic_write(path, lambda tmp: torch.save(state | (extra or {}), tmp))


def read_estimator_file(path: str | os.PathLike) -> dict:
    return read_checkpoint(path, ESTIMATOR_FORMAT, EstimatorError,
                           "Train one with train/pretrain_estimator.py, or omit it for the shipped baseline")


def _is_factory(obj) -> bool:
    """The ``module:callable`` rule: a callable that takes no arguments builds the estimator; one that
    takes an argument (the images) is the estimator."""
    if not callable(obj) or isinstance(obj, torch.nn.Module):
        return False
    try:
        params = inspect.signature(obj).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature: treat as the estimator
        return False
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return not any(p.kind in positional and p.default is inspect.Parameter.empty for p in params) and not any(
        p.kind == inspect.Parameter.VAR_POSITIONAL for p in params)


def _check_not_a_module(spec: str) -> None:
    """A spec without a colon is a checkpoint; if it names a Python file or module instead, say how to
    name the callable in it."""
    if Path(spec).is_file() and Path(spec).suffix != ".py":
        return
    module = spec[:-3].replace("/", ".").replace(os.sep, ".") if spec.endswith(".py") else spec
    try:
        found = spec.endswith(".py") or (bool(module) and importlib.util.find_spec(module) is not None)
    except (ImportError, ValueError):
        found = False
    if found:
        raise EstimatorError(f"estimator {spec!r} names Python code, not a checkpoint; name the callable in it as "
                             f"'module:callable', e.g. '{module.strip('.')}:make_estimator' (the module importable, "
                             "on PYTHONPATH)")


def load_estimator(spec=None, device=None) -> PoseEstimator | torch.nn.Module:
    """An estimator from: None (the shipped baseline), a shipped name (``SHIPPED_ESTIMATORS``), a
    checkpoint path, ``"module:callable"``, an estimator object, or any callable (wrapped and checked).
    A checkpoint loads onto ``device`` (default: CUDA when present); a given torch module moves only
    when ``device`` is given; a callable is handed crops on ``device``, else on the device it
    declares (its ``device`` attribute), else on the CPU."""
    if isinstance(spec, str) and spec in SHIPPED_ESTIMATORS:
        spec = SHIPPED_ESTIMATORS[spec]
    if isinstance(spec, (str, os.PathLike)) and ":" not in str(spec):
        _check_not_a_module(str(spec))
    if spec is None or isinstance(spec, (str, os.PathLike)) and (Path(spec).suffix in (".pt", ".pth")
                                                                  or ":" not in str(spec)):
        state = read_estimator_file(DEFAULT_ESTIMATOR_PATH if spec is None else spec)
        model = BaselineEstimator(**state["config"])
        model.load_state_dict(state["state_dict"])
        model.meta = state.get("meta", {})
        return model.to(resolve_device(device)).eval()
    if isinstance(spec, str):
        module_name, _, attr = spec.partition(":")
        try:
            obj = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as err:
            raise EstimatorError(f"cannot load estimator {spec!r}: {err}. Use 'package.module:callable' with "
                                 "the module importable (on PYTHONPATH)") from err
        if isinstance(obj, type) or _is_factory(obj):
            try:
                obj = obj()  # a class or factory: build the estimator
            except TypeError as err:
                raise EstimatorError(f"cannot build estimator {spec!r}: {err}. A class or a callable that takes no "
                                     "arguments is called to build the estimator; give its arguments defaults, "
                                     "or export a function of no arguments that returns the model") from err
        spec = obj
    if isinstance(spec, torch.nn.Module) and hasattr(spec, "input_size"):
        return spec.to(device) if device else spec
    if callable(spec):
        return CallableEstimator(spec, device=device)
    raise EstimatorError(f"not an estimator: {spec!r}; pass a checkpoint path, 'module:callable' or a callable")
