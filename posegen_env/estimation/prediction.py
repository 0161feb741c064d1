"""Calling an estimator: crops in, checked root-relative metres out, whatever the estimator.

PoseGen prepares each batch as the estimator's spec declares (size, normalisation, channel order),
calls it, checks its output (shape, joint set, finite values, unit) with errors that say what is
wrong, and reads it in metres; so ``predict`` returns root-relative metres in the estimator's joint
set for the baseline, a checkpoint or a user's callable alike.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F

from posegen_env.estimation.spec import EstimatorError, EstimatorSpec, SpecError, check_units, spec_of


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


@contextmanager
def evaluation_mode(module: torch.nn.Module | None) -> Iterator[None]:
    """``module`` in evaluation mode (batch-norm statistics as they are, no dropout) for the block, then
    back in the mode it was in; nothing for a plain callable (None)."""
    was_training = module.training if module is not None else False
    if module is not None:
        module.eval()
    try:
        yield
    finally:
        if module is not None:
            module.train(was_training)


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
    if module is not None:
        device = device or next(module.parameters()).device
    else:
        device = device or getattr(estimator, "device", None)
    out = []
    with evaluation_mode(module):
        for start in range(0, len(images), batch_size):
            batch = as_batch(images[start:start + batch_size], spec.input_size)
            if device is not None:
                batch = batch.to(device)
            pred = check_prediction(_call(estimator, spec.prepare(batch), name), batch.shape[0], spec, name, missing)
            out.append(spec.to_metres(pred).to(home))
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
