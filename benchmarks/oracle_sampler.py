"""How much could *any* sampling policy gain? Run the rounds with a sampler that knows the test suites.

    python benchmarks/oracle_sampler.py --out runs/oracle

The ``oracle`` draws fresh samples from the out-of-distribution suites' own generators (never
their images): equal shares of novel views, novel poses and both, expressed as actions. It is
not a policy anyone could use -- it peeks at the test distribution -- but its result bounds what
a learned policy can reach with the same sample budget, fine-tuning and in-distribution guard.
The run directory has the usual tables and plots; compare with ``random`` and ``anchor`` runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from agents.loop.rounds import run_rounds
from agents.loop.run import RoundConfig
from agents.policies import POLICIES
from agents.policies.base import SamplingPolicy
from posegen_env.distributions import BaseCameraSampler, BasePoseSampler
from posegen_env.envs.action_space import encode
from posegen_env.render.camera import CameraParams
from posegen_env.suites.suites import _heldout_poses, _novel_cameras

CAMERA_FIELDS = ("azimuth_deg", "elevation_deg", "distance", "roll_deg", "focal_px")


class OraclePolicy(SamplingPolicy):
    """Fresh draws of the three out-of-distribution suites' generators, in equal shares."""

    name = "oracle"

    def act(self, contexts, rng):
        n = len(contexts)
        suite = rng.integers(3, size=n)  # 0: novel views, 1: novel poses, 2: both ("hard")
        base_poses, new_poses = BasePoseSampler().sample(n, rng), _heldout_poses(n, rng)
        base_cams, new_cams = BaseCameraSampler().sample(n, rng), _novel_cameras(n, rng)
        novel_pose, novel_view = suite >= 1, suite != 1
        poses = {k: np.where(novel_pose[:, None], new_poses[k], base_poses[k])
                 for k in ("global_orient", "body_pose", "betas")}
        cameras = CameraParams(**{f: np.where(novel_view, getattr(new_cams, f), getattr(base_cams, f))
                                  for f in CAMERA_FIELDS})
        return encode(poses, cameras)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("runs/oracle"))
    p.add_argument("--rounds", type=int, default=RoundConfig.rounds)
    args = p.parse_args(argv)
    POLICIES[OraclePolicy.name] = OraclePolicy
    run_rounds(args.out, RoundConfig(policies=[OraclePolicy.name], rounds=args.rounds),
               resume=(args.out / "results.json").is_file())
    print((args.out / "results.md").read_text())


if __name__ == "__main__":
    main()
