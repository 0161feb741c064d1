"""The torch shell caster against Embree, and the batched cameras against the single ``Camera``."""

import numpy as np
import pytest
import torch

from posegen_env.distributions import UniformPoseSampler
from posegen_env.envs.action_space import decode, uniform_actions
from posegen_env.render.avatar import load_avatar
from posegen_env.render.avatar.shell_cast import cast_shells, resolve_caster
from posegen_env.render.backgrounds import Backgrounds
from posegen_env.render.camera import REFERENCE_WIDTH, person_crop_box
from posegen_env.render.cameras import Cameras, crop_jitter, orbit_cameras, person_crop_boxes
from posegen_env.render.crops import render_crops
from tests.render.test_avatar import varied_views


@pytest.fixture(scope="module")
def avatar():
    return load_avatar()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = ((a.astype(np.float64) - b) ** 2).mean()
    return float(10 * np.log10(255.0**2 / max(mse, 1e-10)))


def cast_both(avatar, poses, cameras):
    bodies = avatar.pose(poses["global_orient"], poses["body_pose"], poses["betas"])
    batch = Cameras.from_list(cameras, avatar.device)
    index = torch.arange(len(cameras), device=avatar.device)
    return [avatar.proxy.cast_rays(bodies, index, batch, caster) for caster in ("embree", "torch")]


def test_the_torch_caster_finds_the_rays_embree_finds(avatar):
    """Every pixel hits or misses in both (far and near cameras, and a shell reaching behind its camera);
    where both hit, band 1 starts at the same distance and band 2 exists for the same rays (a ray
    through a triangle's edge may count as grazing in one and not in the other: at most 0.1 %)."""
    poses = UniformPoseSampler().sample(8, np.random.default_rng(3))
    (embree, e_image), (mine, t_image) = cast_both(avatar, poses, varied_views(avatar, poses, width=40))
    keys = [(image * 1600 + hits.pixel).cpu().numpy() for image, hits in ((e_image, embree), (t_image, mine))]
    assert len(keys[0]) > 1000 and set(keys[0].tolist()) == set(keys[1].tolist())
    _, a, b = np.intersect1d(*keys, return_indices=True)
    t0, t1 = embree.t_near.cpu().numpy()[a], mine.t_near.cpu().numpy()[b]
    np.testing.assert_allclose(t1[:, 0], t0[:, 0], atol=1e-3)
    same_second = embree.has_second.cpu().numpy()[a] == mine.has_second.cpu().numpy()[b]
    assert same_second.mean() >= 0.999
    both = same_second & embree.has_second.cpu().numpy()[a]
    assert np.median(np.abs(t1[both, 1] - t0[both, 1])) < 1e-4
    np.testing.assert_allclose(mine.direction.cpu().numpy()[b], embree.direction.cpu().numpy()[a], atol=1e-6)


def test_crops_of_both_casters_are_the_same_pictures(avatar):
    """The same samples through the whole crop pipeline: identical labels, images >= 40 dB apart."""
    n = 12
    s = decode(uniform_actions(n, np.random.default_rng(4)))
    poses = {"global_orient": s.global_orient, "body_pose": s.body_pose, "betas": s.betas}
    out = []
    for caster in ("embree", "torch"):
        avatar.caster = caster
        out.append(render_crops(avatar, poses, s.cameras, crop_size=48, background=Backgrounds(),
                                rng=[np.random.default_rng(i) for i in range(n)]))
    avatar.caster = "auto"
    for field in ("joints3d", "joints2d", "visible", "K", "R", "t", "background"):
        np.testing.assert_array_equal(getattr(out[0], field), getattr(out[1], field))
    assert psnr(out[0].images, out[1].images) >= 40.0


def test_no_cameras_and_unknown_casters(avatar):
    shells = torch.zeros(1, 3, 3)
    empty = Cameras(*(torch.zeros(0, 3, 3, dtype=torch.float64) for _ in range(2)),
                    torch.zeros(0, 3, dtype=torch.float64), 8, 8)
    hits = cast_shells(shells, torch.tensor([[0, 1, 2]]), torch.zeros(1, 1, 3), empty, torch.zeros(0, dtype=torch.long),
                       "torch")
    assert len(hits.image) == 0
    with pytest.raises(ValueError, match="caster must be one of"):
        resolve_caster("optix", torch.device("cpu"))
    assert resolve_caster("auto", torch.device("cpu")) == "embree"
    assert resolve_caster("auto", torch.device("cuda")) == "torch"


def test_batched_cameras_equal_the_single_camera(avatar):
    """Orbit placement, crop boxes (the same jitter draws), crops, projection and pixel rays."""
    n = 6
    s = decode(uniform_actions(n, np.random.default_rng(5)))
    joints = avatar.posed_joints(s.global_orient, s.body_pose, s.betas).double()
    full = orbit_cameras(s.cameras, joints[:, 0], REFERENCE_WIDTH)
    shifts = crop_jitter([np.random.default_rng(i) for i in range(n)], 0.05)
    centre, side = person_crop_boxes(full.project(joints), 1.25, torch.as_tensor(shifts))
    crops = full.crop(centre, side, 32)
    for i, (f, c) in enumerate(zip(full.to_list(), crops.to_list(), strict=True)):
        single = s.cameras.to_camera(i, target=joints[i, 0].numpy(), width=REFERENCE_WIDTH)
        np.testing.assert_allclose(f.K, single.K)
        np.testing.assert_allclose(f.R, single.R, atol=1e-12)
        np.testing.assert_allclose(f.t, single.t, atol=1e-12)
        box = person_crop_box(single.project(joints[i].numpy()), scale=1.25, jitter=0.05,
                              rng=np.random.default_rng(i))
        np.testing.assert_allclose(centre[i].numpy(), box[0], atol=1e-9)
        assert side[i].item() == pytest.approx(box[1])
        expected = single.crop(*box, 32)
        np.testing.assert_allclose(c.K, expected.K, atol=1e-9)
        np.testing.assert_allclose(crops.project(joints)[i].numpy(), expected.project(joints[i].numpy()), atol=1e-9)
        u, v = np.array([0.0, 7.5, 31.0]), np.array([3.0, 16.0, 31.0])
        directions = crops.pixel_directions(torch.full((3,), i), torch.as_tensor(u), torch.as_tensor(v))
        np.testing.assert_allclose(directions.numpy(), expected.pixel_rays(u, v)[1], atol=1e-12)
    np.testing.assert_allclose(crops.centres.numpy(), np.stack([c.center for c in crops.to_list()]))
    with pytest.raises(ValueError, match="no joint projects"):
        person_crop_boxes(torch.full((1, 3, 2), float("nan")), 1.25, torch.zeros(1, 3))
    with pytest.raises(ValueError, match="share an image size"):
        Cameras.from_list([crops.to_list()[0], full.to_list()[0]])
