"""PoseGen's main loop: learn where the estimator fails, render data there, fine-tune, repeat.

Each round, for each policy: (1) the policy learns against the current estimator; (2) it
collects ``--samples`` plausible, de-duplicated samples; (3) the estimator is fine-tuned on them and
on the policy's samples of earlier rounds, with replay of base data, then blended back towards the
pre-trained weights as far as in-distribution accuracy requires; (4) the environment switches to
the fine-tuned estimator; (5) every test suite is evaluated. ``--policy all`` runs every policy
from the same pre-trained estimator with the same budget and writes a comparison.

    python train/run_agent.py                      # search policy, defaults
    python train/run_agent.py --policy all         # compare every policy (ppo, sac, search, random, prior, anchor)
    python train/run_agent.py --quick              # smoke test of the whole loop (under a minute)
    python train/run_agent.py --resume runs/agent-YYYYmmdd-HHMMSS
    python train/run_agent.py --examine --estimator my_pkg.onnx_wrapper:predict   # learn and collect only

The run directory holds results.{md,json,csv}, plots/, each round's dataset, hardest-sample grid,
policy and estimator checkpoints, and TensorBoard logs (``tensorboard --logdir RUN/tensorboard``).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

from agents.loop.report import markdown_table
from agents.loop.rounds import run_rounds
from agents.loop.run import RoundConfig, RunError
from agents.policies import POLICIES
from agents.policies.anchored import Anchoring
from agents.policies.objectives import OBJECTIVES
from posegen_env.cli import run_script
from posegen_env.data.dataset import DatasetError
from posegen_env.device import device_argument
from posegen_env.envs.action_space import check_choose
from posegen_env.envs.checks import MAX_IMAGE_SIZE
from posegen_env.envs.reward import METRICS, MODES, RewardConfig
from posegen_env.estimation.plugins import absolute_callable
from posegen_env.estimation.spec import EstimatorError
from posegen_env.estimation.training import OPTIMIZERS
from posegen_env.render.avatar import AvatarError
from posegen_env.render.backgrounds import parse_backgrounds

ORDER = ["search", "ppo", "sac", "random", "prior", "anchor"]
QUICK = {"rounds": 1, "samples": 48, "learn_steps": 64, "finetune_steps": 8, "replay_samples": 128,
         "val_samples": 64, "suite_samples": 32, "num_envs": 16}


def parse(argv=None) -> argparse.Namespace:
    defaults = RoundConfig()

    def sized(text: str, name: str) -> str:
        return f"{text}{'; ' if text else ''}default {getattr(defaults, name)}, with --quick {QUICK[name]}"

    argv = sys.argv[1:] if argv is None else list(argv)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                allow_abbrev=False)  # --resume tells given options by their full names
    p.add_argument("--policy", default="search",
                   help=f"one of {', '.join(ORDER)}, a comma-separated list of them, or 'all'")
    p.add_argument("--rounds", type=int, help=sized("", "rounds"))
    p.add_argument("--samples", type=int, help=sized("samples collected per round", "samples"))
    p.add_argument("--learn-steps", type=int, help=sized("env steps per round for learning", "learn_steps"))
    p.add_argument("--finetune-steps", type=int, help=sized("", "finetune_steps"))
    p.add_argument("--replay-ratio", type=float, default=defaults.replay_ratio)
    p.add_argument("--replay-samples", type=int,
                   help=sized("base crops to replay (rendered once, cached)", "replay_samples"))
    p.add_argument("--num-envs", type=int, help=sized("batch of the vector environment", "num_envs"))
    p.add_argument("--reach", type=float, default=defaults.reach,
                   help="largest step of a learned policy away from its anchor body and camera, per action "
                        "component (the box is [-1, 1]); default %(default)s, chosen on the suites' validation split")
    p.add_argument("--uniform-share", type=float, default=defaults.uniform_share,
                   help="share of the anchored policies' anchors drawn uniformly over the action box instead of "
                        "from the base distribution; default %(default)s, chosen on the suites' validation split")
    p.add_argument("--objective", choices=OBJECTIVES, default=defaults.objective,
                   help="what learned policies maximise: the estimator's error (the reward) or its learnability, "
                        "the error a briefly fine-tuned copy removes (agents/policies/objectives.py); "
                        "default %(default)s")
    p.add_argument("--fresh-share", type=float, default=defaults.fresh_share,
                   help="share of a learned policy's collected draws left at their anchor, so that the learned "
                        "samples add to the anchor distribution (Prioritized Level Replay's mixture); "
                        "default %(default)s")
    p.add_argument("--learn-view", action=argparse.BooleanOptionalAction, default=defaults.learn_view,
                   help="whether learned policies step the camera too; with --no-learn-view the view stays the "
                        "anchor's, uniform over the sphere, and only the body moves (default: learn it)")
    p.add_argument("--search-replay", type=float, default=defaults.search_replay,
                   help="share of the search's samples replayed from the best draws of its learning with small "
                        "edits (Prioritized Level Replay); default %(default)s")
    reward = RewardConfig.from_any(defaults.reward)
    p.add_argument("--reward-metric", choices=METRICS, default=reward.metric)
    p.add_argument("--reward-mode", choices=MODES, default=reward.mode,
                   help="default %(default)s: the anchoring keeps samples natural, and a cap would tie most draws")
    p.add_argument("--cap-mm", type=float, default=reward.cap_mm, help="error cap (capped) or band peak (band)")
    p.add_argument("--estimator", default=defaults.estimator,
                   help=f"a shipped name (default {defaults.estimator!r}: the baseline pre-trained on the shipped "
                        "cast; 'baseline': the one-person one), an estimator checkpoint, or 'package.module:callable' "
                        "building your torch module (a class or a callable of no arguments; docs/estimators.md)")
    p.add_argument("--estimator-checkpoint", default=None, metavar="PATH",
                   help="weights for the module --estimator builds (a state_dict file)")
    p.add_argument("--image-size", type=int, default=None,
                   help="crop side in pixels (default: the input size the estimator declares)")
    p.add_argument("--loss", default=None, metavar="MODULE:CALLABLE",
                   help="fine-tuning loss(model, batch) -> scalar tensor (default: L1 on the estimator's joints)")
    p.add_argument("--finetune-lr", type=float, default=defaults.finetune_lr)
    p.add_argument("--recolour", action=argparse.BooleanOptionalAction, default=defaults.recolour,
                   help="fine-tune on recoloured crops (channel swaps, grey, saturation, blur) so the rounds learn "
                        "poses, not the people they render")
    p.add_argument("--finetune-optimizer", choices=sorted(OPTIMIZERS), default=defaults.finetune_optimizer)
    p.add_argument("--freeze", default="", metavar="NAMES",
                   help="comma-separated module names whose parameters fine-tuning keeps fixed, e.g. 'backbone'")
    p.add_argument("--avatar", default=defaults.avatar,
                   help=f"avatar or cast file, or a shipped one (default {defaults.avatar!r}: people drawn without "
                        "limit; 'cast': ten fitted people; 'avatar': the one shipped person)")
    p.add_argument("--background-mix", default=defaults.background_mix,
                   help='backgrounds of every crop: "plain" (a random colour each) or kind weights, e.g. '
                        f'"plain=1,texture=1"; default {defaults.background_mix!r}')
    p.add_argument("--backgrounds", default=None, metavar="DIR", help="a folder of background photos to mix in")
    p.add_argument("--choose", default="", help='what the actions choose: "subject", "background" or both '
                                                 '("subject,background"); default: the environment draws them')
    p.add_argument("--device", type=device_argument, default="auto",
                   help="auto (CUDA if torch sees it), cpu, cuda or cuda:N")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="run directory (default: runs/agent-<time>)")
    p.add_argument("--resume", type=Path, default=None, help="finish an interrupted run in this directory")
    p.add_argument("--quick", action="store_true", help="a tiny run for smoke tests")
    p.add_argument("--examine", action="store_true",
                   help="examine mode (train/examine.py, which takes the other options): learn and collect against "
                        "any callable estimator, fine-tune nothing, report where it fails")
    args = p.parse_args(argv)
    for name in ("rounds", "samples", "learn_steps", "finetune_steps", "replay_samples", "num_envs"):
        if getattr(args, name) is None:  # --quick shrinks only what was not given explicitly
            setattr(args, name, (QUICK if args.quick else {}).get(name, getattr(defaults, name)))
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be a positive integer")
    args.policies = ORDER if args.policy == "all" else args.policy.split(",")
    unknown = [name for name in args.policies if name not in POLICIES]
    if unknown or len(set(args.policies)) != len(args.policies):
        p.error(f"--policy {args.policy!r}: use one of {', '.join(ORDER)}, a comma-separated list without repeats, "
                "or 'all'")
    if not 0 <= args.replay_ratio < 1:
        p.error("--replay-ratio must be in [0, 1)")
    if args.image_size is not None and not 16 <= args.image_size <= MAX_IMAGE_SIZE:
        p.error(f"--image-size must be a crop side in pixels, 16 to {MAX_IMAGE_SIZE}")
    if not 0 <= args.fresh_share < 1:
        p.error("--fresh-share must be in [0, 1)")
    if not 0 <= args.search_replay <= 1:
        p.error("--search-replay must be in [0, 1]")
    if not args.finetune_lr > 0:
        p.error("--finetune-lr must be positive")
    args.freeze = [name for name in args.freeze.split(",") if name]
    try:
        Anchoring(args.reach, args.uniform_share)
    except ValueError as err:
        p.error(f"--reach / --uniform-share: {err}")
    try:
        check_choose(args.choose)
        parse_backgrounds(args.background_mix, args.backgrounds)
    except ValueError as err:
        p.error(str(err))
    if args.seed < 0:
        p.error(f"--seed {args.seed}: give a non-negative whole number")
    if args.resume is not None and not (args.resume / "config.json").is_file():
        p.error(f"--resume {args.resume}: not a PoseGen run (no config.json there); pass a directory written by "
                "run_agent.py")
    if args.resume is not None and args.out is not None:
        p.error("--resume writes into the run it resumes; leave out --out")
    known = p._option_string_actions  # which options were given, to tell them from defaults on --resume
    args.given = {known[a.split("=")[0]].dest for a in argv if a.split("=")[0] in known}
    return args


# Options of a new run that set another RoundConfig field than their own name.
FIELD_OF = {"policy": "policies", "reward_metric": "reward", "reward_mode": "reward", "cap_mm": "reward"}
NOT_SETTINGS = ("device", "resume", "out", "help", "examine")  # what a resumed run may take anew


def new_config(args: argparse.Namespace) -> RoundConfig:
    """The run ``args`` asks for."""
    config = RoundConfig(
        policies=args.policies, rounds=args.rounds, samples=args.samples,
        learn_steps=args.learn_steps, objective=args.objective, fresh_share=args.fresh_share,
        learn_view=args.learn_view, search_replay=args.search_replay,
        finetune_steps=args.finetune_steps, replay_ratio=args.replay_ratio,
        replay_samples=args.replay_samples, reach=args.reach, uniform_share=args.uniform_share,
        num_envs=args.num_envs, estimator=absolute_callable(args.estimator), avatar=args.avatar, seed=args.seed,
        estimator_checkpoint=args.estimator_checkpoint and str(Path(args.estimator_checkpoint).resolve()),
        image_size=args.image_size, loss=absolute_callable(args.loss),
        finetune_lr=args.finetune_lr, recolour=args.recolour, finetune_optimizer=args.finetune_optimizer,
        freeze=args.freeze,
        background_mix=args.background_mix, backgrounds=args.backgrounds, choose=list(check_choose(args.choose)),
        reward={"metric": args.reward_metric, "mode": args.reward_mode, "cap_mm": args.cap_mm})
    if args.quick:  # the sizes without a command-line option
        config = replace(config, **{k: v for k, v in QUICK.items() if not hasattr(args, k)})
    return config


def resumed_config(run_dir: Path, args: argparse.Namespace) -> RoundConfig:
    """The run's own config, extended where the options given ask for more rounds or more policies;
    any other option that differs from the run's is refused, naming each."""
    stored = RoundConfig.read(run_dir / "config.json")
    asked, changes, refused = new_config(args), {}, []
    for dest in sorted(args.given - set(NOT_SETTINGS)):
        option = f"--{dest.replace('_', '-')}"
        if dest == "quick":
            refused.append("--quick (a run's sizes are set when it starts)")
            continue
        key = FIELD_OF.get(dest, dest)
        old, new = getattr(stored, key), getattr(asked, key)
        if key == "reward":
            old, new = RewardConfig.from_any(old).as_dict(), RewardConfig.from_any(new).as_dict()
        if old == new:
            continue
        if key == "rounds" and new > old:
            changes["rounds"] = new
        elif key == "policies":
            changes["policies"] = old + [name for name in new if name not in old]
        else:
            refused.append(f"{option}: the run has {old!r}, you asked for {new!r}")
    if refused:
        raise RunError(f"--resume {run_dir}: the options given differ from the run's settings ({'; '.join(refused)}). "
                       "A resumed run keeps its settings; only more --rounds and more policies (--policy) extend it. "
                       "Leave the other options out, or start a new run with --out")
    if changes:
        print(f"extending {run_dir}: " + ", ".join(f"{k} {getattr(stored, k)} -> {v}" for k, v in changes.items()))
    return replace(stored, **changes)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--examine" in argv:
        import examine  # train/examine.py, beside this script

        return examine.main([a for a in argv if a != "--examine"])
    args = parse(argv)
    if args.resume is not None:
        run_dir, resume = args.resume, True
        config = resumed_config(run_dir, args)
        print(f"resuming {run_dir}")
    else:
        run_dir, resume = args.out or Path("runs") / time.strftime("agent-%Y%m%d-%H%M%S"), False
        if run_dir.exists() and not run_dir.is_dir():
            raise RunError(f"--out {run_dir} is a file; pass a folder for the run (new or empty)")
        if run_dir.exists() and any(not f.name.startswith(".posegen.") for f in run_dir.iterdir()):  # lock files
            if (run_dir / "config.json").is_file():
                raise RunError(f"{run_dir} already holds a run; use --resume {run_dir} to finish or extend it, or "
                               "another --out")
            raise RunError(f"{run_dir} holds files but is not a PoseGen run (no config.json); pass a new or empty "
                           "folder as --out")
        config = new_config(args)
    start = time.time()
    rows = run_rounds(run_dir, config, resume=resume, device=args.device)
    print("\n" + markdown_table(rows))
    print(f"\nrun directory: {run_dir} ({(time.time() - start) / 60:.1f} min); see results.md and plots/")
    return 0


# What ends the script with one line instead of a traceback.
ERRORS = (RunError, EstimatorError, AvatarError, DatasetError, ValueError)


if __name__ == "__main__":
    run_script(main, "run_agent.py", ERRORS)
