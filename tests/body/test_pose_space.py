"""Joint limits, the key-pose library, mirroring and interpolation."""

import itertools

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from posegen_env.body.joints import JOINT_INDEX, MIRROR_JOINTS, SMPL_JOINT_NAMES
from posegen_env.body.pose_library import (
    KEY_POSES,
    get_pose,
    interpolate_poses,
    library_array,
    mirror_pose,
    pose_from_degrees,
    pose_names,
)
from posegen_env.body.pose_space import (
    BODY_JOINT_NAMES,
    BODY_POSE_HIGH,
    BODY_POSE_LOW,
    JOINT_LIMITS_DEG,
    clip_to_limits,
    is_within_limits,
    limit_violation,
    mirror_limits,
)


def body_index(name: str) -> int:
    return BODY_JOINT_NAMES.index(name)


def set_joint(body_pose: np.ndarray, name: str, degrees) -> np.ndarray:
    out = np.array(body_pose, dtype=np.float64)
    i = 3 * body_index(name)
    out[..., i:i + 3] = np.deg2rad(degrees)
    return out


# ------------------------------------------------------------------------------------------ limits


def test_limit_table_shape_order_and_ranges():
    assert JOINT_LIMITS_DEG.shape == (23, 3, 2)
    assert BODY_JOINT_NAMES == SMPL_JOINT_NAMES[1:]
    assert (JOINT_LIMITS_DEG[..., 0] < JOINT_LIMITS_DEG[..., 1]).all()
    assert (JOINT_LIMITS_DEG[..., 0] <= 0).all() and (JOINT_LIMITS_DEG[..., 1] >= 0).all(), "rest must be inside"
    # Spot checks of the table's signs: knees bend +x, left elbow flexes -y, right elbow +y.
    np.testing.assert_array_equal(JOINT_LIMITS_DEG[body_index("left_knee"), 0], [-5, 160])
    np.testing.assert_array_equal(JOINT_LIMITS_DEG[body_index("left_elbow"), 1], [-150, 0])
    np.testing.assert_array_equal(JOINT_LIMITS_DEG[body_index("right_elbow"), 1], [0, 150])
    np.testing.assert_array_equal(JOINT_LIMITS_DEG[body_index("left_shoulder")], [[-60, 60], [-135, 45], [-135, 90]])
    np.testing.assert_array_equal(JOINT_LIMITS_DEG[body_index("left_hand")], [[-15, 15]] * 3)


def test_limit_table_is_mirror_consistent():
    np.testing.assert_array_equal(mirror_limits(JOINT_LIMITS_DEG), JOINT_LIMITS_DEG)
    for left in (n for n in BODY_JOINT_NAMES if n.startswith("left_")):
        lo_l, lo_r = JOINT_LIMITS_DEG[body_index(left)], JOINT_LIMITS_DEG[body_index(left.replace("left", "right"))]
        np.testing.assert_array_equal(lo_l[0], lo_r[0], err_msg=f"{left} x")
        np.testing.assert_array_equal(lo_l[1:], -lo_r[1:, ::-1], err_msg=f"{left} y/z")
    # The check itself can fail: an asymmetric table is reported.
    broken = JOINT_LIMITS_DEG.copy()
    broken[body_index("left_shoulder"), 2] = [-100, 90]
    assert not np.array_equal(mirror_limits(broken), broken)


def test_limit_violation_inside_is_zero():
    assert limit_violation(np.zeros(69)) == 0.0
    inside = np.random.default_rng(0).uniform(BODY_POSE_LOW, BODY_POSE_HIGH, size=(4, 5, 69))
    assert limit_violation(inside).shape == (4, 5)
    assert (limit_violation(inside) == 0).all() and is_within_limits(inside).all()
    assert is_within_limits(np.zeros(69)) is True


def test_limit_violation_matches_hand_computed_distance():
    pose = set_joint(np.zeros(69), "left_knee", (170, 0, 0))  # 10 deg past the 160 deg max
    pose = set_joint(pose, "right_elbow", (0, -20, 0))  # 20 deg below the 0 deg min
    pose = set_joint(pose, "spine1", (50, 0, 0))  # inside: contributes nothing
    assert limit_violation(pose) == pytest.approx(np.deg2rad(30.0))
    assert not is_within_limits(pose)
    batch = np.stack([np.zeros(69), pose])
    np.testing.assert_allclose(limit_violation(batch), [0.0, np.deg2rad(30.0)])


def test_clip_to_limits_projects_into_the_box():
    rng = np.random.default_rng(1)
    wild = rng.normal(0, 3.0, size=(100, 69))
    clipped = clip_to_limits(wild)
    assert is_within_limits(clipped).all() and not is_within_limits(wild).any()
    inside = ~((wild < BODY_POSE_LOW) | (wild > BODY_POSE_HIGH))
    np.testing.assert_array_equal(clipped[inside], wild[inside])
    np.testing.assert_array_equal(clip_to_limits(clipped), clipped)


@pytest.mark.parametrize("fn", [limit_violation, clip_to_limits, is_within_limits])
def test_limit_functions_reject_bad_input(fn):
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 69\)"):
        fn(np.zeros(72))
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 69\)"):
        fn(0.0)
    bad = np.zeros((2, 69))
    bad[1, 5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fn(bad)


# ----------------------------------------------------------------------------------------- library


def test_library_size_names_and_shapes():
    names = pose_names()
    assert len(names) >= 30 and len(set(names)) == len(names)
    assert names[0] == "rest"
    go, bp = library_array()
    assert go.shape == (len(names), 3) and bp.shape == (len(names), 69)
    for name in names:
        g, b = get_pose(name)
        assert g.shape == (3,) and b.shape == (69,) and np.isfinite(b).all()


def test_every_library_pose_is_within_limits():
    go, bp = library_array()
    bad = [n for n, v in zip(pose_names(), limit_violation(bp), strict=True) if v > 0]
    assert not bad, f"library poses outside the joint limits: {bad}"


def test_library_poses_are_pairwise_distinct():
    """Every pair differs by >= 10 deg at some joint: more than the samplers' 5 deg noise."""
    go, bp = library_array()
    rots = np.concatenate([go[:, None], bp.reshape(-1, 23, 3)], axis=1)
    names = pose_names()
    for i, j in itertools.combinations(range(len(names)), 2):
        angle = (Rotation.from_rotvec(rots[i]).inv() * Rotation.from_rotvec(rots[j])).magnitude()
        assert np.rad2deg(angle.max()) >= 10.0, f"{names[i]} and {names[j]} are nearly the same pose"


def test_library_is_read_only_and_get_pose_copies():
    g, b = get_pose("rest")
    b[:] = 1.0
    assert not np.allclose(KEY_POSES["rest"][1], 1.0)
    with pytest.raises(ValueError):
        KEY_POSES["rest"][1][0] = 1.0
    with pytest.raises(KeyError, match="pose_names"):
        get_pose("moonwalk")


def test_pose_from_degrees_places_joints_and_rejects_unknown_names():
    go, bp = pose_from_degrees({"global_orient": (-90, 0, 0), "right_knee": (45, 0, 0)})
    np.testing.assert_allclose(go, np.deg2rad([-90, 0, 0]))
    i = 3 * body_index("right_knee")
    np.testing.assert_allclose(bp[i:i + 3], np.deg2rad([45, 0, 0]))
    assert np.count_nonzero(bp) == 1
    with pytest.raises(ValueError, match="unknown joint 'left_knees'"):
        pose_from_degrees({"left_knees": (1, 2, 3)})
    with pytest.raises(ValueError, match="3 finite"):
        pose_from_degrees({"left_knee": (1, 2)})


# --------------------------------------------------------------------------------------- mirroring


def test_mirror_swaps_partners_and_flips_y_z():
    bp = set_joint(np.zeros(69), "left_shoulder", (10, 20, 30))
    bp = set_joint(bp, "right_shoulder", (1, 2, 3))
    bp = set_joint(bp, "spine2", (4, 5, 6))
    go, mbp = mirror_pose(np.deg2rad([7, 8, 9]), bp)
    np.testing.assert_allclose(go, np.deg2rad([7, -8, -9]))
    joints = np.rad2deg(mbp.reshape(23, 3))
    np.testing.assert_allclose(joints[body_index("right_shoulder")], [10, -20, -30])
    np.testing.assert_allclose(joints[body_index("left_shoulder")], [1, -2, -3])
    np.testing.assert_allclose(joints[body_index("spine2")], [4, -5, -6])
    assert all(MIRROR_JOINTS[MIRROR_JOINTS[i]] == i for i in range(24))


def test_mirror_twice_is_identity_and_stays_within_limits():
    go, bp = library_array()
    mgo, mbp = mirror_pose(go, bp)
    assert not np.allclose(mbp, bp)
    assert is_within_limits(mbp).all()
    back = mirror_pose(mgo, mbp)
    np.testing.assert_allclose(back[0], go)
    np.testing.assert_allclose(back[1], bp)
    batch = np.random.default_rng(2).normal(size=(3, 4, 69))
    np.testing.assert_allclose(mirror_pose(np.zeros((3, 4, 3)), batch)[1].shape, (3, 4, 69))
    with pytest.raises(ValueError, match="global_orient"):
        mirror_pose(np.zeros(4), np.zeros(69))


# ----------------------------------------------------------------------------------- interpolation


def test_interpolation_endpoints_and_midpoint():
    a, b = get_pose("rest"), get_pose("sit_chair")
    for alpha, expect in ((0.0, a), (1.0, b)):
        go, bp = interpolate_poses(a, b, alpha)
        np.testing.assert_allclose(go, expect[0], atol=1e-9)
        np.testing.assert_allclose(bp, expect[1], atol=1e-9)
    _, mid = interpolate_poses(a, b, 0.5)
    knee = 3 * body_index("left_knee")
    assert np.rad2deg(mid[knee]) == pytest.approx(45.0)  # 0 -> 90 deg knee bend


@pytest.mark.parametrize("alpha", [0.25, 0.5, 0.9])
def test_interpolation_moves_along_the_shortest_rotation_of_every_joint(alpha):
    """Each joint lies on the geodesic from a to b, a fraction alpha of the way (slerp, not lerp)."""
    (ga, ba), (gb, bb) = get_pose("run_flight"), get_pose("throw_wind_up")
    go, bp = interpolate_poses((ga, ba), (gb, bb), alpha)
    ra = Rotation.from_rotvec(np.concatenate([ga[None], ba.reshape(23, 3)]))
    rb = Rotation.from_rotvec(np.concatenate([gb[None], bb.reshape(23, 3)]))
    rm = Rotation.from_rotvec(np.concatenate([go[None], bp.reshape(23, 3)]))
    d_ab, d_am, d_mb = (ra.inv() * rb).magnitude(), (ra.inv() * rm).magnitude(), (rm.inv() * rb).magnitude()
    np.testing.assert_allclose(d_am, alpha * d_ab, atol=1e-9)
    np.testing.assert_allclose(d_mb, (1 - alpha) * d_ab, atol=1e-9)


def test_interpolation_batches_alpha_and_validates():
    a, b = get_pose("rest"), get_pose("squat_deep")
    alphas = np.linspace(0, 1, 7)
    go, bp = interpolate_poses(a, b, alphas)
    assert go.shape == (7, 3) and bp.shape == (7, 69)
    knee = np.rad2deg(bp[:, 3 * body_index("left_knee")])
    assert np.all(np.diff(knee) > 0), "knee bend must grow monotonically along the path"
    go2, bp2 = interpolate_poses(library_array(), library_array(), 0.3)
    np.testing.assert_allclose(bp2, library_array()[1], atol=1e-9)
    with pytest.raises(ValueError, match=r"alpha must lie in \[0, 1\]"):
        interpolate_poses(a, b, 1.5)
    with pytest.raises(ValueError, match="alpha"):
        interpolate_poses(a, b, np.nan)
    with pytest.raises(ValueError, match="do not broadcast"):
        interpolate_poses((np.zeros((2, 3)), np.zeros((2, 69))), b, np.zeros(3))
    with pytest.raises(ValueError, match="pose_b body_pose"):
        interpolate_poses(a, (np.zeros(3), np.zeros(60)), 0.5)


# ------------------------------------------------------------------------ semantics on the real body


@pytest.fixture(scope="module")
def posed():
    """World joints (24, 3) of every library pose and its mirror, on the shipped default body."""
    from posegen_env.body.body_model import load_body_model

    model = load_body_model()
    go, bp = library_array()
    mgo, mbp = mirror_pose(go, bp)
    with torch.no_grad():
        joints = model(np.concatenate([go, mgo]), np.concatenate([bp, mbp])).joints.numpy().astype(np.float64)
    n = len(go)
    names = pose_names()
    return {names[i]: joints[i] for i in range(n)}, {names[i]: joints[n + i] for i in range(n)}


def J(joints: np.ndarray, name: str) -> np.ndarray:
    return joints[JOINT_INDEX[name]]


def facing(joints: np.ndarray) -> np.ndarray:
    """Unit direction the chest faces: (left - right shoulder) x (neck - pelvis)."""
    across = J(joints, "left_shoulder") - J(joints, "right_shoulder")
    up = J(joints, "neck") - J(joints, "pelvis")
    n = np.cross(across, up)
    return n / np.linalg.norm(n)


STANDING = ["rest", "stand_hands_on_hips", "stand_arms_crossed", "stand_weight_on_left", "phone_call_right",
            "wave_right", "point_left", "look_around_left", "carry_box", "walk_midstance", "stretch_arms_up"]


@pytest.mark.parametrize("name", STANDING)
def test_standing_poses_have_the_feet_lowest(posed, name):
    joints = posed[0][name]
    lowest = SMPL_JOINT_NAMES[int(np.argmin(joints[:, 1]))]
    assert lowest in ("left_foot", "right_foot", "left_ankle", "right_ankle"), f"{name}: lowest is {lowest}"
    assert facing(joints)[2] > 0.9, f"{name} should face +z"


SEMANTICS = {
    "sit_chair": lambda j: (J(j, "left_knee")[2] > J(j, "left_hip")[2] + 0.25
                            and abs(J(j, "left_knee")[1] - J(j, "left_hip")[1]) < 0.1
                            and J(j, "right_knee")[2] > J(j, "right_hip")[2] + 0.25),
    "wave_right": lambda j: J(j, "right_wrist")[1] > J(j, "head")[1] + 0.1 > J(j, "left_wrist")[1],
    "reach_up_right": lambda j: J(j, "right_wrist")[1] > J(j, "head")[1] + 0.2,
    "stretch_arms_up": lambda j: min(J(j, "left_wrist")[1], J(j, "right_wrist")[1]) > J(j, "head")[1] + 0.2,
    "phone_call_right": lambda j: np.linalg.norm(J(j, "right_wrist") - J(j, "head")) < 0.25,
    "point_left": lambda j: J(j, "left_wrist")[2] > 0.3 and J(j, "left_wrist")[0] > J(j, "left_shoulder")[0],
    "walk_heel_strike": lambda j: J(j, "left_ankle")[2] > J(j, "right_ankle")[2] + 0.3,
    "kick_right_front": lambda j: J(j, "right_ankle")[2] > J(j, "pelvis")[2] + 0.5,
    "squat_deep": lambda j: J(j, "pelvis")[1] - J(j, "left_ankle")[1] < 0.45,
    "bend_pick_up": lambda j: (J(j, "head")[1] < J(j, "neck")[1] + 0.05 and J(j, "head")[2] > 0.4
                               and J(j, "left_wrist")[1] < J(j, "pelvis")[1]),
    "kneel_upright": lambda j: J(j, "left_knee")[1] < J(j, "left_ankle")[1] + 0.1 and J(j, "left_ankle")[2] < -0.2,
    "lie_on_back": lambda j: facing(j)[1] > 0.9 and abs(J(j, "head")[1] - J(j, "pelvis")[1]) < 0.2,
    "lie_on_front": lambda j: facing(j)[1] < -0.9 and abs(J(j, "head")[1] - J(j, "pelvis")[1]) < 0.2,
    "lie_on_side": lambda j: J(j, "left_shoulder")[1] > J(j, "right_shoulder")[1] + 0.25,
    "jump_takeoff": lambda j: J(j, "left_wrist")[2] < J(j, "pelvis")[2] - 0.1,
}


@pytest.mark.parametrize("name", sorted(SEMANTICS))
def test_library_poses_look_like_their_names(posed, name):
    assert SEMANTICS[name](posed[0][name]), f"{name} does not look like its description"


def test_mirrored_pose_is_the_reflected_body(posed):
    """Mirroring the parameters reflects the posed skeleton in x (to the body's own asymmetry)."""
    plain, mirrored = posed
    for name in pose_names():
        reflected = plain[name][list(MIRROR_JOINTS)] * np.array([-1.0, 1.0, 1.0])
        np.testing.assert_allclose(mirrored[name], reflected, atol=0.03, err_msg=name)
    assert J(mirrored["wave_right"], "left_wrist")[1] > J(mirrored["wave_right"], "head")[1]
