"""The one camera convention: OpenCV axes, orbit angles, crops."""

import numpy as np
import pytest

from posegen_env.render.camera import Camera, focal_from_fov, intrinsics, look_at, orbit_camera, person_crop_box


def test_front_camera_sees_person_left_on_image_right_and_up_as_up():
    cam = orbit_camera(0, 0, 3.0, width=101)
    centre, left_hand, head = cam.project(np.array([[0, 0, 0], [0.5, 0, 0], [0, 0.5, 0]]))
    assert np.allclose(centre, [50, 50])
    assert left_hand[0] > 50 and np.isclose(left_hand[1], 50)  # +x (person's left) -> image right
    assert head[1] < 50  # y up -> smaller row index
    assert np.allclose(cam.center, [0, 0, 3])


@pytest.mark.parametrize("azimuth, elevation, expected", [(90, 0, [3, 0, 0]), (180, 0, [0, 0, -3]),
                                                          (0, 90, [0, 3, 0]), (0, -30, [0, -1.5, 2.598])])
def test_orbit_positions(azimuth, elevation, expected):
    cam = orbit_camera(azimuth, elevation, 3.0)
    assert np.allclose(cam.center, expected, atol=1e-3)
    R = cam.R
    assert np.allclose(R @ R.T, np.eye(3)) and np.isclose(np.linalg.det(R), 1.0)
    assert np.allclose(cam.project(np.zeros(3)), [(cam.width - 1) / 2] * 2)  # looks at the target


def test_roll_rotates_image_clockwise():
    upright = orbit_camera(0, 0, 3.0, width=101)
    rolled = orbit_camera(0, 0, 3.0, roll_deg=90, width=101)
    head_up, head_rolled = upright.project(np.array([0, 0.5, 0])), rolled.project(np.array([0, 0.5, 0]))
    assert head_up[1] < 50 and head_rolled[0] > 50 and np.isclose(head_rolled[1], 50)


def test_points_behind_camera_project_to_nan():
    cam = orbit_camera(0, 0, 3.0)
    assert np.isnan(cam.project(np.array([0, 0, 5.0]))).all()


def test_rays_pass_through_their_pixels():
    cam = orbit_camera(30, 20, 3.0, width=16, height=12)
    origins, dirs = cam.rays()
    assert origins.shape == dirs.shape == (12 * 16, 3)
    points = origins + 2.5 * dirs
    uv = cam.project(points).reshape(12, 16, 2)
    assert np.allclose(uv[3, 5], [5, 3]) and np.allclose(uv[11, 15], [15, 11])
    sub_o, sub_d = cam.rays(supersample=2)
    assert sub_d.shape == (12 * 16 * 4, 3)
    assert np.allclose(cam.project(sub_o[:1] + 2.5 * sub_d[:1]), [[-0.25, -0.25]])


def test_crop_camera_renders_the_crop():
    cam = orbit_camera(0, 0, 3.0, width=200)
    points = np.random.default_rng(0).uniform(-0.5, 0.5, (20, 3))
    uv = cam.project(points)
    crop = cam.crop((120.0, 80.0), 50.0, 100)
    assert np.allclose(crop.project(points), (uv - np.array([120 - 25, 80 - 25]) - 0.5) * 2 + 0.5)
    assert crop.width == crop.height == 100


def test_person_crop_box_covers_joints_and_jitters():
    joints = np.array([[10, 20], [30, 100], [50, 60.0]])
    centre, side = person_crop_box(joints, scale=1.2)
    assert np.allclose(centre, [30, 60]) and np.isclose(side, 96)
    c2, s2 = person_crop_box(joints, scale=1.2, jitter=0.1, rng=np.random.default_rng(1))
    assert not np.allclose(c2, centre) and abs(s2 - side) <= 0.1 * side + 1e-9
    with pytest.raises(ValueError, match="no joint"):
        person_crop_box(np.full((3, 2), np.nan))


def test_bad_cameras_are_rejected():
    with pytest.raises(ValueError, match="NaN"):
        Camera(intrinsics(100, 64, 64), np.eye(3), np.array([0, 0, np.nan]), 64, 64)
    with pytest.raises(ValueError, match="K \\(3,3\\)"):
        Camera(np.eye(2), np.eye(3), np.zeros(3), 64, 64)
    with pytest.raises(ValueError, match="image size"):
        Camera(intrinsics(100, 64, 64), np.eye(3), np.zeros(3), 0, 64)
    with pytest.raises(ValueError, match="coincides"):
        look_at([0, 0, 0], [0, 0, 0])
    with pytest.raises(ValueError, match="field of view"):
        focal_from_fov(180, 64)
    with pytest.raises(ValueError, match="distance"):
        orbit_camera(0, 0, 0.0)
