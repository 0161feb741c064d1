"""Training and fine-tuning pose estimators on labelled crops, with validation and early stopping.

Pre-training and PoseGen's fine-tuning rounds use the same loop. Fine-tuning mixes the new
(hard) samples with replay of base data at a fixed ratio, then blends the weights back towards
the pre-trained ones just as far as an in-distribution validation split allows, so that gains on
hard data cost at most a set share of in-distribution accuracy.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from tqdm import tqdm

from posegen_env.data.dataset import PoseData
from posegen_env.estimation.metrics import mpjpe
from posegen_env.estimation.prediction import as_batch, evaluation_mode, predict
from posegen_env.estimation.spec import EstimatorError, mirror_joints, spec_of

# Every public torch module with batch-norm running statistics (their common base class is private).
BATCH_NORMS = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d, torch.nn.SyncBatchNorm,
               torch.nn.LazyBatchNorm1d, torch.nn.LazyBatchNorm2d, torch.nn.LazyBatchNorm3d)
OPTIMIZERS = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam, "sgd": torch.optim.SGD}
# A custom loss: (model, batch) -> scalar tensor; the batch's keys are listed in ``training_batch``.
Loss = Callable[[torch.nn.Module, dict], torch.Tensor]


def sample_mpjpe(model, data: PoseData) -> np.ndarray:
    """MPJPE in mm of ``model`` on each sample of ``data`` over its joint set's evaluation subset
    (``data.joints3d`` holds the targets in that set, root-relative)."""
    pred = predict(model, data.images, units_check=False)
    return mpjpe(pred, data.joints3d, joints=spec_of(model).joint_set.eval_index, root=None)


def validation_mpjpe(model, data: PoseData) -> float:
    """Mean ``sample_mpjpe`` of ``model`` on ``data``."""
    return float(sample_mpjpe(model, data).mean())


def default_loss(model: torch.nn.Module, batch: dict) -> torch.Tensor:
    """L1 in metres on the estimator's joints, root-relative in camera axes: robust to the occasional
    hard sample."""
    return (spec_of(model).to_metres(model(batch["images"])) - batch["joints3d"]).abs().mean()


def training_batch(model, sources: Sequence[PoseData], picks: Sequence[np.ndarray], generator: torch.Generator,
                   device, recolour: bool = False, flip: bool = False, labels: bool = False) -> dict:
    """One batch as a loss reads it, on ``device``: ``images`` (prepared as the model takes them),
    ``joints3d`` (its joint set, root-relative metres); with ``labels`` also everything the dataset
    format stores: ``smpl_joints3d`` (N, 24, 3) m, ``joints2d`` (N, 24, 2) crop pixels, ``visible``
    (N, 24), ``global_orient``, ``body_pose``, ``betas`` and the crop camera ``K``, ``R``, ``t``."""
    spec = spec_of(model)
    images = np.concatenate([d.images[i] for d, i in zip(sources, picks, strict=True)])
    x = _augment(as_batch(images, spec.input_size), generator, recolour)
    y = torch.as_tensor(np.concatenate([d.joints3d[i] for d, i in zip(sources, picks, strict=True)]),
                        dtype=torch.float32)
    batch: dict[str, torch.Tensor] = {}
    if flip:  # mirrored crops get mirrored labels (the richer labels are not mirrored: no flip with them)
        flipped = torch.rand(len(x), generator=generator) < 0.5
        x[flipped], y[flipped] = x[flipped].flip(-1), mirror_joints(y[flipped], spec.joint_set.mirror)
    if labels:
        if any(d.labels is None for d in sources):
            raise EstimatorError("a custom loss needs the full labels of every training source")
        parts = [d.labels.select(i) for d, i in zip(sources, picks, strict=True)]  # type: ignore[union-attr]
        cat = {f: np.concatenate([getattr(p, f) for p in parts]) for f in
               ("joints3d", "joints2d", "visible", "pose", "betas", "K", "R", "t")}
        arrays = {"smpl_joints3d": cat["joints3d"], "joints2d": cat["joints2d"], "visible": cat["visible"],
                  "global_orient": cat["pose"][:, :3], "body_pose": cat["pose"][:, 3:], "betas": cat["betas"],
                  "K": cat["K"], "R": cat["R"], "t": cat["t"]}
        batch = {k: torch.as_tensor(v).to(device) for k, v in arrays.items()}
    return batch | {"images": spec.prepare(x.to(device)), "joints3d": y.to(device)}


def _checked_loss(value, step: int) -> torch.Tensor:
    if not torch.is_tensor(value) or value.numel() != 1:
        shape = tuple(value.shape) if torch.is_tensor(value) else type(value).__name__
        raise EstimatorError(f"the loss returned {shape} at step {step}; it must return one scalar tensor "
                             "(reduce it, e.g. .mean())")
    if not torch.isfinite(value):
        raise EstimatorError(f"the loss returned {value.item()} at step {step}; check it for division by zero or "
                             "log of zero, or lower the learning rate. Rounds already written are kept")
    if not value.requires_grad:
        raise EstimatorError(f"the loss at step {step} does not depend on the model's parameters; compute it from "
                             "model(batch['images'])")
    return value.reshape(())


def check_loss(model: torch.nn.Module, loss, data: PoseData, device, name: str = "the loss") -> None:
    """Call a custom ``loss(model, batch)`` once on two samples of ``data`` (a copy of the model, so
    nothing it holds changes), so that a wrong signature or output fails at start-up with its reason,
    not at the first fine-tuning step of a long run."""
    probe = copy.deepcopy(model)
    batch = training_batch(probe, [data], [np.arange(min(2, len(data)))], torch.Generator().manual_seed(0), device,
                           labels=True)
    try:
        value = loss(probe, batch)
    except Exception as err:
        raise EstimatorError(f"{name} failed on a batch of two replay samples: {type(err).__name__}: {err}. It is "
                             f"called as loss(model, batch) with batch keys {', '.join(sorted(batch))} "
                             "(docs/estimators.md)") from err
    _checked_loss(value, 0)


def make_optimizer(model: torch.nn.Module, name: str, lr: float, weight_decay: float,
                   freeze: Sequence[str] = ()) -> torch.optim.Optimizer:
    """``name``'s optimiser over the parameters whose names start with none of ``freeze``."""
    if name not in OPTIMIZERS:
        raise EstimatorError(f"unknown optimiser {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    names = [n for n, _ in model.named_parameters()]
    unknown = [f for f in freeze if not any(n == f or n.startswith(f + ".") for n in names)]
    if unknown:
        tops = sorted({n.split(".")[0] for n in names})
        raise EstimatorError(f"no parameters named {', '.join(unknown)} to freeze; the model's modules are "
                             f"{', '.join(tops)} (name a module, e.g. 'features' or 'features.0')")
    params = [p for n, p in model.named_parameters()
              if p.requires_grad and not any(n == f or n.startswith(f + ".") for f in freeze)]
    if not params:
        raise EstimatorError("nothing left to train: every parameter is frozen or has requires_grad=False")
    extra = {"momentum": 0.9} if name == "sgd" else {}
    return OPTIMIZERS[name](params, lr=lr, weight_decay=weight_decay, **extra)


def freeze_batch_norm(model: torch.nn.Module) -> None:
    """Put every batch-norm layer of ``model`` in evaluation mode: training leaves their statistics as they are."""
    for m in model.modules():
        if isinstance(m, BATCH_NORMS):
            m.eval()


def cosine_factor(step: int, steps: int) -> float:
    """Share of the base learning rate at ``step`` of ``steps``: a cosine from 1 down to 0.05."""
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / max(steps, 1)))


def _augment(images: torch.Tensor, generator: torch.Generator, recolour: bool = False) -> torch.Tensor:
    """Photometric jitter (brightness, contrast, colour balance): geometry-free, so labels stay exact.

    ``recolour`` is the SPIN/HMR-class augmentation against learning the people: it also swaps each
    crop's colour channels at random, greys a fifth of the crops, scales the saturation of the rest
    (0.5-1.5) and blurs a quarter of them (a 3 x 3 Gaussian), so clothes, skin and their edges stop
    identifying the people an estimator was trained on."""
    b = images.shape[0]
    if recolour:
        order = torch.argsort(torch.rand(b, 3, generator=generator), dim=1)
        images = torch.gather(images, 1, order[:, :, None, None].expand_as(images))
        grey = images.mean(dim=1, keepdim=True)
        saturation = 0.5 + torch.rand(b, 1, 1, 1, generator=generator)
        saturation[torch.rand(b, generator=generator) < 0.2] = 0.0
        images = grey + saturation * (images - grey)
        blurred = torch.rand(b, generator=generator) < 0.25
        if blurred.any():
            images[blurred] = _blur(images[blurred])
    gain = 1 + 0.2 * (torch.rand(b, 1, 1, 1, generator=generator) - 0.5)
    colour = 1 + 0.1 * (torch.rand(b, 3, 1, 1, generator=generator) - 0.5)
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    contrast = 1 + 0.3 * (torch.rand(b, 1, 1, 1, generator=generator) - 0.5)
    return ((images - mean) * contrast + mean).mul(gain * colour).clamp_(0, 1)


_BLUR = torch.tensor([0.25, 0.5, 0.25])


def _blur(images: torch.Tensor) -> torch.Tensor:
    """A 3 x 3 Gaussian blur (sigma ~0.85 px) of crops (N, 3, H, W), edges replicated."""
    kernel = (_BLUR[:, None] * _BLUR[None, :]).to(images)[None, None].expand(3, 1, 3, 3)
    padded = torch.nn.functional.pad(images, (1, 1, 1, 1), mode="replicate")
    return torch.nn.functional.conv2d(padded, kernel, groups=3)


@dataclass(frozen=True)
class Training:
    """How an estimator trains: optimiser, schedule, batches and augmentation, for pre-training and
    fine-tuning alike.

    ``steps`` optimiser steps on batches of ``batch_size`` under a cosine schedule from ``lr``; every
    ``eval_every`` steps the score is measured, and with ``patience`` training stops after that many
    evaluations without improvement. ``flip_augment`` mirrors half of each batch; it is off by default
    because an asymmetric subject (a different colour on each sleeve, say) makes mirrored crops
    contradict its real left/right cues. ``freeze_norm`` keeps batch-norm statistics fixed, so unusual
    new images do not shift how every image is seen. ``recolour`` swaps colour channels, greys,
    desaturates and blurs crops (``_augment``). ``loss`` replaces the default L1 on the joints
    (``default_loss``) and then sees every label (``training_batch``); ``optimizer`` names one of
    ``OPTIMIZERS``; parameters under the ``freeze`` module names stay fixed.
    """

    steps: int
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    eval_every: int = 500
    patience: int | None = None
    seed: int = 0
    optimizer: str = "adamw"
    freeze: Sequence[str] = ()
    recolour: bool = False
    flip_augment: bool = False
    freeze_norm: bool = False
    loss: Loss | None = None


def train_estimator(model: torch.nn.Module, sources: list[tuple[PoseData, float]],
                    score: Callable[[torch.nn.Module], float] | None, training: Training, *, start_step: int = 0,
                    optimizer_state: dict | None = None,
                    on_eval: Callable[[int, float, torch.optim.Optimizer], None] | None = None,
                    desc: str = "training estimator") -> dict:
    """Train ``model`` as ``training`` says on batches drawn from ``sources`` in proportion to their
    weights, scoring it with ``score(model)`` (lower is better, e.g. validation MPJPE) every
    ``training.eval_every`` steps; the best-scoring weights (including the starting ones) are restored.
    ``start_step`` and ``optimizer_state`` resume a run that ``on_eval`` checkpointed."""
    t = training
    weights = np.array([w for _, w in sources], dtype=float)
    if (weights < 0).any() or weights.sum() <= 0 or any(len(d) == 0 for d, w in sources if w > 0):
        raise ValueError("training sources need positive weights and at least one sample each")
    weights /= weights.sum()
    device = next(model.parameters()).device
    opt = make_optimizer(model, t.optimizer, t.lr, t.weight_decay, t.freeze)
    if optimizer_state is not None:
        opt.load_state_dict(optimizer_state)
    for group in opt.param_groups:  # the schedule follows this call's ``lr``, also when resuming
        group["initial_lr"] = t.lr
    scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: cosine_factor(step, t.steps),
                                                  last_epoch=start_step - 1)
    generator = torch.Generator().manual_seed(t.seed + start_step)
    rng = np.random.default_rng(t.seed + start_step)
    history: dict[str, list[float]] = {"step": [], "loss": [], "score": []}
    initial = score(model) if score is not None else math.inf
    best = (initial, copy.deepcopy(model.state_dict()), start_step)
    stale, running = 0, []

    def train_mode() -> None:
        model.train()
        if t.freeze_norm:
            freeze_batch_norm(model)

    train_mode()
    with tqdm(total=t.steps, initial=start_step, desc=desc, unit="step") as bar:
        for step in range(start_step, t.steps):
            counts = rng.multinomial(t.batch_size, weights)
            idx = [rng.integers(len(d), size=c) for (d, _), c in zip(sources, counts, strict=True)]
            batch = training_batch(model, [d for d, _ in sources], idx, generator, device, t.recolour,
                                   flip=t.flip_augment and t.loss is None, labels=t.loss is not None)
            value = _checked_loss((t.loss or default_loss)(model, batch), step)
            opt.zero_grad(set_to_none=True)
            value.backward()
            opt.step()
            scheduler.step()
            running.append(value.item())
            bar.update(1)
            done = step + 1
            if done % t.eval_every == 0 or done == t.steps:
                history["step"].append(done)
                history["loss"].append(float(np.mean(running)))
                running = []
                scored = score(model) if score is not None else -float(done)
                train_mode()
                history["score"].append(scored)
                bar.set_postfix(loss=f"{history['loss'][-1] * 1000:.1f}mm", score=f"{scored:.1f}")
                if scored < best[0]:
                    best, stale = (scored, copy.deepcopy(model.state_dict()), done), 0
                else:
                    stale += 1
                if on_eval is not None:
                    on_eval(done, scored, opt)
                if t.patience is not None and stale >= t.patience:
                    bar.write(f"early stop at step {done}: no validation gain in {t.patience} evaluations")
                    break
    model.load_state_dict(best[1])
    model.eval()
    return history | {"initial_score": initial, "best_score": best[0], "best_step": best[2]}


def adapted_copy(model: torch.nn.Module, data: PoseData, steps: int, lr: float, batch_size: int = 32,
                 seed: int = 0) -> torch.nn.Module:
    """A copy of ``model`` briefly fine-tuned on ``data`` alone (the default loss, AdamW at a constant
    ``lr``, batch-norm statistics frozen as in ``finetune``): a cheap stand-in for what a round's
    fine-tuning would make of these samples. ``model`` itself is untouched."""
    adapted = copy.deepcopy(model)
    opt = make_optimizer(adapted, "adamw", lr, 0.0)
    generator, rng = torch.Generator().manual_seed(seed), np.random.default_rng(seed)
    device = next(adapted.parameters()).device
    freeze_batch_norm(adapted.train())
    for step in range(steps):
        batch = training_batch(adapted, [data], [rng.integers(len(data), size=batch_size)], generator, device)
        value = _checked_loss(default_loss(adapted, batch), step)
        opt.zero_grad(set_to_none=True)
        value.backward()
        opt.step()
    return adapted.eval()


def _per_sample_loss(model: torch.nn.Module):
    """(inputs, losses): prepared crops and targets of chosen rows, and ``default_loss`` per sample under
    given parameters (``torch.func.functional_call``), in evaluation mode as ``finetune`` trains."""
    spec = spec_of(model)
    device = next(model.parameters()).device
    buffers = dict(model.named_buffers())

    def inputs(d: PoseData, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        x = spec.prepare(as_batch(d.images[rows], spec.input_size).to(device))
        return x, torch.as_tensor(d.joints3d[rows], dtype=torch.float32, device=device)

    def losses(params: dict, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = torch.func.functional_call(model, (params, buffers), (x,))
        return (spec.to_metres(out) - y).abs().flatten(1).mean(dim=1)

    return inputs, losses


def _chunks(n: int, chunk: int) -> list[np.ndarray]:
    return np.array_split(np.arange(n), max(1, -(-n // chunk)))


def loss_gradient(model: torch.nn.Module, data: PoseData, chunk: int = 256) -> dict[str, torch.Tensor]:
    """The gradient of ``model``'s mean ``default_loss`` on ``data`` (no augmentation, batch-norm
    statistics as they are), per trainable parameter name; ``model`` is untouched."""
    inputs, losses = _per_sample_loss(model)
    own = {n: p for n, p in model.named_parameters() if p.requires_grad}
    gradient = {n: torch.zeros_like(p) for n, p in own.items()}
    with evaluation_mode(model):
        for rows in _chunks(len(data), chunk):
            loss = losses(own, *inputs(data, rows)).sum() / len(data)
            for n, g in zip(own, torch.autograd.grad(loss, list(own.values()), allow_unused=True), strict=True):
                if g is not None:
                    gradient[n] += g
    return gradient


def transfer_mm(model: torch.nn.Module, data: PoseData, probe_gradient: dict[str, torch.Tensor], lr: float,
                chunk: int = 256) -> np.ndarray:
    """Per sample of ``data``: how far one plain gradient step of ``lr`` on that sample alone would
    lower a probe set's ``default_loss``, in mm, to first order: ``lr * grad L_probe . grad L_i``
    (TracIn's influence estimate), with ``probe_gradient`` from ``loss_gradient``. Positive when
    learning the sample also teaches the probe, negative when it pulls against it. The directional
    derivatives come from one forward-mode pass per ``chunk`` (``torch.func.jvp``), so no per-sample
    gradient is ever stored; ``model`` is untouched."""
    inputs, losses = _per_sample_loss(model)
    params = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
    drops = []
    with evaluation_mode(model), torch.no_grad():
        for rows in _chunks(len(data), chunk):
            x, y = inputs(data, rows)
            slope = torch.func.jvp(lambda p, x=x, y=y: losses(p, x, y), (params,), (probe_gradient,))[1]
            drops.append(slope.double().cpu().numpy())
    return lr * 1000.0 * np.concatenate(drops)


def finetune(model: torch.nn.Module, new: PoseData, replay: PoseData, val: PoseData, training: Training, *,
             replay_ratio: float = 0.85, tolerance: float = 0.015, holdout: float = 0.1,
             reference_mpjpe: float | None = None, anchor: dict | None = None) -> dict:
    """Fine-tune on ``new`` samples mixed with ``replay`` of base data (``replay_ratio`` of every batch).

    A ``holdout`` fraction of the new samples measures progress on the hard data; training keeps
    the weights that do best there (stopping after ``patience`` evaluations without gain, if set). Then
    the fine-tuned weights are blended back towards ``anchor`` (a state dict; by default the
    starting weights; over several rounds, the original model's), weight-space ensembling as in
    WiSE-FT: the result is the largest blend whose in-distribution ``val`` MPJPE stays
    within ``tolerance`` (relative) of ``reference_mpjpe`` -- by default the starting model's; over
    several rounds pass the original model's, so that small losses cannot add up -- possibly the
    starting weights themselves. Blending keeps far more of the hard-data gain at a given in-distribution cost
    than stopping early does. Batch-norm statistics stay frozen (every batch-norm layer of any module
    is kept in evaluation mode), so the hard samples do not change how base images are normalised and
    the blend is exact for them; other buffers blend like weights. ``training`` as in ``train_estimator``.
    """
    if not 0.0 <= replay_ratio < 1.0:
        raise ValueError(f"replay_ratio must be in [0, 1), got {replay_ratio}")
    if len(new) < 2:
        raise ValueError(f"fine-tuning needs at least 2 new samples, got {len(new)}")
    order = np.random.default_rng(training.seed).permutation(len(new))
    n_hold = max(1, int(round(holdout * len(new))))
    hard_val, train_new = new.select(order[:n_hold]), new.select(order[n_hold:])
    start = copy.deepcopy(model.state_dict())
    anchor = start if anchor is None else {k: v.to(start[k].device) for k, v in anchor.items()}
    reference = validation_mpjpe(model, val) if reference_mpjpe is None else reference_mpjpe
    limit = reference * (1.0 + tolerance)
    sources = [(train_new, 1.0 - replay_ratio)] + ([(replay, replay_ratio)] if replay_ratio > 0 else [])
    history = train_estimator(model, sources, lambda m: validation_mpjpe(m, hard_val),
                              replace(training, freeze_norm=True), desc="fine-tuning estimator")
    tuned = copy.deepcopy(model.state_dict())
    blends: dict[str, list[float]] = {"alpha": [], "in_distribution": [], "hard": []}
    chosen = None
    for alpha in np.linspace(1.0, 0.0, 21):
        model.load_state_dict({k: torch.lerp(anchor[k].float(), tuned[k].float(), float(alpha)).to(start[k].dtype)
                               if start[k].is_floating_point() else tuned[k] for k in start})
        blends["alpha"].append(float(alpha))
        blends["in_distribution"].append(validation_mpjpe(model, val))
        blends["hard"].append(validation_mpjpe(model, hard_val))
        if blends["in_distribution"][-1] <= limit:
            chosen = (blends["hard"][-1], float(alpha), copy.deepcopy(model.state_dict()))
            break
    model.load_state_dict(start)
    kept = {"alpha": None, "hard": history["initial_score"]}  # the starting weights, unless a blend beats them
    if chosen is not None and chosen[0] < history["initial_score"]:
        model.load_state_dict(chosen[2])
        kept = {"alpha": chosen[1], "hard": chosen[0]}
    model.eval()
    return history | {"blend": blends, "alpha": kept["alpha"], "kept_hard": kept["hard"],
                      "in_distribution_limit": limit}
