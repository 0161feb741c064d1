"""Speed of the body model and the ground-truth mesh renderer on this machine.

    python benchmarks/mesh_renderer.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from posegen_env.body.body_model import load_body_model
from posegen_env.distributions import UniformPoseSampler
from posegen_env.render.camera import orbit_camera
from posegen_env.render.mesh.renderer import MeshRenderer


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    body = load_body_model()
    poses = UniformPoseSampler().sample(64, np.random.default_rng(0))
    print(f"torch threads: {torch.get_num_threads()}, vertices: {body.num_vertices}")
    with torch.no_grad():
        for batch in (1, 64):
            t = timed(lambda b=batch: body(poses["global_orient"][:b], poses["body_pose"][:b]), args.repeats)
            print(f"body model forward, batch {batch:3d}: {batch / t:8.1f} bodies/s")
    vertices = body(poses["global_orient"][:1], poses["body_pose"][:1]).vertices[0].double().numpy()
    for size in (64, 128, 256):
        for ss in (1, 2):
            renderer = MeshRenderer(body, supersample=ss)
            cams = [orbit_camera(30 * i, 10, 3.4, width=size) for i in range(8)]
            t = timed(lambda r=renderer, c=cams: r.render_vertices(vertices, c), max(2, args.repeats // 4))
            print(f"mesh renderer {size:3d}x{size:<3d} supersample {ss}: {len(cams) / t:7.1f} images/s "
                  f"(8 views of one posed mesh)")


if __name__ == "__main__":
    main()
