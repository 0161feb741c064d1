"""Pre-train an estimator on the base distribution: PoseGen's stand-in for a public dataset.

The data are base-library poses (with noise, mirroring and blending) seen by near-frontal,
eye-level cameras, rendered by the avatar NeRF as person crops of the estimator's declared size
and margin, and cached in the dataset format. The estimator is the baseline CNN, or any torch
module a ``package.module:callable`` builds (trained on its own joint set and unit). Training
shows progress, validates on a held-out in-distribution split, checkpoints atomically to
``OUT.ckpt`` and resumes from it.

    python train/pretrain_estimator.py --out posegen_env/assets/default_estimator.pt
    python train/pretrain_estimator.py --estimator examples.resnet_h36m:make_estimator --out runs/resnet.pt
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from posegen_env.cli import run_script
from posegen_env.data.base_splits import base_split
from posegen_env.data.dataset import DatasetError
from posegen_env.estimation.baseline import BaselineEstimator
from posegen_env.estimation.checkpoints import load_estimator, read_estimator_file, save_estimator
from posegen_env.estimation.plugins import absolute_callable
from posegen_env.estimation.spec import EstimatorError, spec_of
from posegen_env.estimation.targets import training_data
from posegen_env.estimation.training import Training, train_estimator, validation_mpjpe
from posegen_env.render.avatar import AvatarError
from posegen_env.render.avatar.loading import load_renderer
from posegen_env.render.backgrounds import BackgroundError, parse_backgrounds
from posegen_env.settings import (
    add_device_option,
    add_options,
    background_mix_option,
    backgrounds_option,
    check_counts,
    fill_preset,
    from_args,
    option,
    with_flags,
)


@dataclass
class PretrainConfig:
    """Pre-training's settings: the command line is derived from these fields; the estimator file's
    metadata records them."""

    out: Path = option(Path("runs/estimator.pt"), parse=Path, metavar="PATH", help="the estimator file to write")
    data_dir: Path = option(Path("runs/base_data"), parse=Path, metavar="DIR", help="cache of rendered splits")
    avatar: str | None = option(None, help="avatar or cast file (default: the shipped avatar)")
    train_samples: int = option(24000, help="base crops to train on")
    val_samples: int = option(1000, help="held-out in-distribution crops to validate on")
    steps: int = option(8000, help="optimiser steps")
    batch: int = option(64, help="crops per step")
    lr: float = option(2e-3, help="learning rate; default %(default)s")
    width: int = option(48, help="channel width of the baseline CNN")
    estimator: str | None = option(None, metavar="MODULE:CALLABLE", help=(
        "train this torch module instead of the baseline CNN (a class or a callable of no arguments that builds it)"))
    init: str | None = option(None, metavar="PATH", help="start from this estimator checkpoint (continue training)")
    eval_every: int = option(1000, help="steps between validations (and checkpoints)")
    seed: int = option(0, help="seed of the initialisation and the batches")
    background_mix: str = background_mix_option("plain")
    backgrounds: str | None = backgrounds_option()
    recolour: bool = option(False, help="also swap colour channels and grey some crops (against learning the people's "
                                        "colours)")
    half: bool = option(False, help="store the final weights in float16 (half the file, as the shipped estimators are)")

    def __post_init__(self) -> None:
        check_counts(self, ("train_samples", "val_samples", "steps", "batch", "eval_every", "width"))
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")


QUICK = {"train_samples": 96, "val_samples": 32, "steps": 20, "eval_every": 10, "width": 16}


def parse(argv=None) -> tuple[argparse.Namespace, PretrainConfig]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = PretrainConfig()
    add_options(parser, PretrainConfig, defaults, preset=QUICK)
    add_device_option(parser)
    parser.add_argument("--quick", action="store_true", help="tiny run for smoke tests")
    args = parser.parse_args(argv)
    fill_preset(args, defaults, QUICK, args.quick)
    try:
        return args, from_args(PretrainConfig, args)
    except ValueError as err:
        parser.error(with_flags(PretrainConfig, str(err)))


def main(argv=None) -> None:
    args, config = parse(argv)
    start = time.time()
    torch.manual_seed(config.seed)
    avatar = load_renderer(config.avatar, device=args.device)
    background = parse_backgrounds(config.background_mix, config.backgrounds)
    model = load_estimator(config.init, device="cpu") if config.init else \
        load_estimator(config.estimator) if config.estimator else BaselineEstimator(width=config.width)
    if not isinstance(model, torch.nn.Module):
        raise EstimatorError(f"{config.estimator or config.init} is not a torch module, so it cannot be trained")
    factory = None if isinstance(model, BaselineEstimator) else \
        absolute_callable(config.estimator) or read_estimator_file(config.init).get("factory")
    ckpt = config.out.with_name(config.out.name + ".ckpt")
    step, optimizer_state = 0, None
    if ckpt.exists():
        state = read_estimator_file(ckpt)
        model = load_estimator(ckpt, device="cpu")
        step, optimizer_state = state["step"], state["optimizer"]
        print(f"resuming from {ckpt} at step {step}")
    model = model.to(args.device)
    spec = spec_of(model)
    print(f"training {type(model).__name__}: {spec.describe()}")

    def split(name: str, samples: int):
        batch = base_split(avatar, name, samples, config.data_dir, crop_size=spec.input_size, background=background,
                           crop_scale=spec.crop_scale)
        return training_data(spec.joint_set, batch, avatar.body)

    train, val = split("train", config.train_samples), split("val", config.val_samples)

    def checkpoint(done: int, score: float, optimizer) -> None:
        if done < config.steps:
            save_estimator(ckpt, model, extra={"step": done, "optimizer": optimizer.state_dict()}, factory=factory)

    training = Training(steps=config.steps, batch_size=config.batch, lr=config.lr, eval_every=config.eval_every,
                        seed=config.seed, recolour=config.recolour)
    history = train_estimator(model, [(train, 1.0)], lambda m: validation_mpjpe(m, val), training, start_step=step,
                              optimizer_state=optimizer_state, on_eval=checkpoint, desc="pre-training estimator")
    meta = {"init": config.init, "lr": config.lr, "train_samples": len(train), "val_samples": len(val),
            "steps": config.steps, "width": getattr(model, "width", None), "estimator": config.estimator,
            "input_size": spec.input_size, "joint_set": spec.joint_set.name,
            "val_mpjpe_mm": validation_mpjpe(model, val), "avatar": avatar.identifier,
            "background_mix": config.background_mix, "recolour": config.recolour, "backgrounds": config.backgrounds,
            "seconds": round(time.time() - start, 1), "history": {k: history[k] for k in ("step", "loss", "score")}}
    save_estimator(config.out, model, meta=meta, factory=factory, half=config.half)
    ckpt.unlink(missing_ok=True)
    print(json.dumps({k: v for k, v in meta.items() if k != "history"}))
    print(f"wrote {config.out} ({config.out.stat().st_size / 1e6:.1f} MB)")


# What ends the script with one line instead of a traceback.
ERRORS = (AvatarError, BackgroundError, DatasetError, EstimatorError)


if __name__ == "__main__":
    run_script(main, "pretrain_estimator.py", ERRORS)
