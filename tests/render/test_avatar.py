"""The avatar NeRF: the shipped default matches the ground truth, renders any pose, rejects bad input."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from posegen_env.body.body_model import BodyModelError, load_body_model
from posegen_env.body.pose_library import get_pose
from posegen_env.data.capture import load_capture
from posegen_env.distributions import UniformCameraSampler, UniformPoseSampler
from posegen_env.render.avatar import DEFAULT_AVATAR_PATH, AvatarError, load_avatar, save_avatar
from posegen_env.render.avatar.fit import build_ray_bank, new_avatar, photometric_loss, psnr
from posegen_env.render.camera import Camera, intrinsics, look_at, orbit_camera, person_crop_box
from posegen_env.render.crops import render_crops
from posegen_env.render.mesh.renderer import MeshRenderer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def avatar():
    return load_avatar()


@pytest.fixture(scope="module")
def truth(avatar):
    return MeshRenderer(avatar.body, background=(255, 255, 255), supersample=2)


def capture_camera(azimuth, elevation, avatar, width=128) -> Camera:
    """A camera like the capture's (3.4 m from the pelvis, 40 degree field of view)."""
    return orbit_camera(azimuth, elevation, 3.4, target=avatar.body.rest_joints()[0], fov_deg=40, width=width)


def test_default_avatar_is_shipped_small():
    assert DEFAULT_AVATAR_PATH.is_file() and DEFAULT_AVATAR_PATH.stat().st_size < 10e6


@pytest.mark.parametrize("pose_name, azimuth, elevation", [("rest", 20, 10), ("walk_midstance", 200, 0),
                                                           ("sit_chair", 75, 30)])
def test_training_poses_match_ground_truth(avatar, truth, pose_name, azimuth, elevation):
    """Library poses were training poses; these views are off the training camera rings."""
    orient, pose = get_pose(pose_name)
    cam = capture_camera(azimuth, elevation, avatar)
    out = avatar.render(orient, pose, None, [cam])
    rgb, alpha = truth.render(orient, pose, None, None, [cam])
    assert psnr(out.rgb[0].numpy(), rgb[0] / 255.0) > 27.0
    predicted, actual = out.alpha[0].numpy() > 0.5, alpha[0] > 0.5
    assert (predicted & actual).sum() / (predicted | actual).sum() > 0.9  # silhouette IoU


def test_novel_poses_render_a_person_where_the_body_is(avatar, truth):
    poses = UniformPoseSampler().sample(3, np.random.default_rng(7))
    cams = [capture_camera(az, 15, avatar, width=96) for az in (30, 150, 270)]
    out = avatar.render(poses["global_orient"], poses["body_pose"], poses["betas"], cams)
    for k, cam in enumerate(cams):
        _, alpha = truth.render(poses["global_orient"][k], poses["body_pose"][k], poses["betas"][k], None, [cam])
        predicted, actual = out.alpha[k].numpy() > 0.5, alpha[0] > 0.5
        assert (predicted & actual).sum() / (predicted | actual).sum() > 0.8
        uv = np.round(out.joints2d[k].cpu().numpy()).astype(int)
        near = [out.alpha[k, max(v - 1, 0):v + 2, max(u - 1, 0):u + 2].max() > 0.5 for u, v in uv]
        assert sum(near) >= 22  # joints project onto the rendered person


def varied_views(avatar, poses, width=40) -> list[Camera]:
    """One camera per pose: near and far orbits (narrow ones 12 m away as well), and one just in front of
    the chest, looking down, so close that the shell reaches behind it (every pixel is cast)."""
    joints = avatar.posed_joints(poses["global_orient"], poses["body_pose"], poses["betas"]).numpy()
    cams = [orbit_camera(az, el, dist, target=j[0], fov_deg=fov, width=width) for j, (az, el, dist, fov) in zip(
        joints[:7], [(0, 0, 3.4, 40), (100, 20, 12.0, 12), (200, -30, 1.5, 70), (300, 60, 2.5, 50), (45, 5, 6.0, 20),
                 (160, 10, 3.0, 45), (250, 40, 12.0, 10)], strict=True)]
    R, t = look_at(joints[-1, 9] + [0.0, 0.05, 0.3], joints[-1, 0] - [0.0, 0.6, 0.0])  # above the belly, looking down
    return cams + [Camera(intrinsics(0.4 * width, width, width), R, t, width, width)]


def test_batch_equals_one_by_one_and_is_deterministic(avatar):
    """Every pose, shape and camera in one call renders as it does alone (far cameras, a shell behind
    the camera); and one pose from every camera, or one camera for all poses, as each pair alone."""
    poses = UniformPoseSampler().sample(8, np.random.default_rng(3))
    cams = varied_views(avatar, poses)
    batch = avatar.render(poses["global_orient"], poses["body_pose"], poses["betas"], cams)
    assert (batch.alpha.reshape(8, -1).max(dim=1).values > 0.5).all()  # every view sees the person
    for k in range(8):
        single = avatar.render(poses["global_orient"][k], poses["body_pose"][k], poses["betas"][k], [cams[k]])
        assert torch.allclose(batch.rgb[k], single.rgb[0], atol=2e-4)
        assert torch.allclose(batch.alpha[k], single.alpha[0], atol=2e-4)
        assert torch.allclose(batch.joints3d[k], single.joints3d[0], atol=1e-6)
    again = avatar.render(poses["global_orient"], poses["body_pose"], poses["betas"], cams)
    assert torch.equal(batch.rgb, again.rgb)
    assert not batch.rgb.requires_grad
    one_pose = avatar.render(poses["global_orient"][0], poses["body_pose"][0], poses["betas"][0], cams[:4])
    one_camera = avatar.render(poses["global_orient"][:3], poses["body_pose"][:3], poses["betas"][:3], [cams[0]])
    for k in range(4):
        alone = avatar.render(poses["global_orient"][0], poses["body_pose"][0], poses["betas"][0], [cams[k]])
        assert torch.allclose(one_pose.rgb[k], alone.rgb[0], atol=2e-4)
    for k in range(3):
        alone = avatar.render(poses["global_orient"][k], poses["body_pose"][k], poses["betas"][k], [cams[0]])
        assert torch.allclose(one_camera.rgb[k], alone.rgb[0], atol=2e-4)


def test_batched_cast_returns_the_rays_of_each_image_alone(avatar):
    """One Embree scene per distinct body, whatever the order of the bodies: the same rays as one
    image at a time."""
    poses = UniformPoseSampler().sample(8, np.random.default_rng(4))
    args = avatar.body.prepare_inputs(poses["global_orient"], poses["body_pose"], poses["betas"], None)
    bodies = avatar.proxy.pose(*args)
    views = varied_views(avatar, poses, width=24)
    body_index = [7, 1, 7, 4, 1]
    cams = [views[7], views[1], views[7].crop((12, 12), 16, 24), views[4], views[1].crop((10, 14), 20, 24)]
    assert (views[7].world_to_camera(bodies.inflated[7].numpy())[:, 2] <= 0).any()  # shell behind this camera
    batch = avatar.proxy.cast_batch(bodies, body_index, cams)
    for hits, b, cam in zip(batch, body_index, cams, strict=True):
        alone = avatar.proxy.cast(bodies, b, cam)
        assert hits.num_pixels == alone.num_pixels == 24 * 24 and len(alone.pixel) > 0
        for field in hits.FIELDS:
            assert torch.allclose(getattr(hits, field).float(), getattr(alone, field).float(), atol=1e-6), field


def test_batch_rendered_in_parallel_parts_equals_one_part(avatar, monkeypatch):
    """A large batch is split into parts rendered in threads; the images are those of one part."""
    from posegen_env.render.avatar import renderer

    poses = {k: np.tile(v, (3, 1)) for k, v in UniformPoseSampler().sample(8, np.random.default_rng(3)).items()}
    cams = varied_views(avatar, {k: v[:8] for k, v in poses.items()}, width=24) * 3
    args = (poses["global_orient"], poses["body_pose"], poses["betas"], cams)
    monkeypatch.setattr(renderer, "_RENDER_THREADS", 3)
    parallel = avatar.render(*args)
    monkeypatch.setattr(renderer, "_RENDER_THREADS", 1)
    serial = avatar.render(*args)

    def same(a, b):
        if avatar.device.type == "cpu":
            return torch.equal(a, b)
        # On CUDA, kernels picked by batch size round differently, and a pixel at the early-termination
        # threshold can flip: the images must agree on average, not bit for bit.
        return (a - b).abs().mean() < 1e-3

    for field in ("rgb", "alpha", "joints3d", "joints2d"):
        assert same(getattr(parallel, field), getattr(serial, field)), field
    pose, cam = (poses["global_orient"][0], poses["body_pose"][0], poses["betas"][0]), cams[:1] * 24
    monkeypatch.setattr(renderer, "_RENDER_THREADS", 3)
    one_pose = avatar.render(*pose, cam)  # one pose, many cameras: each part shows that pose
    assert same(one_pose.rgb, one_pose.rgb[:1].expand(24, -1, -1, -1))
    pelvis = avatar.posed_joints(poses["global_orient"][20], poses["body_pose"][20], poses["betas"][20])[0, 0]
    inside = cams[:20] + [orbit_camera(0, 0, 0.05, target=pelvis.cpu().numpy(), width=24)] + cams[21:]
    with pytest.raises(ValueError, match="camera 20 is inside the body"):  # numbered in the whole batch
        avatar.render(*args[:3], inside)


def test_culled_pixels_keep_every_ray_that_hits_the_shell(avatar):
    """Only pixels under projected shell triangles are cast: every pixel whose ray hits the shell
    (cast against the whole image) is among them, and far fewer are cast than the image has."""
    from posegen_env.render.avatar.shell_cast import _pixels_under
    from posegen_env.render.cameras import Cameras
    from posegen_env.render.raycast import embree_scene, next_hit

    poses = UniformPoseSampler().sample(8, np.random.default_rng(3))
    args = avatar.body.prepare_inputs(poses["global_orient"], poses["body_pose"], poses["betas"], None)
    shells = avatar.proxy.pose(*args).inflated.double().numpy()
    cams = varied_views(avatar, poses, width=48)
    pixels, image = _pixels_under(shells, avatar.proxy.faces_np, Cameras.from_list(cams))
    for k, cam in enumerate(cams):
        every = np.arange(48 * 48)
        origins, dirs = cam.pixel_rays(every % 48, every // 48)
        hit = next_hit(embree_scene(shells[k], avatar.proxy.faces_np), origins, dirs, np.zeros(len(every)))[0]
        kept = pixels[image == k]
        assert hit.any() and np.isin(every[hit], kept).all()
        if k < 7:  # the last camera is so close that the shell reaches behind it: every pixel is cast
            assert len(kept) < 0.8 * len(every)


def test_background_and_ground_truth_joints(avatar):
    cam = capture_camera(0, 0, avatar, width=32)
    out = avatar.render(np.zeros(3), np.zeros(69), None, [cam], background=(0, 0, 255))
    assert torch.allclose(out.rgb[0, 0, 0], torch.tensor([0.0, 0.0, 1.0]))
    joints = avatar.body(np.zeros(3), np.zeros(69)).joints[0]
    assert torch.allclose(out.joints3d[0], joints, atol=1e-4)
    assert np.allclose(out.joints2d[0].cpu().numpy(), cam.project(joints.cpu().numpy()), atol=1e-3)


def test_backgrounds_one_per_image(avatar):
    """Each image is composited once, on its own background: as if the batch had that colour throughout."""
    poses = UniformPoseSampler().sample(3, np.random.default_rng(8))
    args = (poses["global_orient"], poses["body_pose"], poses["betas"],
            [capture_camera(az, 10, avatar, width=32) for az in (0, 120, 240)])
    colours = np.array([[0.0, 0.0, 255.0], [12.5, 200.0, 31.0], [255.0, 255.0, 255.0]])
    batch = avatar.render(*args, background=colours)
    for k in range(3):
        assert torch.equal(batch.rgb[k], avatar.render(*args, background=tuple(colours[k])).rgb[k])
    assert torch.equal(batch.rgb[:, 0, 0], torch.as_tensor(colours / 255.0, dtype=torch.float32))


def test_render_posed_renders_bodies_posed_once(avatar):
    """``pose`` then ``render_posed`` is ``render``; its joints are those ``posed_joints`` gives."""
    poses = UniformPoseSampler().sample(2, np.random.default_rng(9))
    args = (poses["global_orient"], poses["body_pose"], poses["betas"])
    cams = [capture_camera(az, 0, avatar, width=24) for az in (30, 210)]
    bodies = avatar.pose(*args)
    assert len(bodies) == 2 and torch.equal(bodies.joints, avatar.posed_joints(*args))
    posed, direct = avatar.render_posed(bodies, cams), avatar.render(*args, cams)
    for field in ("rgb", "alpha", "joints3d", "joints2d"):
        assert torch.equal(getattr(posed, field), getattr(direct, field)), field


def test_crops_take_their_colour_after_their_jitter(avatar):
    """A random background is drawn from each crop's own generator after its jitter: the crops of a
    batch are those rendered one by one, each on that colour (most of a person crop is background)."""
    n = 3
    poses = UniformPoseSampler().sample(n, np.random.default_rng(10))
    cameras = UniformCameraSampler().sample(n, np.random.default_rng(11))
    batch = render_crops(avatar, poses, cameras, crop_size=32, rng=[np.random.default_rng(i) for i in range(n)])
    for i in range(n):
        one = {k: v[i:i + 1] for k, v in poses.items()}
        alone = render_crops(avatar, one, cameras[i:i + 1], crop_size=32, rng=[np.random.default_rng(i)])
        differ = np.abs(batch.images[i].astype(int) - alone.images[0].astype(int))
        assert differ.max() <= 1 and (differ > 0).mean() < 0.01  # float32 rounding with several threads
        rng = np.random.default_rng(i)
        person_crop_box(np.zeros((2, 2)), jitter=0.05, rng=rng)
        colour = (rng.uniform(0.0, 1.0, size=3).astype(np.float32) * 255 + 0.5).astype(np.uint8)
        values, counts = np.unique(batch.images[i].reshape(-1, 3), axis=0, return_counts=True)
        assert np.array_equal(values[counts.argmax()], colour)
    with pytest.raises(ValueError, match="random"):
        render_crops(avatar, poses, cameras, crop_size=32, background="white")


def test_camera_that_sees_nothing_gives_empty_image(avatar):
    R, t = look_at(eye=(0.0, 0.0, 3.0), target=(0.0, 0.0, 6.0))  # 3 m in front, facing away
    away = Camera(intrinsics(40.0, 32, 32), R, t, 32, 32)
    out = avatar.render(np.zeros(3), np.zeros(69), None, [away])
    assert float(out.alpha.max()) == 0.0


@pytest.mark.parametrize("kwargs, error, message", [
    ({"body_pose": np.zeros(68)}, BodyModelError, "body_pose must have shape"),
    ({"global_orient": np.full(3, np.nan)}, BodyModelError, "NaN"),
    ({"betas": np.full(10, np.inf)}, BodyModelError, "NaN or inf"),
    ({"cameras": []}, ValueError, "cameras for 1 poses|camera"),
    ({"cameras": [orbit_camera(0, 0, 0.05, width=16)]}, ValueError, "inside the body"),
    ({"background": (1, 2)}, ValueError, "background"),
    ({"background": np.zeros((2, 3))}, ValueError, r"one per image \(1, 3\)"),
    ({"background": (0, np.nan, 0)}, ValueError, "background"),
    ({"background": "white"}, ValueError, "RGB triple"),
])
def test_bad_render_inputs(avatar, kwargs, error, message):
    args = {"global_orient": np.zeros(3), "body_pose": np.zeros(69), "betas": None,
            "cameras": [orbit_camera(0, 0, 3.0, width=16)], "background": None} | kwargs
    with pytest.raises(error, match=message):
        avatar.render(args["global_orient"], args["body_pose"], args["betas"], args["cameras"],
                      background=args["background"])


def test_zero_size_image_is_rejected():
    with pytest.raises(ValueError, match="image size must be positive"):
        Camera(intrinsics(40.0, 32, 32), np.eye(3), np.array([0.0, 0.0, 3.0]), 0, 32)
    with pytest.raises(ValueError, match="must be positive"):
        orbit_camera(0, 0, 3.0, width=0)


def test_bad_avatar_files(tmp_path, avatar):
    with pytest.raises(AvatarError, match="not found"):
        load_avatar(tmp_path / "missing.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(DEFAULT_AVATAR_PATH.read_bytes()[:1000])
    with pytest.raises(AvatarError, match="corrupt"):
        load_avatar(corrupt)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(AvatarError, match="not a PoseGen avatar"):
        load_avatar(foreign)
    other_body = tmp_path / "other.pt"
    save_avatar(other_body, avatar)
    state = torch.load(other_body, weights_only=True)
    state["body_identifier"] = "SMPL_NEUTRAL-6890v-0123456789"
    torch.save(state, other_body)
    with pytest.raises(AvatarError, match="fitted on body"):
        load_avatar(other_body)


@pytest.fixture(scope="module")
def quick_capture(tmp_path_factory):
    out = tmp_path_factory.mktemp("capture") / "quick"
    subprocess.run([sys.executable, str(ROOT / "train" / "make_capture.py"), "--quick", "--out", str(out)],
                   check=True, capture_output=True)
    return out


def test_fitting_reduces_the_loss(quick_capture):
    capture = load_capture(quick_capture)
    body = load_body_model()
    avatar = new_avatar(body, voxel_size=0.02, background=capture.background)
    bank = build_ray_bank(avatar, capture, capture.splits["train_frames"], capture.splits["train_cameras"])
    optimizer = torch.optim.Adam([avatar.field.density, avatar.field.colour], lr=0.1)
    generator = torch.Generator().manual_seed(0)
    bg = torch.ones(3)
    losses = []
    for _ in range(40):
        rays, rgb, alpha = bank.batch(torch.randint(len(bank), (512,), generator=generator))
        loss = photometric_loss(avatar.field, rays, rgb, alpha, bg, 8, generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])


def test_fit_script_quick_writes_loadable_avatar_and_resumes(quick_capture, tmp_path):
    out = tmp_path / "avatar.pt"
    cmd = [sys.executable, str(ROOT / "train" / "fit_avatar.py"), "--capture", str(quick_capture), "--out", str(out),
           "--quick", "--voxel", "0.02"]
    subprocess.run(cmd, check=True, capture_output=True)
    avatar = load_avatar(out)
    rendered = avatar.render(np.zeros(3), np.zeros(69), None, [orbit_camera(0, 0, 3.4, width=16)])
    assert rendered.rgb.shape == (1, 16, 16, 3)
    # An interrupted run leaves OUT.ckpt behind; the next run resumes from it.
    save_avatar(out.with_name(out.name + ".ckpt"), avatar, extra={"step": 50})
    resumed = subprocess.run(cmd, check=True, capture_output=True, text=True)
    assert "resuming" in resumed.stdout and "at step 50" in resumed.stdout
    assert not out.with_name(out.name + ".ckpt").exists()
    bad = subprocess.run(cmd[:3] + [str(tmp_path / "nope")] + cmd[4:], capture_output=True, text=True)
    assert bad.returncode != 0 and "nope" in bad.stderr and "Traceback" not in bad.stderr


def _packed_weights_reference(t_starts, t_ends, sigmas, ray_indices=None, n_rays=None, **_):
    """nerfacc's packed weights in plain torch (its own packed path needs CUDA kernels)."""
    tau = sigmas * (t_ends - t_starts)
    cum = torch.cumsum(tau, 0)
    ray_start = torch.zeros(n_rays, dtype=torch.long).scatter_reduce(
        0, ray_indices, torch.arange(len(tau)), reduce="amin", include_self=False)
    before = (cum - tau) - (cum - tau)[ray_start[ray_indices]]
    alphas = 1 - torch.exp(-tau)
    return torch.exp(-before) * alphas, torch.exp(-before), alphas


def test_packed_path_matches_batched_path(avatar, monkeypatch):
    """Packed compositing (opt-in, CUDA) must give the batched result; without its kernels it is refused."""
    from posegen_env.render.avatar import renderer as renderer_module

    poses = UniformPoseSampler().sample(2, np.random.default_rng(5))
    cams = [capture_camera(az, 10, avatar, width=40) for az in (45, 250)]
    _, hits, _, _ = avatar.cast(poses["global_orient"], poses["body_pose"], poses["betas"], None, cams)
    rays = renderer_module.RayHits.concat(hits)
    dense = renderer_module.march(avatar.field, rays, avatar.num_samples)
    if not torch.cuda.is_available():
        assert not renderer_module._nerfacc_cuda()
    monkeypatch.setattr(renderer_module, "_nerfacc_cuda", lambda: False)
    with pytest.raises(ValueError, match="packed marching needs nerfacc's CUDA kernels"):
        renderer_module.march(avatar.field, rays, avatar.num_samples, packed=True)
    monkeypatch.setattr(renderer_module, "_nerfacc_cuda", lambda: True)
    monkeypatch.setattr(renderer_module.nerfacc, "render_weight_from_density", _packed_weights_reference)
    packed = renderer_module.march(avatar.field, rays, avatar.num_samples, packed=True)
    assert torch.allclose(dense[1], packed[1], atol=1e-3)
    assert torch.allclose(dense[0], packed[0], atol=2e-3)  # the batched path skips colour below 1e-4 weight


def test_second_band_benchmark_compares_both_ways(avatar, capsys):
    """The benchmark's nerfacc ``prefix_trans`` variant composites what ``march`` does (up to the colour cutoff)."""
    import render as benchmark

    hits = benchmark.crop_workload(avatar, 2, 16)
    with torch.no_grad():
        by_hand = benchmark.march(avatar.field, hits, avatar.num_samples)
        by_nerfacc = benchmark.march_prefix_trans(avatar.field, hits, avatar.num_samples)
    assert int(hits.has_second.sum()) > 0
    assert torch.allclose(by_hand[1], by_nerfacc[1], atol=1e-6)
    assert torch.allclose(by_hand[0], by_nerfacc[0], atol=2e-3)
    benchmark.second_band(avatar, n=2, size=16, repeats=1)
    assert "nerfacc / by hand" in capsys.readouterr().out
