"""Image grid of a cast rendered by its NeRF: every subject in one pose, from the front and the back.

    python train/render_cast.py --out docs/images/cast.png                 # the shipped cast
    python train/render_cast.py --cast runs/cast.pt --pose walk --out cast.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from posegen_env.body.pose_library import get_pose, pose_names
from posegen_env.cli import run_script
from posegen_env.data.image_grid import save_image_grid
from posegen_env.render.avatar import AvatarError
from posegen_env.render.avatar.cast import DEFAULT_CAST_PATH, load_cast
from posegen_env.render.camera import orbit_camera

VIEWS = ((20, 8), (200, 8))  # (azimuth, elevation) degrees: front and back, a little to the side


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cast", type=Path, default=DEFAULT_CAST_PATH)
    parser.add_argument("--out", type=Path, default=Path("docs/images/cast.png"))
    parser.add_argument("--pose", default="walk", help=f"a library pose ({', '.join(pose_names()[:6])}, ...)")
    parser.add_argument("--size", type=int, default=112)
    args = parser.parse_args(argv)
    name = next((n for n in pose_names() if args.pose in n), None)
    if name is None:
        parser.error(f"no library pose matches {args.pose!r}; choose from {', '.join(pose_names())}")
    cast = load_cast(args.cast)
    orient, pose = get_pose(name)
    images, labels = [], []
    for k, subject in enumerate(cast.subjects):
        joints = cast.posed_joints(orient[None], pose[None], subjects=k)[0].numpy()
        cameras = [orbit_camera(az, el, 3.2, target=joints[0], fov_deg=40, width=args.size) for az, el in VIEWS]
        with torch.no_grad():
            out = cast.render(orient[None], pose[None], cameras=cameras, background=(245, 245, 245), subjects=k)
        images.extend((out.rgb.numpy() * 255 + 0.5).astype(np.uint8))
        labels.extend([subject.name, "back, held out" if subject.heldout else "back"])
    print(save_image_grid(args.out, np.stack(images), columns=2 * 5, labels=labels))


# What ends the script with one line instead of a traceback.
ERRORS = (AvatarError,)


if __name__ == "__main__":
    run_script(main, "render_cast.py", ERRORS)
