"""3D pose estimators: one small interface, PoseGen's baseline CNN, and adapters for your own.

The interface: a batch of square person crops in, 3D joints in camera axes out. What crops an
estimator takes and which joints it returns (size, normalisation, joint set, unit) it declares
in its spec (``estimation.spec``); PoseGen prepares its input and reads its output accordingly,
so ``predict`` always returns root-relative metres in the estimator's joint set. The baseline
takes 64 px RGB crops in [0, 1] and returns SMPL's 24 joints in metres.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F

from posegen_env.body.joints import MIRROR_JOINTS, NUM_JOINTS
from posegen_env.device import resolve_device
from posegen_env.estimation.spec import EstimatorSpec, SpecError, check_units
from posegen_env.files import atomic_write, read_checkpoint, read_torch_file

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
        self.spec = EstimatorSpec(input_size=self.input_size)  # [0, 1] RGB in (it normalises itself), SMPL-24 m out
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
    """Wraps a user's function or model so it meets the interface, keeping the spec it declares."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], name: str = "", device=None):
        self.fn = fn
        self.name = name or getattr(fn, "name", None) or getattr(fn, "__name__", type(fn).__name__)
        self.spec = spec_of(fn)
        self.input_size = self.spec.input_size
        # the crops' device: as given, else as the callable declares (a ``device`` attribute), else the CPU
        self.device = torch.device(device if device is not None else getattr(fn, "device", "cpu"))

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return self.fn(images)


def as_batch(images, input_size: int) -> torch.Tensor:
    """Crops as float (B, 3, S, S) in [0, 1]: accepts uint8 or float, NHWC or NCHW, numpy or torch.

    Crops of another square size are resampled, with a warning: a resampled crop is blurrier (or
    coarser) than the estimator's own input, which costs accuracy that is not the estimator's.
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
        warnings.warn(f"{x.shape[2]} px crops resampled to the estimator's {input_size} px input; render them at "
                      f"its size (image_size / --image-size {input_size}) to score it fairly", stacklevel=3)
        x = F.interpolate(x, size=(input_size, input_size), mode="area" if x.shape[2] > input_size else "bilinear")
    return x.contiguous()


def check_prediction(pred, batch: int, spec: EstimatorSpec, name: str = "estimator",
                     missing: bool = False) -> torch.Tensor:
    """The estimator's output as float (B, J, 3) in its declared set, or a clear error saying what is
    wrong with it. With ``missing``, a sample with NaN joints is a detector that found no person: its
    row is returned as NaN instead of failing."""
    joints = spec.joint_set
    expected = f"({batch}, {len(joints)}, 3): {joints.name} joints in camera axes, in {spec.units}"
    if not torch.is_tensor(pred):
        try:
            pred = torch.as_tensor(np.asarray(pred), dtype=torch.float32)
        except (TypeError, ValueError) as err:
            raise EstimatorError(f"{name} returned {type(pred).__name__}, expected a {expected} array") from err
    if pred.ndim == 3 and pred.shape[0] == batch and pred.shape[2] == 3 and pred.shape[1] != len(joints):
        raise EstimatorError(f"{name} returned {pred.shape[1]} joints, but declares the {joints.name} set of "
                             f"{len(joints)}; declare its joint_set (a built-in name or its list of joint names, "
                             "docs/estimators.md)")
    if tuple(pred.shape) != (batch, len(joints), 3):
        raise EstimatorError(f"{name} returned shape {tuple(pred.shape)} for {batch} images; expected {expected}")
    pred = pred.float()
    bad = ~torch.isfinite(pred).reshape(batch, -1).all(dim=1)
    if bad.any():
        if not missing:
            raise EstimatorError(f"{name} predicted NaN or inf for samples {torch.nonzero(bad)[:5, 0].tolist()}; a "
                                 "detector that finds no person may return NaN only in examine mode "
                                 "(train/examine.py), which counts it as 'no detection'")
        pred = pred.clone()
        pred[bad] = float("nan")
    return pred


@torch.no_grad()
def predict(estimator, images, batch_size: int = 256, device=None, missing: bool = False,
            units_check: bool = True) -> np.ndarray:
    """Root-relative joints (N, J, 3) in metres, in the estimator's joint set, for N crops: checked, in
    evaluation mode. ``missing``: NaN rows for samples it finds no person in (``check_prediction``);
    ``units_check``: refuse outputs whose size contradicts the declared unit (off while training,
    when an untrained model's output means nothing)."""
    return predict_tensor(estimator, images, batch_size, device, missing, units_check).cpu().numpy()


@torch.no_grad()
def predict_tensor(estimator, images, batch_size: int = 256, device=None, missing: bool = False,
                   units_check: bool = True) -> torch.Tensor:
    """``predict`` as a float32 tensor on the device the images are on (the CPU for numpy images): crops
    rendered on a GPU are scored there without a round trip. The estimator runs on its own device
    (a module's parameters', a callable's declared one, or ``device``)."""
    spec = spec_of(estimator)
    name = getattr(estimator, "name", type(estimator).__name__)
    module = estimator if isinstance(estimator, torch.nn.Module) else None
    home = images.device if torch.is_tensor(images) else torch.device("cpu")
    was_training = module.training if module is not None else False
    if module is not None:
        module.eval()
        device = device or next(module.parameters()).device
    else:
        device = device or getattr(estimator, "device", None)
    out = []
    try:
        for start in range(0, len(images), batch_size):
            batch = as_batch(images[start:start + batch_size], spec.input_size)
            if device is not None:
                batch = batch.to(device)
            pred = check_prediction(_call(estimator, spec.prepare(batch), name), batch.shape[0], spec, name, missing)
            out.append(spec.to_metres(pred).to(home))
    finally:
        if module is not None:
            module.train(was_training)
    joints = torch.cat(out) if out else torch.zeros((0, len(spec.joint_set), 3), device=home)
    if units_check:
        try:
            check_units(joints, spec, name)
        except SpecError as err:
            raise EstimatorError(str(err)) from None
    return joints


def _call(estimator, images: torch.Tensor, name: str):
    """The estimator's output on ``images``; an error in its own code is named, with its message kept
    (the original traceback stays chained to it)."""
    try:
        return estimator(images)
    except torch.cuda.OutOfMemoryError:
        raise
    except Exception as err:
        raise EstimatorError(f"{name} raised {type(err).__name__} on a batch of {len(images)} crops of shape "
                             f"{tuple(images.shape[1:])}: {err}") from err


def save_estimator(path: str | os.PathLike, model: torch.nn.Module, meta: dict | None = None,
                   extra: dict | None = None, factory: str | None = None) -> None:
    """Write an estimator checkpoint atomically: a baseline with its config, any other module with the
    ``module:callable`` ``factory`` that rebuilds it and its ``state_dict``."""
    recipe: dict[str, object]
    if isinstance(model, BaselineEstimator):
        recipe = {"config": model.config()}
    elif factory:
        recipe = {"factory": factory}
    else:
        raise EstimatorError(f"saving a {type(model).__name__} needs the 'module:callable' factory that rebuilds it")
    state = {"format": ESTIMATOR_FORMAT, **recipe,
             "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "meta": meta or {}}
    atomic_write(path, lambda tmp: torch.save(state | (extra or {}), tmp))


def read_estimator_file(path: str | os.PathLike) -> dict:
    return read_checkpoint(path, ESTIMATOR_FORMAT, EstimatorError,
                           f"The shipped ones are named {' and '.join(repr(n) for n in SHIPPED_ESTIMATORS)}; "
                           "train your own with train/pretrain_estimator.py, or name a 'module:callable'")


def read_state_dict(path: str | os.PathLike) -> dict:
    """Weights from a PoseGen estimator checkpoint, or from a plain ``torch.save(model.state_dict())``
    file (or one dict holding it under ``state_dict``/``model``), as researchers' checkpoints come."""
    state = read_torch_file(path, EstimatorError, "Pass the state_dict file of the module the estimator builds")
    if isinstance(state, dict) and state.get("format") == ESTIMATOR_FORMAT:
        state = state["state_dict"]
    elif isinstance(state, dict):
        state = next((state[k] for k in ("state_dict", "model") if isinstance(state.get(k), dict)), state)
    if not isinstance(state, dict) or not state or not all(torch.is_tensor(v) for v in state.values()):
        raise EstimatorError(f"{path}: no state_dict of tensors in it; save one with "
                             "torch.save(model.state_dict(), path)")
    return state


def load_weights(model: torch.nn.Module, state: dict, source: str) -> None:
    """``state`` into ``model``, or an error saying that it belongs to another architecture."""
    mine = model.state_dict()
    missing, unexpected = sorted(set(mine) - set(state)), sorted(set(state) - set(mine))
    wrong = sorted(k for k in set(mine) & set(state) if tuple(mine[k].shape) != tuple(state[k].shape))
    if missing or unexpected or wrong:
        parts = [f"{label}: {', '.join(keys[:4])}{', ...' if len(keys) > 4 else ''}" for label, keys in
                 (("missing", missing), ("unexpected", unexpected), ("other shapes", wrong)) if keys]
        raise EstimatorError(f"{source} holds weights of another architecture than {type(model).__name__} "
                             f"({'; '.join(parts)}); pass the checkpoint saved from this model, or the factory "
                             "that built it")
    model.load_state_dict(state)


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
        example = f"{spec}:make_estimator" if spec.endswith(".py") else f"{module.strip('.')}:make_estimator"
        raise EstimatorError(f"estimator {spec!r} names Python code, not a checkpoint; name the callable in it as "
                             f"'module:callable' or 'file.py:callable', e.g. '{example}'")


def _import(spec: str, what: str = "estimator"):
    """The object a ``module:callable`` string names; the module may also be a ``.py`` file's path."""
    module_name, _, attr = spec.rpartition(":")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name).resolve()
            if not path.is_file():
                raise ImportError(f"no file {module_name}")
            name = f"posegen_user.{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
            if name not in sys.modules:  # loaded once, so its classes stay the same objects
                found = importlib.util.spec_from_file_location(name, path)
                assert found is not None and found.loader is not None
                module = importlib.util.module_from_spec(found)
                sys.modules[name] = module
                try:
                    found.loader.exec_module(module)
                except BaseException:
                    del sys.modules[name]
                    raise
            return getattr(sys.modules[name], attr)
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, SyntaxError) as err:
        raise EstimatorError(f"cannot load {what} {spec!r}: {type(err).__name__}: {err}. Use 'package.module:callable' "
                             "with the module importable (on PYTHONPATH), or 'path/to/file.py:callable'") from err


def absolute_callable(spec: str | None) -> str | None:
    """``spec`` with a relative ``.py`` file path made absolute, so a run resumes from any directory."""
    if spec is None or ":" not in spec:
        return spec
    module_name, _, attr = spec.rpartition(":")
    if module_name.endswith(".py") and Path(module_name).is_file():
        return f"{Path(module_name).resolve()}:{attr}"
    return spec


def build_from(spec: str, what: str = "estimator") -> Callable:
    """The estimator a ``module:callable`` names: the callable itself, or what it builds when it is a
    class or takes no arguments (the one rule, whatever its name)."""
    obj = _import(spec, what)
    if isinstance(obj, type) or _is_factory(obj):
        name = getattr(obj, "__qualname__", type(obj).__name__)
        try:
            obj = obj()
        except TypeError as err:
            raise EstimatorError(f"cannot build {what} {spec!r}: {err}. A class or a callable that takes no "
                                 "arguments is called to build the estimator; give its arguments defaults, "
                                 "or export a function of no arguments that returns the model") from err
        except Exception as err:  # the user's own code failed: name it and keep its message
            raise EstimatorError(f"cannot build {what} {spec!r}: calling {name}() raised {type(err).__name__}: "
                                 f"{err}") from err
    return obj


def warn_if_untrained(spec, checkpoint, estimator) -> None:
    """Warn when a ``module:callable`` builds a torch module and no checkpoint gives it weights: unless
    its factory loads trained weights itself, it is an untrained network (its errors mean nothing)."""
    if isinstance(spec, str) and ":" in spec and checkpoint is None and isinstance(estimator, torch.nn.Module):
        warnings.warn(f"{spec} builds a torch module and no --estimator-checkpoint gives it weights: unless its "
                      "factory loads trained weights itself, it is an untrained network and 'pretrained' means its "
                      "initial weights; pass --estimator-checkpoint WEIGHTS", UserWarning, stacklevel=2)


def _from_checkpoint(path) -> torch.nn.Module:
    state = read_estimator_file(path)
    weights = state.get("state_dict")
    if not isinstance(weights, dict) or not weights or not all(torch.is_tensor(v) for v in weights.values()):
        raise EstimatorError(f"{path}: malformed estimator checkpoint: no 'state_dict' of tensors in it; write it "
                             "with save_estimator (train/pretrain_estimator.py does)")
    if isinstance(state.get("factory"), str):
        model = build_from(state["factory"])
        if not isinstance(model, torch.nn.Module):
            raise EstimatorError(f"{path}: its factory {state['factory']!r} no longer builds a torch module")
    elif isinstance(state.get("config"), dict):
        try:
            model = BaselineEstimator(**state["config"])
        except (TypeError, ValueError, RuntimeError) as err:
            raise EstimatorError(f"{path}: malformed estimator checkpoint: its config {state['config']!r} does not "
                                 f"build the baseline network ({err}); write it with save_estimator") from None
    else:
        raise EstimatorError(f"{path}: malformed estimator checkpoint: neither a 'config' dict nor a 'factory' "
                             "string says which network its weights belong to; write it with save_estimator")
    load_weights(model, weights, str(path))
    model.meta = state.get("meta", {})
    return model


def load_estimator(spec=None, device=None, checkpoint=None) -> PoseEstimator | torch.nn.Module:
    """An estimator from: None (the shipped baseline), a shipped name (``SHIPPED_ESTIMATORS``), a
    checkpoint path, ``"module:callable"``, an estimator object, or any callable (wrapped and checked).
    ``checkpoint``: weights (PoseGen's or a plain state_dict file) for the torch module ``spec`` builds.
    A checkpoint loads onto ``device`` (default: CUDA when present); a given torch module moves only
    when ``device`` is given; a callable is handed crops on ``device``, else on the device it
    declares (its ``device`` attribute), else on the CPU."""
    if isinstance(spec, str) and spec in SHIPPED_ESTIMATORS:
        spec = SHIPPED_ESTIMATORS[spec]
    if isinstance(spec, (str, os.PathLike)) and ":" not in str(spec):
        _check_not_a_module(str(spec))
    if spec is None or isinstance(spec, (str, os.PathLike)) and (Path(spec).suffix in (".pt", ".pth")
                                                                  or ":" not in str(spec)):
        if checkpoint is not None:
            raise EstimatorError("--estimator-checkpoint is for a 'module:callable' estimator; a checkpoint file "
                                 "is itself the estimator (pass it as --estimator)")
        return _from_checkpoint(DEFAULT_ESTIMATOR_PATH if spec is None else spec).to(resolve_device(device)).eval()
    if isinstance(spec, str):
        spec = build_from(spec)
    if checkpoint is not None:
        if not isinstance(spec, torch.nn.Module):
            raise EstimatorError(f"a checkpoint was given, but the estimator is a {type(spec).__name__}, not a torch "
                                 "module to load weights into")
        load_weights(spec, read_state_dict(checkpoint), str(checkpoint))
    if isinstance(spec, torch.nn.Module):
        spec_of(spec)  # its declared spec is usable
        return spec.to(device) if device else spec
    if isinstance(spec, CallableEstimator) and device is None:
        return spec  # already wrapped and checked
    if callable(spec):
        return CallableEstimator(spec, device=device)
    raise EstimatorError(f"not an estimator: {spec!r}; pass a checkpoint path, 'module:callable' or a callable")
