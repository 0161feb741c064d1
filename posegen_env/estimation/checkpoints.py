"""Estimators on disk, and ``load_estimator``, which turns any way of naming an estimator into one.

PoseGen's checkpoint format (a baseline's config or a module's ``module:callable`` factory, with its
weights), plain ``state_dict`` files as researchers' checkpoints come, the shipped estimators by
name, and the loader that accepts any of them -- or a ``module:callable``, an estimator object or a
callable -- and returns an estimator ready to call.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch

from posegen_env.device import resolve_device
from posegen_env.estimation.baseline import BaselineEstimator
from posegen_env.estimation.plugins import CallableEstimator, build_from, check_not_a_module
from posegen_env.estimation.spec import EstimatorError, PoseEstimator, spec_of
from posegen_env.files import atomic_write, listing, read_checkpoint, read_torch_file

ESTIMATOR_FORMAT = "posegen-estimator-v1"
DEFAULT_ESTIMATOR_PATH = Path(__file__).resolve().parents[1] / "assets" / "default_estimator.pt"
# The shipped estimators by name: the one-person baseline, the baseline pre-trained on the cast, and
# the one pre-trained on the people space (train/pretrain_estimator.py; benchmarks/RESULTS.md).
SHIPPED_ESTIMATORS = {"baseline": DEFAULT_ESTIMATOR_PATH,
                      "cast-baseline": DEFAULT_ESTIMATOR_PATH.with_name("default_cast_estimator.pt"),
                      "people-baseline": DEFAULT_ESTIMATOR_PATH.with_name("default_people_estimator.pt")}


def save_estimator(path: str | os.PathLike, model: torch.nn.Module, meta: dict | None = None,
                   extra: dict | None = None, factory: str | None = None, half: bool = False) -> None:
    """Write an estimator checkpoint atomically: a baseline with its config, any other module with the
    ``module:callable`` ``factory`` that rebuilds it and its ``state_dict``. ``half`` stores float
    weights as float16 (half the file, for shipping); loading casts them back to the model's dtype."""
    recipe: dict[str, object]
    if isinstance(model, BaselineEstimator):
        recipe = {"config": model.config()}
    elif factory:
        recipe = {"factory": factory}
    else:
        raise EstimatorError(f"saving a {type(model).__name__} needs the 'module:callable' factory that rebuilds it")
    state = {"format": ESTIMATOR_FORMAT, **recipe,
             "state_dict": {k: v.detach().cpu().half() if half and v.is_floating_point() else v.detach().cpu()
                            for k, v in model.state_dict().items()}, "meta": meta or {}}
    atomic_write(path, lambda tmp: torch.save(state | (extra or {}), tmp))


def read_estimator_file(path: str | os.PathLike) -> dict:
    return read_checkpoint(path, ESTIMATOR_FORMAT, EstimatorError,
                           f"The shipped ones are named {listing([repr(n) for n in SHIPPED_ESTIMATORS])}; "
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
        check_not_a_module(str(spec))
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
