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
from agents.policies import POLICIES
from posegen_env.body.joint_sets import JointSetError
from posegen_env.cli import run_script
from posegen_env.data.dataset import DatasetError
from posegen_env.device import device_argument
from posegen_env.envs.checks import MAX_IMAGE_SIZE
from posegen_env.envs.reward import RewardConfig
from posegen_env.estimation.checkpoints import load_estimator, warn_if_untrained
from posegen_env.estimation.spec import EstimatorError
from posegen_env.render.avatar import AvatarError
from posegen_env.render.backgrounds import BackgroundError

QUICK = {"seeds": [0], "learn_steps": 64, "samples": 32, "num_envs": 16, "policies": ["search", "random"]}


def parse(argv=None) -> tuple[argparse.Namespace, ExamineConfig]:
    d = ExamineConfig()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--estimator", default="people-baseline",
                   help="a shipped name, a checkpoint, 'package.module:callable' or 'file.py:callable' (any callable)")
    p.add_argument("--estimator-checkpoint", default=None, metavar="PATH", help="weights for the module it builds")
    p.add_argument("--policy", default=None, help=f"comma-separated, of {', '.join(POLICIES)}; "
                                                   f"default {','.join(d.policies)}")
    p.add_argument("--seeds", default=None, help=f"comma-separated seeds; default {','.join(map(str, d.seeds))}")
    p.add_argument("--learn-steps", type=int, default=None, help=f"default {d.learn_steps}")
    p.add_argument("--samples", type=int, default=None, help=f"collected per policy and seed; default {d.samples}")
    p.add_argument("--num-envs", type=int, default=None, help=f"default {d.num_envs}")
    p.add_argument("--search-agents", type=int, default=None,
                   help=f"agents of the search policy (default {d.search['num_agents']}; the rounds use 16)")
    p.add_argument("--search-draws", type=int, default=None,
                   help="draws per search agent and iteration (default 16)")
    p.add_argument("--search-replay", type=float, default=None,
                   help=f"share of the search's samples replayed from the best draws of its learning, with small "
                        f"edits (default {d.search['replay_share']}; 0: draw from its agents)")
    p.add_argument("--avatar", default=d.avatar)
    p.add_argument("--background-mix", default=d.background_mix)
    p.add_argument("--backgrounds", default=None, metavar="DIR")
    p.add_argument("--choose", default="", help='"subject", "background" or both')
    p.add_argument("--image-size", type=int, default=None, help="default: the estimator's declared input size")
    p.add_argument("--no-detection-mm", type=float, default=d.no_detection_mm,
                   help="error a sample scores when the estimator returns no pose (NaN); default %(default)s")
    p.add_argument("--reward", default="", metavar="KEY=VALUE,...",
                   help="reward settings (posegen_env/envs/reward.py RewardConfig), e.g. 'penetration_weight=10'; "
                        "default: the rounds' (mode=raw)")
    p.add_argument("--device", type=device_argument, default="auto")
    p.add_argument("--out", type=Path, default=None, help="output folder (default runs/examine-<time>)")
    p.add_argument("--quick", action="store_true", help="a tiny run for smoke tests")
    args = p.parse_args(argv)
    values = dict(QUICK) if args.quick else {}
    try:
        if args.policy is not None:
            values["policies"] = [n for n in args.policy.split(",") if n]
        if args.seeds is not None:
            values["seeds"] = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        p.error(f"--seeds {args.seeds!r}: give comma-separated whole numbers, e.g. 0,1,2")
    for name in ("learn_steps", "samples", "num_envs"):
        if getattr(args, name) is not None:
            values[name] = getattr(args, name)
    search = dict(d.search) | {k: v for k, v in (("num_agents", args.search_agents),
                                                 ("population_per_agent", args.search_draws),
                                                 ("replay_share", args.search_replay)) if v is not None}
    reward = dict(d.reward)
    for item in filter(None, args.reward.split(",")):
        key, _, value = item.partition("=")
        try:
            reward[key.strip()] = value.strip() if key.strip() in ("mode", "metric") else float(value)
        except ValueError:
            p.error(f"--reward {item!r}: give KEY=NUMBER (or mode=/metric= a name)")
    try:
        RewardConfig.from_any(reward)
        config = ExamineConfig(reward=reward, avatar=args.avatar, background_mix=args.background_mix,
                               backgrounds=args.backgrounds, choose=[c for c in args.choose.split(",") if c],
                               image_size=args.image_size, no_detection_mm=args.no_detection_mm, search=search,
                               **values)
    except ValueError as err:
        p.error(str(err))
    if args.image_size is not None and not 16 <= args.image_size <= MAX_IMAGE_SIZE:
        p.error(f"--image-size must be a crop side in pixels, 16 to {MAX_IMAGE_SIZE}")
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
