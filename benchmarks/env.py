"""PoseGen-v0 throughput: the vector environment on the cast, plain and textured backgrounds, and
where a step's time goes.

    python benchmarks/env.py [--device auto|cpu|cuda] [--image-size 64 224] [--num-envs N ...]
        [--steps 512] [--caster auto torch embree] [--single] [--estimator SPEC [--estimator-checkpoint PATH]]

Each step is one NeRF rendering of a person crop, one estimator forward pass and the reward. For
each image size, caster and ``--num-envs`` size, a ``PoseGenVectorEnv`` on the shipped cast with
the cast baseline is stepped on random plain colours and on the plain/texture mix (uniform
actions; each batch of ``num_envs`` is rendered and estimated in one call); the rows of one size
are measured interleaved, so their ratios hold on a noisy machine. Then the time split of one
mixed-background step of the largest batch: posing, cameras, casting, marching, backgrounds,
estimator, reward (``posegen_env.profiling``). ``--single`` adds the single environment stepped
one by one (the shipped one-person avatar); ``--estimator`` measures another estimator on the mix.
Crops of another size than the estimator's input are resampled to it, as a run with
``--image-size`` does.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch

from posegen_env.device import default_render_batch
from posegen_env.envs.action_space import uniform_actions
from posegen_env.envs.env import PoseGenEnv
from posegen_env.envs.task import PoseGenTask
from posegen_env.envs.vector_env import PoseGenVectorEnv
from posegen_env.estimation.checkpoints import load_estimator
from posegen_env.profiling import timing
from posegen_env.render.avatar.shell_cast import CASTERS
from posegen_env.render.backgrounds import parse_backgrounds
from posegen_env.settings import BackgroundChoice, add_device_option, add_options

STAGES = ("draws", "pose", "cameras", "cast", "march", "backgrounds", "labels", "estimator", "reward", "boundary")


def _sync() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


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
    """Steps per second of the vector env, over at least ``steps`` steps (two batches at least)."""
    env = PoseGenVectorEnv(num_envs, task=task)
    env.reset(seed=0)
    batches = max(2, -(-steps // num_envs))
    actions = uniform_actions((batches + 1) * num_envs, np.random.default_rng(0)).astype(np.float32)
    env.step(actions[:num_envs])  # warm-up
    _sync()
    start = time.perf_counter()
    for b in range(1, batches + 1):
        env.step(actions[b * num_envs:(b + 1) * num_envs])
    _sync()
    return batches * num_envs / (time.perf_counter() - start)


def split(task: PoseGenTask, num_envs: int, batches: int = 2) -> dict[str, float]:
    """Seconds per step in each stage of ``batches`` timed batches (after one warm-up batch)."""
    env = PoseGenVectorEnv(num_envs, task=task)
    env.reset(seed=1)
    actions = uniform_actions((batches + 1) * num_envs, np.random.default_rng(1)).astype(np.float32)
    env.step(actions[:num_envs])
    with timing() as totals:
        _sync()
        start = time.perf_counter()
        for b in range(1, batches + 1):
            env.step(actions[b * num_envs:(b + 1) * num_envs])
        _sync()
        totals["whole step"] = time.perf_counter() - start
    return {k: v / (batches * num_envs) for k, v in totals.items()}


def kernel_table(task: PoseGenTask, num_envs: int, rows: int = 15) -> str:
    """The GPU kernels of one vector-env step of ``num_envs``, by total GPU time."""
    from torch.profiler import ProfilerActivity, profile

    env = PoseGenVectorEnv(num_envs, task=task)
    env.reset(seed=2)
    actions = uniform_actions(num_envs, np.random.default_rng(2)).astype(np.float32)
    env.step(actions)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        env.step(actions)
        _sync()
    return prof.key_averages().table(sort_by="cuda_time_total", row_limit=rows, max_name_column_width=60)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=512, help="steps per measurement (at least two batches)")
    p.add_argument("--num-envs", type=int, nargs="+", default=None,
                   help="vector env sizes (default: 64 128 on the CPU; one and two render batches on a GPU)")
    p.add_argument("--image-size", type=int, nargs="+", default=[64])
    p.add_argument("--caster", nargs="+", default=["auto"], choices=CASTERS)
    add_device_option(p)
    add_options(p, BackgroundChoice, BackgroundChoice("plain=1,texture=1"),
                help_suffix={"background_mix": " (the textured rows)"})
    p.add_argument("--single", action="store_true", help="also step one PoseGenEnv at a time (slow)")
    p.add_argument("--no-split", action="store_true", help="skip the time split")
    p.add_argument("--profile", action="store_true", help="with the split on CUDA, the kernels that take the time")
    p.add_argument("--estimator", default=None, help="an estimator to measure beside the cast baseline")
    p.add_argument("--estimator-checkpoint", default=None, help="weights for the module --estimator builds")
    args = p.parse_args()
    if args.num_envs is None:
        batch = default_render_batch(args.device)
        args.num_envs = [64, 128] if args.device.type == "cpu" else [batch // 2, batch]
    warnings.filterwarnings("ignore", message=".*resampled to the estimator")
    mix = parse_backgrounds(args.background_mix)
    own = load_estimator(args.estimator, args.device, checkpoint=args.estimator_checkpoint) if args.estimator else None
    print(f"device {args.device}" + (f" ({torch.cuda.get_device_name(args.device)})"
                                     if args.device.type == "cuda" else f", {torch.get_num_threads()} threads"))
    if args.single:
        task = PoseGenTask(device=args.device)
        print(f"single PoseGenEnv (one person, {task.image_size} px), stepped one by one: "
              f"{single_rate(task, min(args.steps, 256)):.1f} steps/s")
    print("| crop px | caster | num_envs | cast, plain (steps/s) | cast, " + args.background_mix + " (steps/s) |"
          + (f" {args.estimator}, mix (steps/s) |" if own else ""))
    print("|---:|---|---:|---:|---:|" + ("---:|" if own else ""))
    plain = PoseGenTask(avatar="cast", estimator="cast-baseline", device=args.device)
    for size in args.image_size:
        for caster in args.caster:
            plain.avatar.caster = caster
            tasks = [PoseGenTask(avatar=plain.avatar, estimator=plain.estimator, device=args.device, image_size=size,
                                 background=bg) for bg in ("random", mix)]
            if own is not None:
                tasks.append(PoseGenTask(avatar=plain.avatar, estimator=own, device=args.device, background=mix,
                                         image_size=size))
            for n in args.num_envs:
                for task in tasks:
                    task.render_batch = max(task.render_batch, n)
                rates = [vector_rate(task, args.steps, n) for task in tasks]
                print(f"| {size} | {caster} | {n} | " + " | ".join(f"{r:,.0f}" for r in rates) + " |", flush=True)
    if args.no_split:
        return
    for size in args.image_size:
        plain.avatar.caster = args.caster[0]
        task = PoseGenTask(avatar=plain.avatar, estimator=plain.estimator, device=args.device, image_size=size,
                           background=mix)
        n = max(args.num_envs)
        task.render_batch = max(task.render_batch, n)
        seconds = split(task, n)
        whole = seconds.pop("whole step")
        print(f"\nTime split of a step, {size} px, {args.background_mix}, num_envs={n}, caster {args.caster[0]} "
              f"(each stage synchronised: {1 / whole:,.0f} steps/s while timed)")
        print("| stage | us per step | share |\n|---|---:|---:|")
        parts = [k for k in seconds if ": " not in k]  # "march: colour" is part of "march"
        for name in (*STAGES, *sorted(set(parts) - set(STAGES))):
            if name in seconds:
                print(f"| {name} | {seconds[name] * 1e6:,.1f} | {seconds[name] / whole:.0%} |")
            for sub in sorted(k for k in seconds if k.startswith(f"{name}: ")):
                print(f"| - {sub} | {seconds[sub] * 1e6:,.1f} | {seconds[sub] / whole:.0%} |")
        rest = whole - sum(seconds[k] for k in parts)
        if rest >= 0:
            print(f"| other (decode, subjects, vector env) | {rest * 1e6:,.1f} | {rest / whole:.0%} |")
        else:
            print("(stages overlap: the CPU renders parts in parallel threads)")
        if args.profile and args.device.type == "cuda":
            print(f"\nCUDA kernels of one batch, {size} px (torch.profiler, by GPU time):")
            print(kernel_table(task, n))


if __name__ == "__main__":
    main()
