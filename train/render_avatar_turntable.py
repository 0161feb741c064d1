"""Turntable of the avatar NeRF next to the ground-truth renderer, as one PNG grid.

Rows come in pairs (ground truth, NeRF) for a training pose, a library pose and two novel
poses sampled uniformly within the joint limits; columns turn around the body.

    python train/render_avatar_turntable.py --out docs/images/avatar_nerf_vs_truth.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from posegen_env.body.pose_library import get_pose
from posegen_env.cli import run_script
from posegen_env.data.image_grid import save_image_grid
from posegen_env.distributions import UniformPoseSampler
from posegen_env.render.avatar import AvatarError, load_avatar
from posegen_env.render.camera import orbit_camera
from posegen_env.render.mesh.renderer import MeshRenderer


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--avatar", default=None, help="avatar file (default: the shipped one)")
    parser.add_argument("--out", type=Path, default=Path("docs/images/avatar_nerf_vs_truth.png"))
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--views", type=int, default=6)
    args = parser.parse_args(argv)

    avatar = load_avatar(args.avatar)
    truth = MeshRenderer(avatar.body, background=avatar.background, supersample=2)
    target = avatar.body.rest_joints()[0]
    cams = [orbit_camera(360.0 * k / args.views + 15, 10, 3.4, target=target, fov_deg=40, width=args.size)
            for k in range(args.views)]
    novel = UniformPoseSampler().sample(2, np.random.default_rng(1))
    poses = [("rest", *get_pose("rest")), ("run_flight", *get_pose("run_flight"))]
    poses += [(f"novel {k}", novel["global_orient"][k], novel["body_pose"][k]) for k in range(2)]
    images, labels = [], []
    for name, orient, pose in poses:
        rgb, _ = truth.render(orient, pose, None, None, cams)
        nerf = avatar.render(orient, pose, None, cams).rgb.numpy()
        images += list(rgb) + list((nerf * 255 + 0.5).astype(np.uint8))
        labels += [f"truth {name}"] * args.views + [f"nerf {name}"] * args.views
    print(save_image_grid(args.out, np.stack(images), columns=args.views, labels=labels))


# What ends the script with one line instead of a traceback.
ERRORS = (AvatarError,)


if __name__ == "__main__":
    run_script(main, "render_avatar_turntable.py", ERRORS)
