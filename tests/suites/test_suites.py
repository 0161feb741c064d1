"""The test suites are deterministic, cached, and drawn from distributions no sampler uses."""

import numpy as np
import pytest

from posegen_env.body.pose_library import library_array, mirror_pose
from posegen_env.render.avatar import load_avatar
from posegen_env.suites.heldout_poses import heldout_array
from posegen_env.suites.suites import NOVEL_VIEW_SETUPS, SUITES, _novel_cameras, build_suite, load_suite, suite_path


@pytest.fixture(scope="module")
def avatar():
    return load_avatar()


def test_suites_are_deterministic_and_labelled(avatar):
    a = build_suite("hard", avatar, num_samples=6)
    b = build_suite("hard", avatar, num_samples=6)
    assert np.array_equal(a.images, b.images) and np.allclose(a.joints3d, b.joints3d)
    assert a.images.shape == (6, 64, 64, 3) and np.allclose(a.joints3d[:, 0], 0)
    # Joints project inside the crop for nearly all samples (the crop is built around them).
    assert a.visible.mean() > 0.95


def nearest(body_pose: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Each pose's largest joint-angle gap to the closest candidate."""
    return np.abs(body_pose[:, None] - candidates[None]).max(-1).min(-1)


def heldout_and_mirrored() -> np.ndarray:
    _, heldout = heldout_array()
    _, mirrored = mirror_pose(np.zeros((len(heldout), 3)), heldout)
    return np.concatenate([heldout, mirrored])


def test_novel_poses_come_from_the_heldout_set(avatar):
    pose = build_suite("novel-poses", avatar, num_samples=8).pose[:, 3:]
    assert (nearest(pose, heldout_and_mirrored()) < np.deg2rad(15)).all()  # held-out pose + a little noise
    assert (nearest(pose, library_array()[1]) > np.deg2rad(20)).all()


def test_novel_views_avoid_the_base_camera_band():
    cams = _novel_cameras(600, np.random.default_rng(0))
    near_frontal_eye_level = (np.abs(((cams.azimuth_deg + 180) % 360) - 180) <= 25) & \
        (cams.elevation_deg >= -5) & (cams.elevation_deg <= 10) & (cams.distance >= 2.5) & (cams.distance <= 3.5) & \
        (cams.fov_deg >= 40) & (cams.fov_deg <= 50)
    assert not near_frontal_eye_level.any()
    assert len(NOVEL_VIEW_SETUPS) >= 5


def test_load_suite_caches_in_dataset_format(avatar, tmp_path, monkeypatch):
    monkeypatch.setenv("POSEGEN_CACHE", str(tmp_path))
    first = load_suite("in-distribution", avatar, num_samples=4)
    assert (first.root / "dataset.json").is_file() and str(first.root).startswith(str(tmp_path))
    again = load_suite("in-distribution", avatar, num_samples=4)
    assert np.array_equal(first.load_image(0), again.load_image(0))
    with pytest.raises(ValueError, match="unknown suite"):
        build_suite("easy", avatar)
    assert SUITES == ("in-distribution", "novel-views", "novel-poses", "hard")


def test_validation_split_is_another_draw_of_the_same_suite(avatar, tmp_path, monkeypatch):
    monkeypatch.setenv("POSEGEN_CACHE", str(tmp_path))
    test = build_suite("novel-poses", avatar, num_samples=8)
    val = load_suite("novel-poses", avatar, num_samples=8, split="validation")
    assert val.meta["split"] == "validation" and val.root == suite_path("novel-poses", avatar, 8, split="validation")
    assert suite_path("novel-poses", avatar, 8) != val.root
    assert not np.allclose(val.joints3d, test.joints3d)  # other samples ...
    np.testing.assert_allclose(val.joints3d, build_suite("novel-poses", avatar, 8, split="validation").joints3d,
                               atol=1e-6)  # ... just as reproducible ...
    # ... from the same generator
    assert (nearest(val.arrays["pose"][:, 3:], heldout_and_mirrored()) < np.deg2rad(15)).all()
    with pytest.raises(ValueError, match="unknown split 'train'"):
        build_suite("hard", avatar, split="train")
