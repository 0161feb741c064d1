"""The ground-truth renderer puts the body where the cameras say and paints a distinguishable person."""

import numpy as np
import pytest

from posegen_env.body.body_model import load_body_model
from posegen_env.body.joints import JOINT_INDEX, NUM_JOINTS
from posegen_env.render.camera import orbit_camera
from posegen_env.render.mesh.renderer import MeshRenderer

J = JOINT_INDEX


@pytest.fixture(scope="module")
def renderer():
    return MeshRenderer(load_body_model(), background=(0, 0, 0), supersample=1)


def walking_pose() -> np.ndarray:
    pose = np.zeros(69)
    for name, rot in {"left_hip": (-30, 0, 0), "right_hip": (20, 0, 0), "left_knee": (40, 0, 0),
                      "left_shoulder": (0, 0, -70), "right_shoulder": (0, 0, 70),
                      "left_elbow": (0, -40, 0), "right_elbow": (0, 30, 0)}.items():
        pose[(J[name] - 1) * 3:(J[name] - 1) * 3 + 3] = np.deg2rad(rot)
    return pose


@pytest.mark.parametrize("azimuth, elevation", [(0, 0), (60, 20), (180, -10), (270, 45)])
def test_projected_joints_fall_inside_silhouette(renderer, azimuth, elevation):
    pose = walking_pose()
    cam = orbit_camera(azimuth, elevation, 3.0, target=(0, 0.0, 0), width=96)
    _, alpha = renderer.render(np.zeros(3), pose, None, None, [cam])
    _, joints = renderer.posed_vertices(np.zeros(3), pose)
    uv = np.round(cam.project(joints[0])).astype(int)
    assert ((uv >= 0) & (uv < 96)).all()
    inside = [alpha[0, max(v - 1, 0):v + 2, max(u - 1, 0):u + 2].max() > 0 for u, v in uv]
    assert sum(inside) == NUM_JOINTS, f"joints outside the silhouette: {np.flatnonzero(~np.array(inside))}"
    # The silhouette is a person, not the whole frame.
    assert 0.03 < alpha.mean() < 0.5


def test_background_and_determinism(renderer):
    cam = orbit_camera(0, 0, 3.0, width=48)
    rgb1, alpha1 = renderer.render(np.zeros(3), np.zeros(69), None, None, [cam])
    rgb2, alpha2 = renderer.render(np.zeros(3), np.zeros(69), None, None, [cam])
    assert np.array_equal(rgb1, rgb2) and np.array_equal(alpha1, alpha2)
    assert (rgb1[0][alpha1[0] == 0] == 0).all()  # black background where nothing is hit
    white = MeshRenderer(renderer.body, background=(255, 255, 255), supersample=1)
    rgb3, _ = white.render(np.zeros(3), np.zeros(69), None, None, [cam])
    assert (rgb3[0][alpha1[0] == 0] == 255).all()
    assert np.array_equal(rgb3[0][alpha1[0] == 1], rgb1[0][alpha1[0] == 1])


def test_views_are_distinguishable(renderer):
    """Front differs from back, and left side from right side, beyond mere silhouette mirroring."""
    rgb, alpha = renderer.render(np.zeros(3), np.zeros(69), None, None,
                                 [orbit_camera(az, 0, 3.0, width=64) for az in (0, 180, 90, 270)])
    front, back, left, right = rgb.astype(float)
    both = (alpha[0] > 0) & (alpha[1][:, ::-1] > 0)
    assert np.abs(front - back[:, ::-1])[both].mean() > 20
    # Side views: only the right side shows the yellow right sleeve.
    def yellow(img):
        r, g, b = img[..., 0], img[..., 1], img[..., 2]
        return int(((r > 80) & (g > 0.6 * r) & (b < 0.35 * r)).sum())

    assert yellow(right) > 15 and yellow(left) < 5
    # Not a flat mannequin: many distinct colours on the body.
    assert len(np.unique(rgb[0][alpha[0] > 0], axis=0)) > 50


def test_supersampling_gives_soft_edges():
    body = load_body_model()
    cam = orbit_camera(0, 0, 3.0, width=48)
    _, alpha = MeshRenderer(body, supersample=3).render(np.zeros(3), np.zeros(69), None, None, [cam])
    fractional = (alpha > 0) & (alpha < 1)
    assert fractional.sum() > 20


def test_bad_settings(renderer):
    with pytest.raises(ValueError, match="background"):
        MeshRenderer(renderer.body, background=(1, 2))
    with pytest.raises(ValueError, match="supersample"):
        MeshRenderer(renderer.body, supersample=0)
    with pytest.raises(ValueError, match="one pose"):
        renderer.render(np.zeros((2, 3)), np.zeros((2, 69)), None, None, [orbit_camera(0, 0, 3.0, width=8)])
