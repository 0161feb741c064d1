"""Examine an estimator you cannot fine-tune: which poses, views, people and backgrounds it fails on.

Each policy learns against the estimator as in the rounds and collects the same number of
samples (a learned one also from its untrained start); nothing is fine-tuned, so any callable
works -- an exported ONNX or TFLite model behind a function, a closed service, a detector that
returns NaN when it finds no person (counted as "no detection").

    python train/examine.py --estimator my_pkg.onnx_wrapper:predict
    python train/examine.py --estimator examples/resnet_h36m.py:make_estimator --estimator-checkpoint runs/resnet.pt
    python train/examine.py --quick                      # a tiny run against the shipped baseline

The output folder holds each collection as a dataset (project format) with its hardest samples,
comparison.{md,json} (how much harder each policy's samples are than random's, anchor's and its
untrained start's, over seeds), error_maps.png (camera azimuth/elevation, body tilt) and
per_joint.png.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from agents.loop.examine import ExamineConfig, examine
from posegen_env.body.joint_sets import JointSetError
from posegen_env.cli import run_script
from posegen_env.data.dataset import DatasetError
from posegen_env.estimation.checkpoints import load_estimator, warn_if_untrained
from posegen_env.estimation.spec import EstimatorError
from posegen_env.render.avatar import AvatarError
from posegen_env.render.backgrounds import BackgroundError
from posegen_env.settings import EstimatorChoice, add_device_option, add_options, fill_preset, from_args, with_flags

QUICK = {"seeds": [0], "learn_steps": 64, "samples": 32, "num_envs": 16, "policies": ["search", "random"]}


def build_parser() -> argparse.ArgumentParser:
    """The command line, derived from ``ExamineConfig``."""
    defaults = ExamineConfig()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_options(p, EstimatorChoice, EstimatorChoice("people-baseline"))
    add_options(p, ExamineConfig, defaults, preset=QUICK)
    add_device_option(p)
    p.add_argument("--out", type=Path, default=None, help="output folder (default runs/examine-<time>)")
    p.add_argument("--quick", action="store_true", help="a tiny run for smoke tests")
    return p


def parse(argv=None) -> tuple[argparse.Namespace, ExamineConfig]:
    p = build_parser()
    args = p.parse_args(argv)
    fill_preset(args, ExamineConfig(), QUICK, args.quick)
    try:
        config = from_args(ExamineConfig, args)
    except ValueError as err:
        p.error(with_flags(ExamineConfig, str(err)))
    if args.out is not None and args.out.exists() and any(args.out.iterdir()):
        p.error(f"--out {args.out} is not empty; pass a new folder")
    return args, config


def main(argv=None) -> int:
    args, config = parse(argv)
    out = args.out or Path("runs") / time.strftime("examine-%Y%m%d-%H%M%S")
    estimator = load_estimator(args.estimator, args.device, checkpoint=args.estimator_checkpoint)
    warn_if_untrained(args.estimator, args.estimator_checkpoint, estimator)
    summary = examine(out, estimator, config, device=args.device)
    print("\n" + summary["markdown"])
    print(f"output: {out} (comparison.md, error_maps.png, per_joint.png, each collection's dataset)")
    return 0


# What ends the script with one line instead of a traceback.
ERRORS = (AvatarError, BackgroundError, DatasetError, EstimatorError, JointSetError, ValueError)


if __name__ == "__main__":
    run_script(main, "examine.py", ERRORS)
