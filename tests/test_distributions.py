"""Pose and camera samplers: reproducibility, ranges, coverage and input checks."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from posegen_env.body.pose_library import library_array, mirror_pose
from posegen_env.body.pose_space import BODY_POSE_HIGH, BODY_POSE_LOW, is_within_limits
from posegen_env.distributions import (
    BaseCameraSampler,
    BasePoseSampler,
    CameraParams,
    UniformCameraSampler,
    UniformPoseSampler,
    as_rng,
)
from posegen_env.render.camera import orbit_position

POSE_SAMPLERS = [BasePoseSampler(), UniformPoseSampler()]
CAMERA_SAMPLERS = [BaseCameraSampler(), UniformCameraSampler()]


def camera_arrays(c: CameraParams) -> dict:
    return {**c.as_dict(), "fov_deg": c.fov_deg}


# ------------------------------------------------------------------------------------------- poses


@pytest.mark.parametrize("sampler", POSE_SAMPLERS, ids=lambda s: type(s).__name__)
def test_pose_samples_have_shapes_and_stay_within_limits(sampler):
    out = sampler.sample(500, 0)
    assert out["global_orient"].shape == (500, 3)
    assert out["body_pose"].shape == (500, 69)
    assert out["betas"].shape == (500, 10)
    assert all(np.isfinite(v).all() for v in out.values())
    assert is_within_limits(out["body_pose"]).all()
    empty = sampler.sample(0, 0)
    assert empty["body_pose"].shape == (0, 69) and empty["global_orient"].shape == (0, 3)


@pytest.mark.parametrize("sampler", POSE_SAMPLERS + CAMERA_SAMPLERS, ids=lambda s: type(s).__name__)
def test_samplers_are_reproducible_with_a_seed(sampler):
    def arrays(x):
        return camera_arrays(x) if isinstance(x, CameraParams) else x

    a, b, c = (arrays(sampler.sample(50, s)) for s in (7, 7, 8))
    d = arrays(sampler.sample(50, np.random.default_rng(7)))
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
        np.testing.assert_array_equal(a[key], d[key])
    assert any(not np.array_equal(a[k], c[k]) for k in a), "different seeds must give different samples"


def test_base_sampler_without_variation_returns_library_poses():
    plain = BasePoseSampler(noise_deg=0, p_mirror=0, p_interpolate=0, yaw_jitter_deg=0)
    out = plain.sample(100, 3)
    go, bp = library_array()
    np.testing.assert_allclose(out["body_pose"], bp[out["pose_index"]], atol=1e-9)
    np.testing.assert_allclose(out["global_orient"], go[out["pose_index"]], atol=1e-9)
    assert (out["partner_index"] == -1).all() and not out["mirrored"].any()
    assert len(np.unique(out["pose_index"])) > 25, "poses must be drawn from the whole library"

    mirrored = BasePoseSampler(noise_deg=0, p_mirror=1, p_interpolate=0, yaw_jitter_deg=0).sample(50, 3)
    mgo, mbp = mirror_pose(go, bp)
    assert mirrored["mirrored"].all()
    np.testing.assert_allclose(mirrored["body_pose"], mbp[mirrored["pose_index"]], atol=1e-9)


def test_base_sampler_is_narrow_around_the_library():
    out = BasePoseSampler().sample(2000, 4)
    go, bp = library_array()
    both = np.concatenate([bp, mirror_pose(go, bp)[1]])
    nearest = np.min(np.abs(out["body_pose"][:, None] - both[None]).max(axis=-1), axis=1)
    # Noise (5 deg) and blends of at most half-way keep every sample close to some library pose.
    assert np.median(np.rad2deg(nearest)) < 40
    assert 0.4 < out["mirrored"].mean() < 0.6 and 0.35 < (out["partner_index"] >= 0).mean() < 0.6
    assert 0.45 < out["betas"].std() < 0.55


def test_base_sampler_turns_the_body_only_by_a_small_yaw():
    out = BasePoseSampler(p_interpolate=0).sample(1000, 11)
    go = library_array()[0][out["pose_index"]]
    go = np.where(out["mirrored"][:, None], mirror_pose(go, np.zeros((len(go), 69)))[0], go)
    turn = (Rotation.from_rotvec(out["global_orient"]) * Rotation.from_rotvec(go).inv()).as_rotvec(degrees=True)
    np.testing.assert_allclose(turn[:, [0, 2]], 0.0, atol=1e-6)
    assert np.abs(turn[:, 1]).max() <= 15.0 + 1e-6 and np.abs(turn[:, 1]).max() > 14.0


def test_base_sampler_noise_has_the_requested_spread():
    out = BasePoseSampler(noise_deg=5, p_mirror=0, p_interpolate=0, yaw_jitter_deg=0).sample(2000, 5)
    delta = out["body_pose"] - library_array()[1][out["pose_index"]]
    unclipped = (out["body_pose"] > BODY_POSE_LOW + 1e-9) & (out["body_pose"] < BODY_POSE_HIGH - 1e-9)
    assert np.rad2deg(delta[unclipped].std()) == pytest.approx(5.0, rel=0.1)


def test_uniform_pose_sampler_covers_the_limits():
    out = UniformPoseSampler().sample(20000, 6)
    span = BODY_POSE_HIGH - BODY_POSE_LOW
    np.testing.assert_array_less(out["body_pose"].min(0) - BODY_POSE_LOW, 0.01 * span)
    np.testing.assert_array_less(BODY_POSE_HIGH - out["body_pose"].max(0), 0.01 * span)
    go = out["global_orient"]
    assert np.allclose(go[:, [0, 2]], 0.0), "uniform bodies stay upright"
    assert go[:, 1].min() < -np.pi + 0.05 and go[:, 1].max() > np.pi - 0.05
    assert 0.95 < out["betas"].std() < 1.05


# ----------------------------------------------------------------------------------------- cameras


def test_base_camera_stays_in_its_narrow_band():
    cams = BaseCameraSampler().sample(5000, 9)
    assert len(cams) == 5000
    assert np.abs(cams.azimuth_deg).max() <= 25 and np.abs(cams.azimuth_deg).max() > 24
    assert cams.elevation_deg.min() >= -5 and cams.elevation_deg.max() <= 10
    assert cams.distance.min() >= 2.5 and cams.distance.max() <= 3.5
    assert np.abs(cams.roll_deg).max() <= 3
    assert cams.fov_deg.min() >= 40 - 1e-9 and cams.fov_deg.max() <= 50 + 1e-9


def test_uniform_camera_covers_the_sphere_of_views():
    cams = camera_arrays(UniformCameraSampler().sample(20000, 10))
    bounds = {"azimuth_deg": (0, 360), "elevation_deg": (-30, 70), "distance": (1.8, 6.0),
              "roll_deg": (-20, 20), "fov_deg": (25, 70)}
    for key, (lo, hi) in bounds.items():
        tol = 0.01 * (hi - lo)
        assert lo - 1e-9 <= cams[key].min() < lo + tol, key
        assert hi - tol < cams[key].max() <= hi + 1e-9, key
    behind = np.cos(np.deg2rad(cams["azimuth_deg"])) < -0.9
    assert 0.05 < behind.mean() < 0.2, "views from behind must be common"


def test_camera_params_build_orbit_cameras():
    params = CameraParams(azimuth_deg=[0.0, 90.0], elevation_deg=[0.0, 30.0], distance=[3.0, 2.0],
                          roll_deg=[0.0, 0.0], focal_px=[300.0, 300.0])
    target = np.array([0.1, 0.9, -0.2])
    front = params.to_camera(0, target, width=128)
    np.testing.assert_allclose(front.center, target + [0.0, 0.0, 3.0], atol=1e-9)
    np.testing.assert_allclose(front.project(target), [63.5, 63.5], atol=1e-9)
    assert front.K[0, 0] == pytest.approx(150.0), "focal is rescaled from the 256 px reference width"
    side = params.to_cameras(target, width=64)[1]
    np.testing.assert_allclose(side.center, orbit_position(90.0, 30.0, 2.0, target), atol=1e-9)
    assert side.center[0] > target[0] + 1.0, "azimuth 90 is the person's left (+x)"
    assert len(params[1]) == 1 and params[1].azimuth_deg[0] == 90.0
    np.testing.assert_allclose(params.fov_deg, 2 * np.rad2deg(np.arctan(128 / 300.0)))


# ------------------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize("sampler", POSE_SAMPLERS + CAMERA_SAMPLERS, ids=lambda s: type(s).__name__)
def test_samplers_reject_bad_arguments(sampler):
    with pytest.raises(ValueError, match="non-negative int"):
        sampler.sample(-1, 0)
    with pytest.raises(ValueError, match="non-negative int"):
        sampler.sample(2.5, 0)
    with pytest.raises(ValueError, match="rng must be"):
        sampler.sample(3, np.random.RandomState(0))


def test_sampler_settings_are_checked():
    with pytest.raises(ValueError, match="p_mirror"):
        BasePoseSampler(p_mirror=1.5)
    with pytest.raises(ValueError, match="noise_deg"):
        BasePoseSampler(noise_deg=-1)
    with pytest.raises(ValueError, match="low <= high"):
        BaseCameraSampler(azimuth_deg=(10, -10))
    with pytest.raises(ValueError, match="distance"):
        UniformCameraSampler(distance=(0.0, 5.0))
    with pytest.raises(ValueError, match="elevation"):
        UniformCameraSampler(elevation_deg=(-30, 120))
    assert isinstance(as_rng(None), np.random.Generator)


def test_camera_params_reject_bad_values():
    good = dict(azimuth_deg=[0.0], elevation_deg=[0.0], distance=[3.0], roll_deg=[0.0], focal_px=[300.0])
    with pytest.raises(ValueError, match="one length"):
        CameraParams(**{**good, "distance": [3.0, 2.0]})
    with pytest.raises(ValueError, match="NaN"):
        CameraParams(**{**good, "roll_deg": [np.nan]})
    with pytest.raises(ValueError, match="positive"):
        CameraParams(**{**good, "focal_px": [-1.0]})
    params = CameraParams(**good)
    with pytest.raises(ValueError, match="targets must have shape"):
        params.to_cameras(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="target"):
        params.to_camera(0, (0.0, np.nan, 0.0))
    with pytest.raises(IndexError):
        params.to_camera(3)
