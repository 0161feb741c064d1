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
from pathlib import Path

import torch

from posegen_env.cli import run_script
from posegen_env.data.base_splits import base_split
from posegen_env.data.dataset import DatasetError
from posegen_env.device import device_argument
from posegen_env.estimation.baseline import BaselineEstimator
from posegen_env.estimation.checkpoints import load_estimator, read_estimator_file, save_estimator
from posegen_env.estimation.plugins import absolute_callable
from posegen_env.estimation.spec import EstimatorError, spec_of
from posegen_env.estimation.targets import training_data
from posegen_env.estimation.training import train_estimator, validation_mpjpe
from posegen_env.render.avatar import AvatarError
from posegen_env.render.avatar.loading import load_renderer
from posegen_env.render.backgrounds import BackgroundError, parse_backgrounds


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/estimator.pt"))
    parser.add_argument("--data-dir", type=Path, default=Path("runs/base_data"), help="cache of rendered splits")
    parser.add_argument("--avatar", default=None, help="avatar or cast file (default: the shipped avatar)")
    parser.add_argument("--train-samples", type=int, default=24000)
    parser.add_argument("--val-samples", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=8000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--width", type=int, default=48, help="channel width of the baseline CNN")
    parser.add_argument("--estimator", default=None, metavar="MODULE:CALLABLE",
                        help="train this torch module instead of the baseline CNN (a class or a callable of no "
                             "arguments that builds it)")
    parser.add_argument("--init", default=None, help="start from this estimator checkpoint (continue training)")
    parser.add_argument("--eval-every", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", type=device_argument, default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--background-mix", default="plain",
                        help='"plain" (a random colour per crop) or kind weights, e.g. "plain=1,texture=1"')
    parser.add_argument("--backgrounds", default=None, metavar="DIR", help="a folder of background photos to mix in")
    parser.add_argument("--recolour", action="store_true",
                        help="also swap colour channels and grey some crops (against learning the people's colours)")
    parser.add_argument("--half", action="store_true", help="store the final weights in float16 (half the file, as "
                        "the shipped estimators are)")
    parser.add_argument("--quick", action="store_true", help="tiny run for smoke tests")
    args = parser.parse_args(argv)
    if args.quick:
        args.train_samples, args.val_samples, args.steps, args.eval_every, args.width = 96, 32, 20, 10, 16
    if min(args.train_samples, args.val_samples, args.steps, args.batch) < 1:
        parser.error("sample counts, --steps and --batch must be positive")

    start = time.time()
    torch.manual_seed(args.seed)
    avatar = load_renderer(args.avatar, device=args.device)
    background = parse_backgrounds(args.background_mix, args.backgrounds)
    model = load_estimator(args.init, device="cpu") if args.init else \
        load_estimator(args.estimator) if args.estimator else BaselineEstimator(width=args.width)
    if not isinstance(model, torch.nn.Module):
        raise EstimatorError(f"{args.estimator or args.init} is not a torch module, so it cannot be trained")
    factory = None if isinstance(model, BaselineEstimator) else \
        absolute_callable(args.estimator) or read_estimator_file(args.init).get("factory")
    ckpt = args.out.with_name(args.out.name + ".ckpt")
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
        batch = base_split(avatar, name, samples, args.data_dir, crop_size=spec.input_size, background=background,
                           crop_scale=spec.crop_scale)
        return training_data(spec.joint_set, batch, avatar.body)

    train, val = split("train", args.train_samples), split("val", args.val_samples)

    def checkpoint(done: int, score: float, optimizer) -> None:
        if done < args.steps:
            save_estimator(ckpt, model, extra={"step": done, "optimizer": optimizer.state_dict()}, factory=factory)

    history = train_estimator(model, [(train, 1.0)], lambda m: validation_mpjpe(m, val), args.steps, args.batch,
                              args.lr, eval_every=args.eval_every, seed=args.seed, start_step=step,
                              optimizer_state=optimizer_state, on_eval=checkpoint, desc="pre-training estimator",
                              recolour=args.recolour)
    meta = {"init": args.init, "lr": args.lr, "train_samples": len(train), "val_samples": len(val),
            "steps": args.steps, "width": getattr(model, "width", None), "estimator": args.estimator,
            "input_size": spec.input_size, "joint_set": spec.joint_set.name,
            "val_mpjpe_mm": validation_mpjpe(model, val), "avatar": avatar.identifier,
            "background_mix": args.background_mix, "recolour": args.recolour, "backgrounds": args.backgrounds,
            "seconds": round(time.time() - start, 1), "history": {k: history[k] for k in ("step", "loss", "score")}}
    save_estimator(args.out, model, meta=meta, factory=factory, half=args.half)
    ckpt.unlink(missing_ok=True)
    print(json.dumps({k: v for k, v in meta.items() if k != "history"}))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)")


# What ends the script with one line instead of a traceback.
ERRORS = (AvatarError, BackgroundError, DatasetError, EstimatorError)


if __name__ == "__main__":
    run_script(main, "pretrain_estimator.py", ERRORS)
