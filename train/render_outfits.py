"""Image grid of a cast of random subjects: each outfit (and build) from the front and the back.

    python train/render_outfits.py --out docs/images/cast_outfits.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from posegen_env.body.body_model import BodyModelError, load_body_model
from posegen_env.body.pose_library import get_pose
from posegen_env.body.subjects import subject_betas
from posegen_env.cli import run_script
from posegen_env.data.image_grid import save_image_grid
from posegen_env.render.camera import orbit_camera
from posegen_env.render.mesh.appearance import Outfit, ProceduralAppearance
from posegen_env.render.mesh.renderer import MeshRenderer

VIEWS = ((0, 5), (180, 5))  # front and back: (azimuth, elevation) degrees


def outfit_label(outfit: Outfit) -> str:
    """A short caption: the top (and jacket) over the bottom."""
    jacket = "+jacket" if outfit.jacket is not None else ""
    return f"{outfit.top}{jacket}/{outfit.bottom.replace('_', ' ')}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("docs/images/cast_outfits.png"))
    parser.add_argument("--subjects", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0, help="subject k has outfit seed and betas seed seed + k")
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--spread", type=float, default=1.0, help="spread of the betas (0: mean shape)")
    parser.add_argument("--pose", default="rest", help="library pose all subjects take")
    parser.add_argument("--body", default=None, help="SMPL .pkl or PoseGen body .npz (default: shipped body)")
    args = parser.parse_args(argv)

    body = load_body_model(args.body)
    target = body.rest_joints()[0]
    cameras = [orbit_camera(az, el, 2.7, target=target, fov_deg=40, width=args.size) for az, el in VIEWS]
    orient, pose = get_pose(args.pose)
    images, labels = [], []
    for k in range(args.subjects):
        outfit = Outfit.random(args.seed + k)
        renderer = MeshRenderer(body, background=(235, 235, 235), supersample=2,
                                appearance=ProceduralAppearance.for_body(body, outfit))
        betas = subject_betas(args.seed + k, body.num_betas, spread=args.spread)
        rgb, _ = renderer.render(orient, pose, betas, None, cameras)
        images.extend(rgb)
        labels.extend([outfit_label(outfit), "back"])
    print(save_image_grid(args.out, np.stack(images), columns=2 * min(args.subjects, 5), labels=labels))


# What ends the script with one line instead of a traceback.
ERRORS = (BodyModelError,)


if __name__ == "__main__":
    run_script(main, "render_outfits.py", ERRORS)
