"""The held-out pose set: size, distinctness, distance from the base library, limits, semantics, isolation."""

import itertools

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from posegen_env.body.joints import JOINT_INDEX
from posegen_env.body.pose_library import library_array, mirror_pose, pose_names
from posegen_env.body.pose_space import is_within_limits, limit_violation
from posegen_env.suites.heldout_poses import (
    HELDOUT_CATEGORIES,
    HELDOUT_POSES,
    get_heldout_pose,
    heldout_array,
    heldout_pose_names,
)

MIN_LIBRARY_DISTANCE_DEG = 40.0


def joint_rotations(go: np.ndarray, bp: np.ndarray) -> np.ndarray:
    """(P, 24, 3) axis-angles: the root followed by the 23 body joints."""
    return np.concatenate([go[:, None], bp.reshape(len(bp), 23, 3)], axis=1)


def pose_distance_deg(go_a, bp_a, go_b, bp_b) -> np.ndarray:
    """Per-joint angle (deg, shape (24,)) between two poses; the root compared up to a turn about vertical.

    The base sampler turns library poses about the vertical, so a held-out pose that is only a turned
    library pose must not count as new: the root angle is the smallest over all such turns.
    """
    body = (Rotation.from_rotvec(bp_a.reshape(23, 3)).inv() * Rotation.from_rotvec(bp_b.reshape(23, 3))).magnitude()
    q = Rotation.from_rotvec(go_a).as_matrix() @ Rotation.from_rotvec(go_b).as_matrix().T
    # trace(R_y(psi) q) is maximal at sqrt((q00 + q22)^2 + (q20 - q02)^2) + q11.
    trace = np.hypot(q[0, 0] + q[2, 2], q[2, 0] - q[0, 2]) + q[1, 1]
    root = np.arccos(np.clip((trace - 1.0) / 2.0, -1.0, 1.0))
    return np.rad2deg(np.concatenate([[root], body]))


# ---------------------------------------------------------------------------------------- the set


def test_size_names_shapes_and_order():
    names = heldout_pose_names()
    assert len(names) >= 32 and len(set(names)) == len(names)
    go, bp = heldout_array()
    assert go.shape == (len(names), 3) and bp.shape == (len(names), 69)
    assert np.isfinite(go).all() and np.isfinite(bp).all()
    for i, name in enumerate(names):
        g, b = get_heldout_pose(name)
        np.testing.assert_array_equal(g, go[i])
        np.testing.assert_array_equal(b, bp[i])
    assert not set(names) & set(pose_names()), "held-out names must not reuse library names"


def test_categories_cover_the_documented_activities():
    assert set(HELDOUT_CATEGORIES) == set(HELDOUT_POSES)
    counts = {c: list(HELDOUT_CATEGORIES.values()).count(c) for c in set(HELDOUT_CATEGORIES.values())}
    assert set(counts) == {"sports", "gymnastics", "dance", "yoga", "martial_arts", "falling", "climbing"}
    assert min(counts.values()) >= 3, counts


def test_set_is_read_only_and_get_copies():
    with pytest.raises(TypeError):
        HELDOUT_POSES["handstand"] = HELDOUT_POSES["yoga_tree"]
    with pytest.raises(TypeError):
        HELDOUT_CATEGORIES["handstand"] = "yoga"
    with pytest.raises(ValueError):
        HELDOUT_POSES["handstand"][1][0] = 1.0
    g, b = get_heldout_pose("handstand")
    g[:] = 0.0
    b[:] = 1.0
    assert not np.allclose(HELDOUT_POSES["handstand"][0], 0.0)
    assert not np.allclose(HELDOUT_POSES["handstand"][1], 1.0)
    with pytest.raises(KeyError, match="heldout_pose_names"):
        get_heldout_pose("rest")


def test_every_pose_and_its_mirror_is_within_the_joint_limits():
    go, bp = heldout_array()
    bad = {n: round(float(np.rad2deg(v)), 1) for n, v in zip(heldout_pose_names(), limit_violation(bp), strict=True)
           if v > 0}
    assert not bad, f"held-out poses outside the joint limits (deg): {bad}"
    assert is_within_limits(mirror_pose(go, bp)[1]).all()


def test_poses_are_pairwise_distinct():
    """Every pair differs by >= 10 deg at some joint, root included (as the library test counts it)."""
    go, bp = heldout_array()
    rots = joint_rotations(go, bp)
    names = heldout_pose_names()
    for i, j in itertools.combinations(range(len(names)), 2):
        angle = (Rotation.from_rotvec(rots[i]).inv() * Rotation.from_rotvec(rots[j])).magnitude()
        assert np.rad2deg(angle.max()) >= 10.0, f"{names[i]} and {names[j]} are nearly the same pose"


def test_distance_ignores_turns_about_vertical_only():
    """The distance used below: 0 for a library pose turned about vertical, large for one tipped over."""
    lg, lb = library_array()
    i = pose_names().index("walk_midstance")
    turned = (Rotation.from_euler("y", 70, degrees=True) * Rotation.from_rotvec(lg[i])).as_rotvec()
    assert pose_distance_deg(turned, lb[i], lg[i], lb[i]).max() < 1e-4
    tipped = (Rotation.from_euler("x", 70, degrees=True) * Rotation.from_rotvec(lg[i])).as_rotvec()
    assert pose_distance_deg(tipped, lb[i], lg[i], lb[i])[0] == pytest.approx(70.0)
    bent = lb[i].copy()
    bent[3 * 3] += np.deg2rad(30.0)  # left knee
    assert pose_distance_deg(lg[i], bent, lg[i], lb[i]).max() == pytest.approx(30.0)


def test_every_heldout_pose_is_far_from_every_library_pose_and_its_mirror():
    """For each held-out pose, some joint differs by >= 40 deg from the nearest library pose (mirrors too).

    The base sampler perturbs library poses by ~5 deg of noise per component and a turn about
    vertical, so none of its samples comes near a held-out pose except by interpolating far away.
    """
    go, bp = heldout_array()
    lg, lb = library_array()
    mg, mb = mirror_pose(lg, lb)
    lib_go, lib_bp = np.concatenate([lg, mg]), np.concatenate([lb, mb])
    lib_names = pose_names() + [f"mirrored {n}" for n in pose_names()]
    close = {}
    for i, name in enumerate(heldout_pose_names()):
        dist = [pose_distance_deg(go[i], bp[i], lib_go[k], lib_bp[k]).max() for k in range(len(lib_names))]
        k = int(np.argmin(dist))
        if dist[k] < MIN_LIBRARY_DISTANCE_DEG:
            close[name] = (lib_names[k], round(dist[k], 1))
    assert not close, f"held-out poses too close to the library: {close}"


# -------------------------------------------------------------------------- semantics on the real body


def J(joints: np.ndarray, name: str) -> np.ndarray:
    return joints[JOINT_INDEX[name]]


def lowest(joints: np.ndarray, *names: str) -> float:
    return min(J(joints, n)[1] for n in names)


def highest(joints: np.ndarray, *names: str) -> float:
    return max(J(joints, n)[1] for n in names)


def facing(joints: np.ndarray) -> np.ndarray:
    """Unit direction the chest faces: (left - right shoulder) x (neck - pelvis)."""
    n = np.cross(J(joints, "left_shoulder") - J(joints, "right_shoulder"), J(joints, "neck") - J(joints, "pelvis"))
    return n / np.linalg.norm(n)


def torso_tilt_back_deg(joints: np.ndarray) -> float:
    """How far the pelvis-to-neck line leans backwards (towards -z) from vertical, in degrees."""
    up = J(joints, "neck") - J(joints, "pelvis")
    return float(np.degrees(np.arctan2(-up[2], up[1])))


HANDS, FEET = ("left_wrist", "right_wrist"), ("left_ankle", "right_ankle")
SEMANTIC_BODY = ("pelvis", "head", "neck", "left_knee", "right_knee", "left_ankle", "right_ankle",
                 "left_wrist", "right_wrist", "left_elbow", "right_elbow")

# World y is up and the unturned body faces +z with its left side at +x.
SEMANTICS = {
    "handstand": lambda j: (highest(j, *HANDS) < J(j, "head")[1] - 0.15
                            and lowest(j, *FEET) > J(j, "head")[1] + 0.8),
    "cartwheel": lambda j: J(j, "head")[1] < J(j, "pelvis")[1] - 0.3 and highest(j, *FEET) > J(j, "head")[1] + 1.0,
    "yoga_downward_dog": lambda j: (int(np.argmax(j[:, 1])) in (JOINT_INDEX["pelvis"], JOINT_INDEX["spine1"],
                                                                JOINT_INDEX["left_hip"], JOINT_INDEX["right_hip"])
                                    and J(j, "pelvis")[1] > max(highest(j, *HANDS), highest(j, *FEET)) + 0.4),
    "backbend_bridge": lambda j: (facing(j)[1] > 0.3 and J(j, "pelvis")[1] > J(j, "head")[1] + 0.3
                                  and J(j, "pelvis")[1] > max(highest(j, *HANDS), highest(j, *FEET)) + 0.4),
    "high_kick": lambda j: J(j, "right_ankle")[1] > J(j, "right_hip")[1] + 0.2 > J(j, "left_ankle")[1] + 0.2,
    "side_kick": lambda j: (abs(J(j, "right_ankle")[1] - J(j, "pelvis")[1]) < 0.25
                            and J(j, "right_ankle")[0] < J(j, "pelvis")[0] - 0.7),
    "hang_from_bar": lambda j: lowest(j, *HANDS) > J(j, "head")[1] + 0.3,
    "fall_backward": lambda j: torso_tilt_back_deg(j) > 30.0 and J(j, "left_ankle")[1] > J(j, "right_ankle")[1] + 0.3,
    "stumble_forward": lambda j: torso_tilt_back_deg(j) < -30.0 and J(j, "left_wrist")[2] > J(j, "neck")[2],
    "split_front": lambda j: (J(j, "left_ankle")[2] > J(j, "pelvis")[2] + 0.6
                              and J(j, "right_ankle")[2] < J(j, "pelvis")[2] - 0.6
                              and abs(J(j, "left_ankle")[1] - J(j, "right_ankle")[1]) < 0.15),
    "yoga_warrior_3": lambda j: (abs(J(j, "neck")[1] - J(j, "pelvis")[1]) < 0.15
                                 and abs(J(j, "right_ankle")[1] - J(j, "pelvis")[1]) < 0.15
                                 and J(j, "left_ankle")[1] < J(j, "pelvis")[1] - 0.6),
    "yoga_tree": lambda j: (np.linalg.norm(J(j, "right_ankle") - J(j, "left_knee")) < 0.3
                            and J(j, "right_knee")[0] < J(j, "right_hip")[0] - 0.15
                            and lowest(j, *HANDS) > J(j, "head")[1]),
    "yoga_crow": lambda j: (highest(j, *HANDS) < min(J(j, n)[1] for n in SEMANTIC_BODY if n not in HANDS)
                            and lowest(j, *FEET) > highest(j, *HANDS) + 0.2),
    "soccer_bicycle_kick": lambda j: (J(j, "right_ankle")[1] > J(j, "pelvis")[1] + 0.5
                                      and J(j, "head")[1] < J(j, "pelvis")[1]),
    "swim_freestyle": lambda j: (abs(J(j, "head")[1] - J(j, "pelvis")[1]) < 0.2 and facing(j)[1] < -0.5
                                 and J(j, "right_wrist")[2] > J(j, "head")[2] > J(j, "left_wrist")[2]),
    "yoga_lotus_twist": lambda j: (facing(j)[0] > 0.5 and abs(J(j, "left_knee")[1] - J(j, "pelvis")[1]) < 0.2
                                   and abs(J(j, "right_knee")[1] - J(j, "pelvis")[1]) < 0.2),
}


@pytest.fixture(scope="module")
def posed():
    """World joints (24, 3) of every held-out pose, and of the library's "rest", on the shipped body."""
    from posegen_env.body.body_model import load_body_model

    model = load_body_model()
    go, bp = heldout_array()
    lg, lb = library_array()
    with torch.no_grad():
        joints = model(np.concatenate([go, lg[:1]]), np.concatenate([bp, lb[:1]])).joints.numpy().astype(np.float64)
    return dict(zip(heldout_pose_names(), joints[:-1], strict=True)), joints[-1]


@pytest.mark.parametrize("name", sorted(SEMANTICS))
def test_heldout_poses_look_like_their_names(posed, name):
    poses, rest = posed
    assert SEMANTICS[name](poses[name]), f"{name} does not look like its description"
    assert not SEMANTICS[name](rest), f"the check for {name} cannot tell it from standing at rest"
