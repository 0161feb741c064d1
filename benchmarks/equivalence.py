"""Do the casters and devices render the same pictures and numbers?

    python benchmarks/equivalence.py [--samples 256] [--image-size 64 224] [--device auto] [--suites]

The reference is the CPU with the Embree caster; the candidate is ``--device`` with the torch caster
(on the CPU too, unless a GPU is given or found). On the same samples (uniform actions on the cast,
the plain/texture mix, one generator per sample) it prints: pixels whose ray hits / misses the
shell in one and not the other, second-band agreement, image PSNR, the largest label difference,
and the cast baseline's error per sample. ``--suites`` adds the cast baseline's table on the four
test suites rendered by each.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import torch

from posegen_env.envs.action_space import decode, uniform_actions
from posegen_env.envs.task import PoseGenTask
from posegen_env.estimation.metrics import evaluate_poses, format_table
from posegen_env.estimation.prediction import predict
from posegen_env.estimation.targets import targets
from posegen_env.render.avatar.loading import load_renderer
from posegen_env.render.backgrounds import parse_backgrounds
from posegen_env.render.camera import REFERENCE_WIDTH
from posegen_env.render.cameras import crop_jitter, orbit_cameras, person_crop_boxes
from posegen_env.render.crops import DEFAULT_CROP_SCALE
from posegen_env.settings import add_device_option
from posegen_env.suites.suites import SUITES, build_suite


def psnr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """PSNR (dB) of uint8 images, per image (N,) over (N, H, W, 3)."""
    mse = ((a.astype(np.float64) - b) ** 2).reshape(len(a), -1).mean(axis=1)
    return 10 * np.log10(255.0**2 / np.maximum(mse, 1e-10))


def ray_agreement(reference, candidate, samples: int, size: int) -> str:
    """Hit/miss and band-2 agreement of the two casters on the same bodies and crop cameras."""
    s = decode(uniform_actions(samples, np.random.default_rng(5)))
    subjects = np.arange(samples) % len(reference.subjects)
    rows = []
    for avatar in (reference, candidate):
        bodies = avatar.pose(s.global_orient, s.body_pose, s.betas, subjects=subjects)
        joints = bodies.joints.double()
        full = orbit_cameras(s.cameras, joints[:, 0], REFERENCE_WIDTH)
        shifts = torch.as_tensor(crop_jitter([np.random.default_rng(i) for i in range(samples)], 0.05))
        centre, side = person_crop_boxes(full.project(joints), DEFAULT_CROP_SCALE, shifts.to(joints.device))
        hits, image = avatar.proxy.cast_rays(bodies, torch.arange(samples, device=joints.device),
                                             full.crop(centre, side, size), avatar.caster)
        key = (image * size * size + hits.pixel).cpu().numpy()
        rows.append((key, hits.has_second.cpu().numpy()))
    (k0, s0), (k1, s1) = rows
    both, i0, i1 = np.intersect1d(k0, k1, return_indices=True)
    differ = len(k0) + len(k1) - 2 * len(both)
    return (f"hit/miss differ for {differ} of {samples * size * size:,} pixels "
            f"({100 * (1 - differ / (samples * size * size)):.4f} % identical); band 2 agrees on "
            f"{100 * (s0[i0] == s1[i1]).mean():.3f} % of the {len(both):,} rays both hit")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=256)
    p.add_argument("--image-size", type=int, nargs="+", default=[64, 224])
    add_device_option(p, "the candidate's device")
    p.add_argument("--suites", action="store_true", help="also compare the cast baseline's test-suite table")
    args = p.parse_args()
    warnings.filterwarnings("ignore", message=".*resampled to the estimator")
    reference = PoseGenTask(avatar="cast", estimator="cast-baseline", device="cpu")
    reference.avatar.caster = "embree"
    candidate_avatar = load_renderer("cast", device=args.device)
    candidate_avatar.caster = "torch"
    print(f"reference: cpu, embree; candidate: {args.device}, torch")
    mix = "plain=1,texture=1"
    for size in args.image_size:
        print(f"\n{size} px: " + ray_agreement(reference.avatar, candidate_avatar, min(args.samples, 64), size))
        results = []
        for avatar, device in ((reference.avatar, "cpu"), (candidate_avatar, args.device)):
            task = PoseGenTask(avatar=avatar, estimator="cast-baseline", device=device, image_size=size,
                               background=parse_backgrounds(mix))
            actions = uniform_actions(args.samples, np.random.default_rng(3))
            results.append(task.evaluate(actions, [np.random.default_rng(100 + i) for i in range(args.samples)]))
        a, b = results
        quality = psnr(a.data.images, b.data.images)
        label = max(float(np.abs(getattr(a.data, k) - getattr(b.data, k)).max()) for k in ("joints3d", "joints2d", "K"))
        print(f"images ({mix}): PSNR min {quality.min():.1f} dB, median {np.median(quality):.1f} dB; largest label "
              f"difference {label:.2e}; MPJPE per sample differs by at most {np.abs(a.mpjpe_mm - b.mpjpe_mm).max():.3f}"
              f" mm (mean {a.mpjpe_mm.mean():.2f} vs {b.mpjpe_mm.mean():.2f} mm)")
    if args.suites:
        tables = []
        for avatar in (reference.avatar, candidate_avatar):
            estimator = reference.estimator if avatar is reference.avatar else PoseGenTask(
                avatar=avatar, estimator="cast-baseline", device=args.device).estimator
            rows = {}
            for name in SUITES:
                data = build_suite(name, avatar)
                truth = targets(reference.spec.joint_set, data, avatar.body)
                rows[name] = evaluate_poses(predict(estimator, data.images), truth)
            tables.append(rows)
            print(f"\ncast baseline on the test suites rendered by {avatar.device}, {avatar.caster}:")
            print(format_table(rows))
        gap = max(abs(tables[0][n]["eval14"]["mpjpe_mm"] - tables[1][n]["eval14"]["mpjpe_mm"]) for n in SUITES)
        print(f"largest MPJPE-14 difference between the two tables: {gap:.3f} mm")


if __name__ == "__main__":
    main()
