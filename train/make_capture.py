"""Render a synthetic multi-view capture of the default avatar (what a human NeRF is fitted on).

Cameras: rings on a sphere around the body (training cameras) plus held-out cameras in
between. Frames: every base-library pose and uniform samples within the joint limits
(training poses) plus held-out poses (mirrored interpolations of library poses and new
uniform samples). One subject, body at the origin: by default the shipped subject (default
outfit, mean body shape); ``--outfit-seed`` and ``--betas-seed`` render another of the cast. The
capture is written in PoseGen's capture layout (docs/capture_format.md), atomically, with a
preview grid; its meta records the outfit and the betas.

    python train/make_capture.py --out captures/default
    python train/make_capture.py --out captures/subject_3 --outfit-seed 3 --betas-seed 3
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from posegen_env.body.body_model import BodyModelError, load_body_model
from posegen_env.body.pose_library import interpolate_poses, library_array, mirror_pose
from posegen_env.body.subjects import subject_betas
from posegen_env.cli import run_script
from posegen_env.data.capture import CaptureError, CaptureWriter
from posegen_env.data.image_grid import save_image_grid
from posegen_env.distributions import UniformPoseSampler
from posegen_env.render.camera import Camera, orbit_camera
from posegen_env.render.mesh.appearance import Outfit, ProceduralAppearance
from posegen_env.render.mesh.renderer import MeshRenderer


def capture_cameras(num_train: int, num_test: int, size: int, distance: float, fov_deg: float,
                    target) -> tuple[dict[str, Camera], list[str], list[str]]:
    """Training cameras on three elevation rings; held-out cameras at in-between angles."""
    cameras, train, test = {}, [], []
    rings = (-10.0, 15.0, 40.0)
    for i in range(num_train):
        ring = i % len(rings)
        per_ring = int(np.ceil(num_train / len(rings)))
        azimuth = (i // len(rings)) * 360.0 / per_ring + ring * 360.0 / per_ring / len(rings)
        name = f"cam_{i:02d}"
        cameras[name] = orbit_camera(azimuth, rings[ring], distance, target=target, fov_deg=fov_deg, width=size)
        train.append(name)
    for i in range(num_test):
        azimuth = 360.0 * (i + 0.5) / num_test + 7.0
        elevation = (0.0, 28.0)[i % 2]
        name = f"test_{i:02d}"
        cameras[name] = orbit_camera(azimuth, elevation, distance, target=target, fov_deg=fov_deg, width=size)
        test.append(name)
    return cameras, train, test


def capture_poses(num_train: int, num_test: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
    """(global_orient (N,3), body_pose (N,69)) with the first ``num_train`` frames for training."""
    lib_orient, lib_pose = library_array()
    n_lib = min(len(lib_pose), num_train)
    n_uniform = num_train - n_lib
    uniform = UniformPoseSampler()
    train_uniform = uniform.sample(n_uniform, rng) if n_uniform else None
    # Held-out: half mirrored midpoints between two library poses, half new uniform samples.
    n_interp = num_test // 2
    a, b = rng.choice(len(lib_pose), size=(2, n_interp))
    alpha = rng.uniform(0.3, 0.7, size=n_interp)
    mid_orient, mid_pose = interpolate_poses((lib_orient[a], lib_pose[a]), (lib_orient[b], lib_pose[b]), alpha)
    mid_orient, mid_pose = mirror_pose(mid_orient, mid_pose)
    test_uniform = uniform.sample(num_test - n_interp, rng)
    orients = [lib_orient[:n_lib], mid_orient, test_uniform["global_orient"]]
    poses = [lib_pose[:n_lib], mid_pose, test_uniform["body_pose"]]
    if train_uniform is not None:
        orients.insert(1, train_uniform["global_orient"])
        poses.insert(1, train_uniform["body_pose"])
    return np.concatenate(orients), np.concatenate(poses), num_train


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("captures/default"))
    parser.add_argument("--size", type=int, default=128, help="image side in pixels")
    parser.add_argument("--train-cameras", type=int, default=24)
    parser.add_argument("--test-cameras", type=int, default=6)
    parser.add_argument("--train-poses", type=int, default=60)
    parser.add_argument("--test-poses", type=int, default=10)
    parser.add_argument("--distance", type=float, default=3.4, help="camera distance from the pelvis (m)")
    parser.add_argument("--fov", type=float, default=40.0, help="horizontal field of view (degrees)")
    parser.add_argument("--supersample", type=int, default=2, help="rays per pixel side (anti-aliasing)")
    parser.add_argument("--background", type=int, nargs=3, default=(255, 255, 255))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--body", default=None, help="SMPL .pkl or PoseGen body .npz (default: shipped body)")
    parser.add_argument("--outfit-seed", type=int, default=None, help="random outfit (default: the default outfit)")
    parser.add_argument("--betas-seed", type=int, default=None, help="random body shape (default: mean shape)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing capture at --out")
    parser.add_argument("--quick", action="store_true", help="tiny capture for smoke tests")
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.train_cameras, args.test_cameras, args.train_poses, args.test_poses = 48, 4, 2, 3, 2
    if min(args.size, args.train_cameras, args.train_poses) < 1 or min(args.test_cameras, args.test_poses) < 0:
        parser.error("sizes and counts must be positive")

    start = time.time()
    body = load_body_model(args.body)
    outfit = Outfit.default() if args.outfit_seed is None else Outfit.random(args.outfit_seed)
    renderer = MeshRenderer(body, background=args.background, supersample=args.supersample,
                            appearance=ProceduralAppearance.for_body(body, outfit))
    rng = np.random.default_rng(args.seed)
    target = body.rest_joints()[0]  # pelvis: every pose rotates about it, so it stays in view
    cameras, train_cams, test_cams = capture_cameras(args.train_cameras, args.test_cameras, args.size,
                                                     args.distance, args.fov, target)
    orients, poses, n_train = capture_poses(args.train_poses, args.test_poses, rng)
    betas = (np.zeros(body.num_betas, dtype=np.float32) if args.betas_seed is None
             else subject_betas(args.betas_seed, body.num_betas))
    splits = {"train_cameras": train_cams, "test_cameras": test_cams,
              "train_frames": list(range(n_train)), "test_frames": list(range(n_train, len(poses)))}
    meta = {"generator": "train/make_capture.py", "seed": args.seed, "supersample": args.supersample,
            "distance": args.distance, "fov_deg": args.fov, "body_meta": body.meta,
            "outfit_seed": args.outfit_seed, "outfit": outfit.as_dict(),
            "betas_seed": args.betas_seed, "betas": betas.tolist()}
    cam_list = list(cameras.values())
    preview = []
    with CaptureWriter(args.out, cameras, (args.size, args.size), tuple(args.background), body.identifier,
                       splits, meta=meta, overwrite=args.overwrite) as writer:
        for frame in tqdm(range(len(poses)), desc="rendering capture", unit="frame"):
            rgb, alpha = renderer.render(orients[frame], poses[frame], betas, None, cam_list)
            params = {"global_orient": orients[frame], "body_pose": poses[frame], "betas": betas,
                      "transl": np.zeros(3)}
            writer.add_frame(frame, params, dict(zip(cameras, rgb, strict=True)),
                             {name: (a * 255 + 0.5).astype(np.uint8) for name, a in zip(cameras, alpha, strict=True)})
            if frame % max(1, len(poses) // 8) == 0 and len(preview) < 8:
                preview.append(rgb[:: max(1, len(cam_list) // 6)][:6])
    grid_path = args.out / "preview.png"
    save_image_grid(grid_path, np.concatenate(preview), columns=len(preview[0]))
    n_images = len(poses) * len(cam_list)
    print(f"wrote {args.out}: {len(cam_list)} cameras x {len(poses)} frames = {n_images} images "
          f"({args.size}x{args.size}) in {time.time() - start:.0f} s; preview: {grid_path}")


# What ends the script with one line instead of a traceback.
ERRORS = (CaptureError, BodyModelError)


if __name__ == "__main__":
    run_script(main, "make_capture.py", ERRORS)
