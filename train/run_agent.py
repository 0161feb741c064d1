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
from agents.loop.run import QUICK, RoundConfig, RunError
from posegen_env.cli import run_script
from posegen_env.data.dataset import DatasetError
from posegen_env.envs.reward import RewardConfig
from posegen_env.estimation.spec import EstimatorError
from posegen_env.render.avatar import AvatarError
from posegen_env.settings import (
    add_device_option,
    add_options,
    field_named,
    fill_preset,
    flag_of,
    from_args,
    given,
    with_flags,
)

REWARD = "reward_"  # the dests of RewardConfig's options


def build_parser() -> tuple[argparse.ArgumentParser, list[str]]:
    """The command line, derived from ``RoundConfig`` and ``RewardConfig``, and the settings' dests."""
    defaults = RoundConfig()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                allow_abbrev=False)  # --resume tells given options by their full names
    dests = add_options(p, RoundConfig, defaults, preset=QUICK)
    dests += add_options(p, RewardConfig, RewardConfig.from_any(defaults.reward), dest_prefix=REWARD)
    add_device_option(p)
    p.add_argument("--out", type=Path, default=None, help="run directory (default: runs/agent-<time>)")
    p.add_argument("--resume", type=Path, default=None, help="finish an interrupted run in this directory")
    p.add_argument("--quick", action="store_true", help="a tiny run for smoke tests")
    p.add_argument("--examine", action="store_true",
                   help="examine mode (train/examine.py, which takes the other options): learn and collect against "
                        "any callable estimator, fine-tune nothing, report where it fails")
    return p, dests


def parse(argv=None) -> argparse.Namespace:
    argv = sys.argv[1:] if argv is None else list(argv)
    p, dests = build_parser()
    args = p.parse_args(argv)
    args.given = given(p, dests + ["quick"], argv)
    fill_preset(args, RoundConfig(), QUICK, args.quick)  # --quick shrinks only what was not given explicitly
    try:
        new_config(args).check()
    except ValueError as err:
        p.error(with_flags(RoundConfig, str(err)))
    if args.resume is not None and not (args.resume / "config.json").is_file():
        p.error(f"--resume {args.resume}: not a PoseGen run (no config.json there); pass a directory written by "
                "run_agent.py")
    if args.resume is not None and args.out is not None:
        p.error("--resume writes into the run it resumes; leave out --out")
    return args


def new_config(args: argparse.Namespace) -> RoundConfig:
    """The run ``args`` asks for."""
    return from_args(RoundConfig, args, reward=from_args(RewardConfig, args, REWARD).as_dict())


def resumed_config(run_dir: Path, args: argparse.Namespace) -> RoundConfig:
    """The run's own config, extended where the options given ask for more rounds or more policies;
    any other option that differs from the run's is refused, naming each."""
    stored = RoundConfig.read(run_dir / "config.json")
    asked, changes, refused = new_config(args), {}, []
    if "quick" in args.given:
        refused.append("--quick (a run's sizes are set when it starts)")
    options = {}  # setting -> the option that asked for it
    for dest in sorted(args.given - {"quick"}):
        key = "reward" if dest.startswith(REWARD) else dest
        cls = RewardConfig if key == "reward" else RoundConfig
        options.setdefault(key, flag_of(field_named(cls, dest.removeprefix(REWARD) if key == "reward" else dest)))
    for key, option in options.items():
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
