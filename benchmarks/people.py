"""The people space: how well baked people render, and how fast the environment steps with them.

    python benchmarks/people.py [--people 20] [--poses 15] [--steps 512] [--num-envs 64]

1. Held-out-view PSNR: ``--people`` training people of the people space, each baked on the shipped
   avatar's geometry, against the ground-truth mesh renderer in the same outfit and build, from
   the 6 held-out cameras of a synthetic capture (train/make_capture.py's rig, 128 px) in
   ``--poses`` of its training poses. Beside it, the shipped cast's fitted subjects and the same
   outfits baked instead of fitted, so fitting and baking compare on the same images.
2. Throughput: the vector env on the people (a person drawn per sample, tables baked in advance and
   on the fly) and on the cast, interleaved, plain and textured backgrounds.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "train"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from env import vector_rate  # noqa: E402
from make_capture import capture_cameras, capture_poses  # noqa: E402

from posegen_env.envs.task import PoseGenTask  # noqa: E402
from posegen_env.render.avatar import CastRenderer, CastSubject, load_avatar  # noqa: E402
from posegen_env.render.avatar.loading import load_renderer  # noqa: E402
from posegen_env.render.avatar.people import AppearanceBaker, BakedColours, PeopleRenderer  # noqa: E402
from posegen_env.render.backgrounds import parse_backgrounds  # noqa: E402
from posegen_env.render.mesh.appearance import Outfit, ProceduralAppearance  # noqa: E402
from posegen_env.render.mesh.renderer import MeshRenderer  # noqa: E402


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(-10 * np.log10(np.mean((a - b) ** 2)))


def heldout_view_psnr(renderer, subject: int, outfit: Outfit, betas: torch.Tensor, cameras, poses) -> float:
    """Mean whole-image PSNR of ``renderer``'s ``subject`` against the mesh in ``outfit``, on white."""
    mesh = MeshRenderer(renderer.body, appearance=ProceduralAppearance.for_body(renderer.body, outfit))
    scores = []
    for go, bp in zip(*poses, strict=True):
        go, bp = torch.tensor(go[None]).float(), torch.tensor(bp[None]).float()
        truth, _ = mesh.render(go, bp, betas[None], torch.zeros(1, 3), cameras)
        with torch.no_grad():
            out = renderer.render(go, bp, betas[None], cameras, background=(255, 255, 255), subjects=subject).rgb
        scores += [psnr(image, reference / 255.0) for image, reference in zip(out.numpy(), truth, strict=True)]
    return float(np.mean(scores))


def baked_cast(geometry, outfits: list[Outfit]) -> CastRenderer:
    """The outfits baked (not fitted) on ``geometry``: a cast with baked colours."""
    colours = BakedColours(AppearanceBaker(geometry.body, geometry.field), outfits)
    colours.ensure_baked(np.arange(len(outfits)))
    subjects = [CastSubject(f"baked_{k}", torch.zeros(10)) for k in range(len(outfits))]
    return CastRenderer(geometry.body, geometry.field, geometry.proxy, colours, subjects).eval()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--people", type=int, default=20)
    p.add_argument("--poses", type=int, default=15, help="training poses of the capture rig per person")
    p.add_argument("--steps", type=int, default=512)
    p.add_argument("--num-envs", type=int, default=64)
    p.add_argument("--parts", nargs="+", choices=("psnr", "speed"), default=["psnr", "speed"])
    args = p.parse_args()
    if "psnr" in args.parts:
        rendering(args)
    if "speed" in args.parts:
        throughput(args)


def rendering(args: argparse.Namespace) -> None:
    """Part 1: held-out-view PSNR of baked people, and fitted against baked cast subjects."""
    geometry = load_avatar()
    rig, _, test = capture_cameras(24, 6, 128, 3.4, 40.0, geometry.body.rest_joints()[0])
    cameras = [rig[name] for name in test]
    go, bp, _ = capture_poses(args.poses, 0, np.random.default_rng(0))
    poses = (go[:args.poses], bp[:args.poses])

    people = PeopleRenderer(geometry, train=args.people, validation=0)
    start = time.perf_counter()
    people.colours.ensure_baked(np.arange(args.people))
    bake_ms = 1000 * (time.perf_counter() - start) / args.people
    scores = [heldout_view_psnr(people, k, people.colours.outfits[k], people.betas[k], cameras, poses)
              for k in range(args.people)]
    print(f"people: {args.people} training people, held-out views x {args.poses} poses ({len(cameras) * args.poses} "
          f"images each), baked in {bake_ms:.0f} ms each (the first includes the nearest-surface search)")
    print(f"PSNR mean {np.mean(scores):.2f} dB, min {np.min(scores):.2f}, max {np.max(scores):.2f}; "
          f"{np.sum(np.array(scores) >= 30.0)} of {len(scores)} at >= 30 dB")
    print("per person:", " ".join(f"{s:.2f}" for s in scores))

    cast = load_renderer("cast")
    outfits = [Outfit.from_dict(s.outfit) for s in cast.subjects]
    baked = baked_cast(geometry, outfits)
    print("\n| cast subject | fitted (dB) | baked (dB) |\n|---|---:|---:|")
    for k, subject in enumerate(cast.subjects):
        fitted = heldout_view_psnr(cast, k, outfits[k], cast.betas[k], cameras, poses)
        bake = heldout_view_psnr(baked, k, outfits[k], cast.betas[k], cameras, poses)
        print(f"| {subject.name} | {fitted:.2f} | {bake:.2f} |")


def throughput(args: argparse.Namespace) -> None:
    """Part 2: vector-env steps per second on the people and on the cast, interleaved."""
    mix = parse_backgrounds("plain=1,texture=1")
    print(f"\n| renderer | plain (steps/s) | plain + textures (steps/s) |   num_envs {args.num_envs}, "
          f"{torch.get_num_threads()} threads\n|---|---:|---:|")
    tasks = {name: [PoseGenTask(avatar=name, estimator="cast-baseline", background=bg) for bg in ("random", mix)]
             for name in ("cast", "people")}
    fresh = {name: [vector_rate(PoseGenTask(avatar="people", estimator="cast-baseline", background=bg),
                                args.steps, args.num_envs)] for name, bg in (("plain", "random"), ("mix", mix))}
    for task in tasks["people"]:
        task.avatar.colours.ensure_baked(task.avatar.group("train"))
    rates: dict[str, list[list[float]]] = {name: [[], []] for name in tasks}
    for _ in range(2):  # interleaved, so the ratios hold on a noisy machine
        for name, pair in tasks.items():
            for k, task in enumerate(pair):
                rates[name][k].append(vector_rate(task, args.steps, args.num_envs))
    for name, (plain, textured) in rates.items():
        print(f"| {name} | {np.mean(plain):.0f} | {np.mean(textured):.0f} |")
    print(f"| people, first {args.steps} steps (baking on the fly) | {fresh['plain'][0]:.0f} | {fresh['mix'][0]:.0f} |")


if __name__ == "__main__":
    main()
