"""Joint sets: each built-in set's mapping onto the body, custom sets, regressors, and shared-joint metrics."""

import numpy as np
import pytest
import torch

from posegen_env.body.body_model import load_body_model
from posegen_env.body.joint_sets import (
    BODY_POINTS,
    JOINT_SETS,
    JointSetError,
    body_points,
    get_joint_set,
    ground_truth,
    root_relative,
    shared_joints,
)
from posegen_env.body.joints import EVAL_JOINTS, SMPL_JOINT_NAMES
from posegen_env.estimation.metrics import evaluate_poses, mpjpe


@pytest.fixture(scope="module")
def body():
    return load_body_model()


@pytest.fixture(scope="module")
def posed(body):
    rng = np.random.default_rng(0)
    n = 6
    pose = np.concatenate([rng.normal(0, 0.5, (n, 3)), rng.normal(0, 0.2, (n, 69))], axis=1).astype(np.float32)
    betas = rng.normal(0, 0.5, (n, 10)).astype(np.float32)
    angles = rng.uniform(-np.pi, np.pi, n)
    R = np.stack([[[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]] for a in angles]).astype(
        np.float32)
    return pose, betas, R


@pytest.mark.parametrize("name, size, evaluated, root", [
    ("smpl24", 24, 14, ("pelvis",)), ("h36m17", 17, 14, ("pelvis",)), ("lsp14", 14, 14, ("left_hip", "right_hip")),
    ("coco17", 17, 12, ("left_hip", "right_hip")), ("hybrik29", 29, 14, ("pelvis",))])
def test_built_in_sets(name, size, evaluated, root):
    s = JOINT_SETS[name]
    assert (len(s), len(s.eval_joints), s.root) == (size, evaluated, root)
    assert set(s.joints) <= set(BODY_POINTS) and set(s.eval_joints) <= set(s.joints)
    mirror = s.mirror
    assert all(mirror[mirror[i]] == i for i in range(len(s)))  # an involution
    for i, joint in enumerate(s.joints):
        partner = s.joints[mirror[i]]
        assert partner == joint.replace("left_", "@").replace("right_", "left_").replace("@", "right_")


def test_the_standard_orders_and_protocols():
    assert JOINT_SETS["smpl24"].joints == SMPL_JOINT_NAMES and JOINT_SETS["smpl24"].eval_index == EVAL_JOINTS
    h36m = JOINT_SETS["h36m17"]
    assert h36m.joints[:4] == ("pelvis", "right_hip", "right_knee", "right_ankle")
    assert h36m.joints[7:11] == ("spine", "thorax", "nose", "head_top") and h36m.joints[-1] == "right_wrist"
    assert "thorax" in h36m.eval_joints and "spine" not in h36m.eval_joints  # SPIN's H36M_TO_J14
    assert JOINT_SETS["lsp14"].joints[-2:] == ("neck", "head_top")
    assert JOINT_SETS["coco17"].joints[:5] == ("nose", "left_eye", "right_eye", "left_ear", "right_ear")
    assert JOINT_SETS["hybrik29"].joints[:24] == SMPL_JOINT_NAMES


def test_names_are_forgiving_and_errors_name_the_fix():
    for spelling in ("SMPL-24", "smpl_24", "smpl"):
        assert get_joint_set(spelling).name == "smpl24"
    assert get_joint_set("H36M-17").name == get_joint_set("h36m").name == "h36m17"
    assert get_joint_set("COCO").name == "coco17" and get_joint_set("HybrIK").name == "hybrik29"
    with pytest.raises(JointSetError, match="unknown joint set 'h37m'.*did you mean h36m17"):
        get_joint_set("h37m")
    with pytest.raises(JointSetError, match="unknown joint name\\(s\\) left_elbw.*did you mean left_elbow"):
        get_joint_set(["pelvis", "left_elbw"])
    with pytest.raises(JointSetError, match="distinct joint names; repeated: nose"):
        get_joint_set(["nose", "nose"])
    with pytest.raises(JointSetError, match="a name .* or a list of joint names, got int"):
        get_joint_set(17)


def test_custom_sets_pick_their_root_and_evaluation_joints():
    s = get_joint_set(["nose", "left_hip", "right_hip", "left_knee", "left_big_toe"])
    assert s.root == ("left_hip", "right_hip") and s.eval_joints == ("left_hip", "right_hip", "left_knee")
    assert get_joint_set(["pelvis", "nose"]).root == ("pelvis",)
    assert get_joint_set(["nose", "left_eye"]).root == ("nose", "left_eye")
    assert shared_joints(JOINT_SETS["coco17"], JOINT_SETS["h36m17"]) == (
        "nose", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
        "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle")


def test_landmarks_sit_where_their_names_say(body):
    rest = body(np.zeros(3), np.zeros(69))
    names = ["head_top", "head", "nose", "left_big_toe", "left_ankle", "thorax", "neck", "spine", "pelvis",
             "left_middle_tip", "left_wrist"]
    p = dict(zip(names, body_points(body, rest, names)[0].numpy(), strict=True))
    up, forward = np.array([0, 1, 0]), np.array([0, 0, 1])  # SMPL's rest frame: y up, z forward
    assert (p["head_top"] - p["head"]) @ up > 0.05
    assert (p["nose"] - p["head"]) @ forward > 0.05
    assert (p["left_big_toe"] - p["left_ankle"]) @ forward > 0.08
    assert (p["neck"] - p["thorax"]) @ up > 0 and (p["thorax"] - p["spine"]) @ up > 0.1
    assert (p["spine"] - p["pelvis"]) @ up > 0.1
    assert np.linalg.norm(p["left_middle_tip"] - p["left_wrist"]) > 0.1


def test_ground_truth_is_root_relative_camera_frame(body, posed):
    pose, betas, R = posed
    smpl = ground_truth(JOINT_SETS["smpl24"], body, pose, betas, R)
    joints = body(pose[:, :3], pose[:, 3:], betas).joints.numpy()
    expected = np.einsum("nij,nkj->nki", R, joints - joints[:, :1])
    np.testing.assert_allclose(smpl, expected, atol=1e-5)
    lsp = ground_truth(JOINT_SETS["lsp14"], body, pose, betas, R)
    np.testing.assert_allclose(lsp[:, [2, 3]].mean(axis=1), 0, atol=1e-6)  # rooted between the hips
    h36m = ground_truth(JOINT_SETS["h36m17"], body, pose, betas, R)
    np.testing.assert_allclose(h36m[:, 1], smpl[:, SMPL_JOINT_NAMES.index("right_hip")], atol=1e-6)


def test_a_regressor_gives_the_sets_joints(body, posed, tmp_path):
    pose, betas, R = posed
    regressor = body.smpl.J_regressor.numpy()  # SMPL's own regressor applied to the posed vertices
    np.save(tmp_path / "J_regressor_smpl.npy", regressor)
    with_regressor = get_joint_set("smpl24", regressor=tmp_path / "J_regressor_smpl.npy")
    got = ground_truth(with_regressor, body, pose, betas, R)
    vertices = body(pose[:, :3], pose[:, 3:], betas).vertices.numpy()
    world = np.einsum("jv,nvc->njc", regressor, vertices)
    np.testing.assert_allclose(got, np.einsum("nij,nkj->nki", R, world - world[:, :1]), atol=1e-5)
    with pytest.raises(JointSetError, match="has 24 rows, but the h36m17 set has 17 joints"):
        get_joint_set("h36m17", regressor=regressor)
    with pytest.raises(JointSetError, match="covers 10 vertices, but the body has"):
        ground_truth(get_joint_set("smpl24", regressor=np.ones((24, 10))), body, pose, betas, R)
    with pytest.raises(JointSetError, match="finite \\(joints, vertices\\) matrix"):
        get_joint_set("smpl24", regressor=np.ones(24))


def test_metrics_in_each_set_use_its_root_and_protocol():
    rng = np.random.default_rng(1)
    for name, s in JOINT_SETS.items():
        gt = root_relative(rng.normal(0, 0.3, (5, len(s), 3)), s)
        perfect = evaluate_poses(gt + 2.0, gt, s)  # a global offset costs nothing
        assert perfect["joint_set"] == name and perfect["eval14"]["mpjpe_mm"] == pytest.approx(0, abs=1e-6)
        assert perfect["eval14"]["pck3d_150_pct"] == 100.0 and list(perfect["all"]["per_joint_mpjpe_mm"]) == list(
            s.joints)
        moved = gt.copy()
        moved[:, s.index([s.eval_joints[0]])[0], 0] += 0.1  # one evaluated joint 10 cm off
        result = evaluate_poses(moved, gt, s)
        if s.eval_joints[0] not in s.root:
            assert result["eval14"]["per_joint_mpjpe_mm"][s.eval_joints[0]] == pytest.approx(100.0)
    with pytest.raises(ValueError, match="the h36m17 joint set has 17 joints; got 24"):
        evaluate_poses(np.zeros((2, 24, 3)), np.zeros((2, 24, 3)), "h36m17")
    two_roots = np.zeros((1, 3, 3))
    two_roots[0, 1, 0], two_roots[0, 2, 0] = 1.0, -1.0  # a root midway between joints 1 and 2
    assert mpjpe(two_roots + 5.0, two_roots, root=(1, 2))[0] == pytest.approx(0.0)
    torch_joints = torch.zeros(2, 14, 3)
    assert torch.is_tensor(root_relative(torch_joints, JOINT_SETS["lsp14"]))
