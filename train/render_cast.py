"""Image grid of a cast or of the people space rendered by the NeRF: each person in one pose.

    python train/render_cast.py --out docs/images/cast.png                      # the shipped cast
    python train/render_cast.py --avatar people --count 24 --views front --out docs/images/people.png
    python train/render_cast.py --avatar runs/cast.pt --pose walk --out cast.png

A cast shows every subject (front and back by default); the people space shows its first
``--count`` training people, each in their own build.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from posegen_env.body.pose_library import get_pose, pose_names
from posegen_env.cli import run_script
from posegen_env.data.image_grid import save_image_grid
from posegen_env.render.avatar import AvatarError, CastRenderer
from posegen_env.render.avatar.loading import load_renderer
from posegen_env.render.camera import orbit_camera
from posegen_env.settings import AvatarChoice, add_options

VIEWS = {"front": (20, 8), "back": (200, 8)}  # (azimuth, elevation) degrees, a little to the side


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_options(parser, AvatarChoice, AvatarChoice("cast"), help_suffix={"avatar": "; a cast, not one person"})
    parser.add_argument("--out", type=Path, default=Path("docs/images/cast.png"))
    parser.add_argument("--pose", default="walk", help=f"a library pose ({', '.join(pose_names()[:6])}, ...)")
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--count", type=int, default=None, help="how many people (default: every cast subject, 20 "
                        "people)")
    parser.add_argument("--views", choices=("both", "front"), default="both")
    parser.add_argument("--columns", type=int, default=10)
    args = parser.parse_args(argv)
    name = next((n for n in pose_names() if args.pose in n), None)
    if name is None:
        parser.error(f"no library pose matches {args.pose!r}; choose from {', '.join(pose_names())}")
    if args.count is not None and args.count < 1:
        parser.error(f"--count must be a positive number of people, got {args.count}")
    cast = load_renderer(args.avatar)
    if not isinstance(cast, CastRenderer):
        parser.error(f"{args.avatar} is one person; give a cast file, 'cast' or 'people'")
    default = len(cast.subjects) if type(cast) is CastRenderer else 20
    who = list(range(min(args.count or default, len(cast.group("train")) if type(cast) is not CastRenderer
                         else len(cast.subjects))))
    views = ("front", "back") if args.views == "both" else ("front",)
    orient, pose = get_pose(name)
    images, labels = [], []
    for k in who:
        subject = cast.subjects[k]
        joints = cast.posed_joints(orient[None], pose[None], subjects=k)[0].numpy()
        cameras = [orbit_camera(*VIEWS[v], 3.2, target=joints[0], fov_deg=40, width=args.size) for v in views]
        with torch.no_grad():
            out = cast.render(orient[None], pose[None], cameras=cameras, background=(245, 245, 245), subjects=k)
        images.extend((out.rgb.numpy() * 255 + 0.5).astype(np.uint8))
        held = ", held out" if subject.heldout else ""
        labels.extend([subject.name if v == "front" else f"back{held}" for v in views])
    print(save_image_grid(args.out, np.stack(images), columns=args.columns, labels=labels))


# What ends the script with one line instead of a traceback.
ERRORS = (AvatarError,)


if __name__ == "__main__":
    run_script(main, "render_cast.py", ERRORS)
