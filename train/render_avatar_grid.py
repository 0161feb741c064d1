"""Image grid of the default avatar: several base-library poses, each from several views.

    python train/render_avatar_grid.py --out docs/images/avatar_grid.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from posegen_env.body.body_model import BodyModelError, load_body_model
from posegen_env.body.pose_library import get_pose, pose_names
from posegen_env.cli import run_script
from posegen_env.data.image_grid import save_image_grid
from posegen_env.render.camera import orbit_camera
from posegen_env.render.mesh.renderer import MeshRenderer

VIEWS = ((0, 5), (45, 15), (90, 0), (180, 10), (300, 45), (225, -15))  # (azimuth, elevation) degrees
POSES = ("rest", "walk", "run", "sit", "squat", "wave", "kick", "reach", "bend", "lie")


def pick_poses(wanted=POSES) -> list[str]:
    """The first library pose whose name contains each wanted word (skipping missing ones)."""
    names = pose_names()
    return [next(n for n in names if w in n) for w in wanted if any(w in n for n in names)]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("docs/images/avatar_grid.png"))
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--body", default=None, help="SMPL .pkl or PoseGen body .npz (default: shipped body)")
    args = parser.parse_args(argv)

    body = load_body_model(args.body)
    renderer = MeshRenderer(body, background=(245, 245, 245), supersample=2)
    target = body.rest_joints()[0]
    cameras = [orbit_camera(az, el, 3.4, target=target, fov_deg=40, width=args.size) for az, el in VIEWS]
    images, labels = [], []
    for name in pick_poses():
        orient, pose = get_pose(name)
        rgb, _ = renderer.render(orient, pose, None, None, cameras)
        images.extend(rgb)
        labels.extend([name] + [f"az {az} el {el}" for az, el in VIEWS[1:]])
    print(save_image_grid(args.out, np.stack(images), columns=len(VIEWS), labels=labels))


# What ends the script with one line instead of a traceback.
ERRORS = (BodyModelError,)


if __name__ == "__main__":
    run_script(main, "render_avatar_grid.py", ERRORS)
