"""PoseGen-v0 throughput: single environment stepped one by one vs the batched vector environment.

    python benchmarks/env.py [--steps 256] [--num-envs 16 64 128] [--device auto|cpu|cuda] [--cast CAST]
        [--background-mix plain=1,texture=1] [--estimator SPEC [--estimator-checkpoint PATH]]

Each step is one NeRF rendering of a 64 px person crop plus one estimator forward pass (and the
reward). The single-env figure steps one ``PoseGenEnv`` (reset + step) per sample; the vector
figures step a ``PoseGenVectorEnv`` with each of the ``--num-envs`` sizes, rendering and
estimating each batch in one call. Both use the shipped avatar and estimator and uniform actions.
With ``--cast``, the vector figures are also measured with that cast (each sample a training
subject drawn by the environment), interleaved with the one-avatar figures in the same run.
With ``--estimator``, the vector figures are also measured with that estimator (on the cast and
mix when given), rendering crops at its declared size and margin.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from posegen_env.device import device_argument
from posegen_env.envs.action_space import uniform_actions
from posegen_env.envs.env import PoseGenEnv
from posegen_env.envs.task import PoseGenTask
from posegen_env.envs.vector_env import PoseGenVectorEnv
from posegen_env.estimation.estimator import load_estimator
from posegen_env.render.backgrounds import parse_backgrounds


def single_rate(task: PoseGenTask, steps: int) -> float:
    env = PoseGenEnv(task=task)
    actions = uniform_actions(steps + 4, np.random.default_rng(0)).astype(np.float32)
    env.reset(seed=0)
    for a in actions[:4]:  # warm-up
        env.step(a)
        env.reset()
    start = time.perf_counter()
    for a in actions[4:]:
        env.step(a)
        env.reset()
    return steps / (time.perf_counter() - start)


def vector_rate(task: PoseGenTask, steps: int, num_envs: int) -> float:
    env = PoseGenVectorEnv(num_envs, task=task)
    env.reset(seed=0)
    batches = max(1, steps // num_envs)
    actions = uniform_actions((batches + 1) * num_envs, np.random.default_rng(0)).astype(np.float32)
    env.step(actions[:num_envs])  # warm-up
    start = time.perf_counter()
    for b in range(1, batches + 1):
        env.step(actions[b * num_envs:(b + 1) * num_envs])
    return batches * num_envs / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=256)
    p.add_argument("--num-envs", type=int, nargs="+", default=[16, 64, 128])
    p.add_argument("--device", type=device_argument, default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--cast", default=None, help="a cast file (train/make_cast.py) to measure beside the avatar")
    p.add_argument("--background-mix", default=None,
                   help='with --cast, also measure the cast on this mix, e.g. "plain=1,texture=1"')
    p.add_argument("--estimator", default=None, help="an estimator to measure beside the shipped one")
    p.add_argument("--estimator-checkpoint", default=None, help="weights for the module --estimator builds")
    args = p.parse_args()
    task = PoseGenTask(device=args.device)
    single = single_rate(task, args.steps)
    print(f"device {task.device}; image {task.image_size} px; {args.steps} steps each")
    print("| environment | steps/s | vs single |\n|---|---:|---:|")
    print(f"| single PoseGenEnv, stepped one by one | {single:.1f} | 1.0x |")
    cast = PoseGenTask(avatar=args.cast, device=args.device) if args.cast else None
    mix = PoseGenTask(avatar=cast.avatar, device=args.device,
                      background=parse_backgrounds(args.background_mix)) if cast and args.background_mix else None
    own = None
    if args.estimator:
        base = cast or task
        own = PoseGenTask(avatar=base.avatar, device=args.device, background=mix.background if mix else "random",
                          estimator=load_estimator(args.estimator, args.device, checkpoint=args.estimator_checkpoint))
    for n in args.num_envs:
        rate = vector_rate(task, args.steps, n)
        print(f"| PoseGenVectorEnv, num_envs={n} | {rate:.1f} | {rate / single:.1f}x |")
        if cast is not None:
            mixed = vector_rate(cast, args.steps, n)
            print(f"| PoseGenVectorEnv with the cast ({len(cast.subject_pool)} subjects), num_envs={n} | "
                  f"{mixed:.1f} | {mixed / single:.1f}x |")
        if mix is not None:
            textured = vector_rate(mix, args.steps, n)
            print(f"| PoseGenVectorEnv with the cast on {args.background_mix}, num_envs={n} | "
                  f"{textured:.1f} | {textured / single:.1f}x |")
        if own is not None:
            rate = vector_rate(own, args.steps, n)
            print(f"| PoseGenVectorEnv with {args.estimator} ({own.image_size} px), num_envs={n} | {rate:.1f} | "
                  f"{rate / single:.1f}x |")


if __name__ == "__main__":
    main()
