"""Avatar NeRF benchmark: quality against the ground-truth renderer, and speed.

    python train/make_capture.py --out captures/default      # once, for the quality figures
    python benchmarks/render.py --capture captures/default

    python benchmarks/render.py --second-band                # only the second-band comparison
    python benchmarks/render.py --cast [CAST]                # only one subject against mixed subjects

Quality: whole-image PSNR on the capture's held-out cameras (training poses) and held-out
poses (all cameras), same background. Speed: batched rendering including skinning, against a
naive renderer that samples the body's whole bounding box uniformly (same model, same image,
per-sample nearest-vertex skinning) and against the ground-truth mesh renderer. Second band:
``march``'s own compositing of the band behind a grazed limb against nerfacc's ``prefix_trans``,
on the rays of 64 px person crops. Cast: a batch of 64 px person crops of one subject against
the same batch with each crop showing another subject (a cast file, or ten subjects made from
the avatar with other colours and builds), and the plain avatar.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import nerfacc
import numpy as np
import torch
from scipy.spatial import cKDTree

from posegen_env.data.capture import load_capture
from posegen_env.distributions import BasePoseSampler, UniformCameraSampler
from posegen_env.render.avatar import CastSubject, load_avatar, load_cast, save_cast
from posegen_env.render.avatar.checkpoint import avatar_state, build_avatar
from posegen_env.render.avatar.fit import psnr
from posegen_env.render.avatar.proxy import RayHits
from posegen_env.render.avatar.renderer import _band_samples, _march_band, _weighted_colour, march
from posegen_env.render.camera import REFERENCE_WIDTH, orbit_camera, person_crop_box
from posegen_env.render.mesh.renderer import MeshRenderer


def quality(avatar, capture) -> dict[str, float]:
    bent = sorted(n for n, d in capture.distortion.items() if np.any(d))
    if bent:  # pinhole renders against distorted photos would score the lens, not the avatar
        raise SystemExit(f"render.py: error: camera(s) {', '.join(bent)} of {capture.root} have non-zero distortion "
                         "D; undistort their images (cv2.undistort) and set D to zeros to score the avatar on them")
    s = capture.splits
    result = {}
    every_camera = s["train_cameras"] + s["test_cameras"]
    for name, frames, cams in (("held-out cameras, training poses", s["train_frames"][::4], s["test_cameras"]),
                               ("held-out poses, all cameras", s["test_frames"], every_camera)):
        scores = []
        for frame in frames:
            p = capture.frame_params(frame)
            out = avatar.render(p["global_orient"], p["body_pose"], p["betas"], [capture.cameras[c] for c in cams],
                                p["transl"], background=capture.background)
            for c, img in zip(cams, out.rgb, strict=True):
                scores.append(psnr(img.numpy(), capture.load_image(c, frame) / 255.0))
        result[name] = (float(np.mean(scores)), len(scores))
    return result


def workload(avatar, n: int, size: int, seed: int = 0):
    """n base-distribution poses, each seen by a capture-like camera from a random direction."""
    rng = np.random.default_rng(seed)
    poses = BasePoseSampler().sample(n, rng)
    target = avatar.body.rest_joints()[0]
    cams = [orbit_camera(a, e, 3.4, target=target, fov_deg=40, width=size)
            for a, e in zip(rng.uniform(0, 360, n), rng.uniform(-10, 40, n), strict=True)]
    return poses, cams


def timed(fn, repeats: int = 3) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


@torch.no_grad()
def naive_render(avatar, poses, cams, index: int, samples: int = 128) -> torch.Tensor:
    """Uniform samples over the posed body's bounding box, skinning from the nearest proxy vertex."""
    args = avatar.body.prepare_inputs(poses["global_orient"][index], poses["body_pose"][index], poses["betas"][index])
    bodies = avatar.proxy.pose(*args)
    verts = bodies.vertices[0].numpy()
    lo, hi = verts.min(0) - 0.05, verts.max(0) + 0.05
    origins, dirs = cams[index].rays()
    inv = 1.0 / np.where(np.abs(dirs) < 1e-9, 1e-9, dirs)
    t0, t1 = (lo - origins) * inv, (hi - origins) * inv
    near, far = np.minimum(t0, t1).max(1), np.maximum(t0, t1).min(1)
    hit = np.flatnonzero(far > np.maximum(near, 0))
    edges = near[hit, None] + (far - near)[hit, None] * np.linspace(0, 1, samples + 1)
    mids = 0.5 * (edges[:, 1:] + edges[:, :-1])
    points = origins[hit, None] + mids[..., None] * dirs[hit, None]
    _, nearest = cKDTree(verts).query(points.reshape(-1, 3))
    blend = torch.einsum("pj,jab->pab", avatar.proxy.weights[nearest], bodies.transforms[0])
    inverse = torch.linalg.inv(blend)
    pts = torch.as_tensor(points.reshape(-1, 3), dtype=torch.float32)
    canonical = torch.einsum("pab,pb->pa", inverse[:, :3, :3], pts) + inverse[:, :3, 3]
    sigma, rgb = avatar.field(canonical)
    t = torch.as_tensor(edges, dtype=torch.float32)
    weights, _, _ = nerfacc.render_weight_from_density(t[:, :-1], t[:, 1:], sigma.reshape(len(hit), samples))
    return (weights[..., None] * rgb.reshape(len(hit), samples, 3)).sum(1)


def crop_workload(avatar, n: int, size: int, seed: int = 0) -> RayHits:
    """The hit rays of n person crops (base poses, uniform orbit cameras), placed as ``render_crops`` does."""
    rng = np.random.default_rng(seed)
    poses, cameras = BasePoseSampler().sample(n, rng), UniformCameraSampler().sample(n, rng)
    bodies = avatar.pose(poses["global_orient"], poses["body_pose"], poses["betas"])
    joints = bodies.joints.double().numpy()
    crops = []
    for i in range(n):
        full = cameras.to_camera(i, target=joints[i, 0], width=REFERENCE_WIDTH)
        centre, side = person_crop_box(full.project(joints[i]), scale=1.25, jitter=0.05, rng=rng)
        crops.append(full.crop(centre, side, size))
    return RayHits.concat(avatar.proxy.cast_batch(bodies, list(range(n)), crops))


def march_prefix_trans(field, hits: RayHits, num_samples: int, min_transmittance: float = 0.01):
    """``march`` with the second band composited by nerfacc: the first band's transmittance goes in
    as ``prefix_trans``, so the band's weights already carry it."""
    colour, opacity = _march_band(field, hits, 0, num_samples, None, False)
    behind = torch.nonzero(hits.has_second & (opacity.detach() < 1 - min_transmittance))[:, 0]
    if len(behind):
        rows, trilinear, starts, ends = _band_samples(field, hits.select(behind), 1, num_samples, None)
        sigma = field.density_at(rows, trilinear).reshape(starts.shape)
        prefix = (1 - opacity[behind])[:, None].expand_as(sigma)
        weights, _, _ = nerfacc.render_weight_from_density(starts, ends, sigma, prefix_trans=prefix)
        colour2, opacity2 = _weighted_colour(field, rows, trilinear, weights)
        colour, opacity = colour.index_add(0, behind, colour2), opacity.index_add(0, behind, opacity2)
    return colour, opacity


def second_band(avatar, n: int = 64, size: int = 64, repeats: int = 15) -> None:
    """Time ``march`` (second band composited by hand) against ``march_prefix_trans``, alternating
    runs on the same rays; print the ratio, how far the results differ and whether each has gradients."""
    hits = crop_workload(avatar, n, size)
    S, field = avatar.num_samples, avatar.field
    ways = {"by hand (march)": lambda: march(field, hits, S), "nerfacc prefix_trans": lambda: march_prefix_trans(
        field, hits, S)}
    times = {name: [] for name in ways}
    with torch.no_grad():
        for _ in range(repeats):
            for name, fn in ways.items():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
        (c1, o1), (c2, o2) = (fn() for fn in ways.values())
    t_hand, t_nerfacc = (float(np.median(t)) for t in times.values())
    print(f"second band, {n} crops of {size} px ({len(hits.pixel):,} rays, {int(hits.has_second.sum()):,} with a "
          f"second band): by hand {t_hand * 1e3:.1f} ms, nerfacc prefix_trans {t_nerfacc * 1e3:.1f} ms per march "
          f"(median of {repeats}); nerfacc / by hand = {t_nerfacc / t_hand:.3f}")
    on_white = lambda c, o: ((c + (1 - o[:, None])).clamp(0, 1) * 255 + 0.5).to(torch.uint8)  # noqa: E731
    flips = int((on_white(c1, o1) != on_white(c2, o2)).sum())
    print(f"  max |difference|: colour {float((c1 - c2).abs().max()):.2g}, opacity {float((o1 - o2).abs().max()):.2g}; "
          f"bit-identical: {torch.equal(c1, c2) and torch.equal(o1, o2)}; uint8 values that differ on white: {flips}")
    for name, fn in ways.items():
        field.zero_grad()
        colour, opacity = fn()
        try:
            (colour.sum() + opacity.sum()).backward()
            print(f"  {name}: gradients flow")
        except RuntimeError as error:
            print(f"  {name}: no gradients ({str(error).splitlines()[0][:90]}...)")
    field.zero_grad()


def demo_cast(avatar, path: Path, num_subjects: int = 10, seed: int = 0):
    """A cast of ``num_subjects`` made from ``avatar``: its colour table and MLP perturbed, betas ~ N(0, 1).
    Which samples get a colour lookup depends only on density, so the colours do not change the cost."""
    g = torch.Generator().manual_seed(seed)
    avatars, subjects = [], []
    for k in range(num_subjects):
        state = avatar_state(avatar)
        colour = state["field"]["colour"].float()
        state["field"]["colour"] = (colour + 0.5 * torch.randn(colour.shape, generator=g)).half()
        mlp = state["field"]["mlp"]
        state["field"]["mlp"] = {n: v + 0.1 * torch.randn(v.shape, generator=g) for n, v in mlp.items()}
        avatars.append(build_avatar(state, avatar.body))
        subjects.append(CastSubject(f"demo_{k:02d}", torch.randn(avatar.body.num_betas, generator=g)))
    save_cast(path, avatars, subjects)
    return load_cast(path, avatar.body)


def crops_of(renderer, poses, cameras, size: int, subjects=None, betas=None, seed: int = 0) -> None:
    """Pose, place person crops by the joints and render them, as ``render_crops`` does (a cast's
    bodies with their subjects' betas unless ``betas`` are given)."""
    rng = np.random.default_rng(seed)
    kwargs = {} if subjects is None else {"subjects": subjects}
    bodies = renderer.pose(poses["global_orient"], poses["body_pose"], betas, **kwargs)
    joints = bodies.joints.double().numpy()
    crops = []
    for i in range(len(joints)):
        full = cameras.to_camera(i, target=joints[i, 0], width=REFERENCE_WIDTH)
        centre, side = person_crop_box(full.project(joints[i]), scale=1.25, jitter=0.05, rng=rng)
        crops.append(full.crop(centre, side, size))
    renderer.render_posed(bodies, crops, **kwargs)


def cast_speed(avatar, cast, n: int = 64, size: int = 64, repeats: int = 15) -> None:
    """Time a batch of crops all of subject 0 against the same batch with crop i of subject i mod S,
    alternating runs; print images/s and the mixed / one-subject ratio. Also timed: the plain
    avatar, and the mixed subjects' bodies in one subject's colour (what mixing the colour costs)."""
    rng = np.random.default_rng(0)
    poses, cameras = BasePoseSampler().sample(n, rng), UniformCameraSampler().sample(n, rng)
    mixed = [i % len(cast.subjects) for i in range(n)]
    ways = {"plain avatar (mean shape)": lambda: crops_of(avatar, poses, cameras, size),
            "cast, one subject": lambda: crops_of(cast, poses, cameras, size, [0] * n),
            f"cast, {len(cast.subjects)} subjects mixed": lambda: crops_of(cast, poses, cameras, size, mixed),
            "cast, mixed subjects' bodies, subject 0's colour": lambda: crops_of(
                cast, poses, cameras, size, [0] * n, cast.betas[mixed])}
    times = {name: [] for name in ways}
    with torch.no_grad():
        for fn in ways.values():
            fn()
        for _ in range(repeats):
            for name, fn in ways.items():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    rates = {name: n / float(np.median(t)) for name, t in times.items()}
    print(f"cast: {len(cast.subjects)} subjects; {n} crops of {size} px per batch, pose + crop placement + render, "
          f"median of {repeats} alternating runs, {torch.get_num_threads()} torch thread(s)")
    for name, rate in rates.items():
        print(f"  {name}: {rate:6.1f} images/s")
    one, many, one_colour = list(rates.values())[1:]
    print(f"  mixed / one subject = {many / one:.3f}; mixed / same bodies in one colour = {many / one_colour:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--avatar", default=None, help="avatar file (default: the shipped one)")
    parser.add_argument("--capture", type=Path, default=Path("captures/default"))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--second-band", action="store_true", help="only compare the second band's compositing")
    parser.add_argument("--cast", nargs="?", const="demo", default=None,
                        help="only time one subject against mixed subjects: a cast file, or none for ten subjects "
                             "made from the avatar")
    args = parser.parse_args()
    avatar = load_avatar(args.avatar)
    if args.second_band:
        second_band(avatar, args.batch)
        return
    if args.cast is not None:
        if args.cast == "demo":
            with tempfile.TemporaryDirectory() as tmp:
                cast = demo_cast(avatar, Path(tmp) / "demo_cast.pt")
        else:
            cast = load_cast(args.cast, avatar.body)
        cast_speed(avatar, cast, args.batch)
        return
    print(f"torch threads: {torch.get_num_threads()}; voxels: {avatar.field.num_voxels:,}; "
          f"proxy triangles: {len(avatar.proxy.faces_np):,}")
    meta = avatar_meta(args.avatar)
    if meta:
        last = meta.get("history", [{}])[-1]
        print(f"fitting: {meta.get('seconds')} s for {meta.get('steps')} steps; final held-out PSNR "
              + ", ".join(f"{k} {v:.2f} dB" for k, v in last.items() if k not in ("step", "loss")))
    if args.capture.is_dir():
        for name, (value, n) in quality(avatar, load_capture(args.capture)).items():
            print(f"PSNR {name}: {value:.2f} dB over {n} images")
    else:
        print(f"no capture at {args.capture}: skipping quality (make one with train/make_capture.py)")
    truth = MeshRenderer(avatar.body, supersample=1)
    for size in (64, 128):
        poses, cams = workload(avatar, args.batch, size)
        t = timed(lambda p=poses, c=cams: avatar.render(p["global_orient"], p["body_pose"], p["betas"], c))
        nerf_rate = args.batch / t
        t_naive = timed(lambda p=poses, c=cams: [naive_render(avatar, p, c, i) for i in range(2)], repeats=1) / 2
        t_mesh = timed(lambda p=poses, c=cams: [truth.render(p["global_orient"][i], p["body_pose"][i], p["betas"][i],
                                                             None, [c[i]]) for i in range(8)], repeats=1) / 8
        print(f"{size}x{size}: avatar {nerf_rate:6.1f} images/s (batch {args.batch}, with skinning) | "
              f"naive bounding-box sampling {1 / t_naive:5.2f} images/s ({nerf_rate * t_naive:5.0f}x slower) | "
              f"mesh renderer {1 / t_mesh:6.1f} images/s")


def avatar_meta(path) -> dict:
    from posegen_env.render.avatar.checkpoint import DEFAULT_AVATAR_PATH, read_avatar_file

    return read_avatar_file(path or DEFAULT_AVATAR_PATH).get("meta", {})


if __name__ == "__main__":
    main()
