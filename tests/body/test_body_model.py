"""The default body loads through smplx and behaves like SMPL."""

import pickle
import sys
import types

import numpy as np
import pytest
import scipy.sparse
import smplx

from posegen_env.body.body_model import BODY_MODEL_ENV, DEFAULT_BODY_PATH, BodyModelError, load_body_model
from posegen_env.body.joints import JOINT_INDEX, MIRROR_JOINTS, NUM_BODY_JOINTS

J = JOINT_INDEX


@pytest.fixture(scope="module")
def body():
    return load_body_model()


def pose_with(**rotations_deg) -> np.ndarray:
    """body_pose (69,) with the given joints' axis-angle rotations in degrees."""
    pose = np.zeros(NUM_BODY_JOINTS * 3)
    for name, rot in rotations_deg.items():
        pose[(J[name] - 1) * 3:(J[name] - 1) * 3 + 3] = np.deg2rad(rot)
    return pose


def joints_of(body, body_pose, global_orient=(0.0, 0.0, 0.0), betas=None) -> np.ndarray:
    return body(global_orient, body_pose, betas).joints[0].detach().numpy()


def test_loads_through_smplx_with_smpl_layout(body):
    assert isinstance(body.smpl, smplx.SMPL)
    assert body.smpl.J_regressor.shape == (24, body.num_vertices)
    assert body.smpl.posedirs.shape == (207, body.num_vertices * 3)
    assert body.num_betas == 10
    out = body(np.zeros(3), np.zeros(69))
    assert out.joints.shape == (1, 24, 3) and out.vertices.shape == (1, body.num_vertices, 3)
    assert DEFAULT_BODY_PATH.stat().st_size < 5e6  # shipped small


def test_rest_pose_is_smpl_t_pose(body):
    v = body(np.zeros(3), np.zeros(69)).vertices[0].detach().numpy()
    j = joints_of(body, np.zeros(69))
    height = v[:, 1].max() - v[:, 1].min()
    assert 1.55 <= height <= 1.95
    # Arms along +-x (left = +x), roughly at shoulder height; head up; nose towards +z.
    for side, sign in (("left", 1), ("right", -1)):
        arm = j[J[f"{side}_wrist"]] - j[J[f"{side}_shoulder"]]
        assert sign * arm[0] > 0.4 and abs(arm[1]) < 0.03 and abs(arm[2]) < 0.03
    assert j[J["head"]][1] > j[J["neck"]][1] > j[J["pelvis"]][1] > j[J["left_knee"]][1] > j[J["left_ankle"]][1]
    nose = v[body.landmarks["nose"]]
    assert nose[2] > j[J["head"]][2] + 0.05


def test_left_right_mirror_within_1cm(body):
    j = joints_of(body, np.zeros(69))
    mirrored = j[list(MIRROR_JOINTS)] * np.array([-1.0, 1.0, 1.0])
    assert np.abs(mirrored - j).max() < 0.01
    v = body(np.zeros(3), np.zeros(69)).vertices[0].detach().numpy()
    # Silhouette symmetry: the extent on each side agrees within 1 cm.
    assert abs(v[:, 0].max() + v[:, 0].min()) < 0.01


def test_shape_components_change_height_and_girth(body):
    def measure(betas):
        v = body(np.zeros(3), np.zeros(69), betas).vertices[0].detach().numpy()
        trunk = v[np.abs(v[:, 0]) < 0.2]
        return v[:, 1].max() - v[:, 1].min(), trunk[:, 2].max() - trunk[:, 2].min()

    h0, g0 = measure(np.zeros(10))
    changes = [np.subtract(measure(np.eye(10)[k] * 2.0), (h0, g0)) for k in range(10)]
    assert max(abs(c[0]) for c in changes) > 0.1, "some component must change height by > 10 cm"
    assert max(abs(c[1]) for c in changes) > 0.02, "some component must change girth by > 2 cm"
    # Joints follow the shape: a taller body has its head joint higher.
    k = int(np.argmax([abs(c[0]) for c in changes]))
    tall = joints_of(body, np.zeros(69), betas=np.eye(10)[k] * 2.0 * np.sign(changes[k][0]))
    assert tall[J["head"]][1] - tall[J["left_ankle"]][1] > (joints_of(body, np.zeros(69))[J["head"]][1]
                                                           - joints_of(body, np.zeros(69))[J["left_ankle"]][1]) + 0.05


def test_knee_positive_x_bends_backwards(body):
    for side in ("left", "right"):
        j = joints_of(body, pose_with(**{f"{side}_knee": (90, 0, 0)}))
        shin = j[J[f"{side}_ankle"]] - j[J[f"{side}_knee"]]
        assert shin[2] < -0.3, "lower leg must swing backwards (-z)"


def test_hip_negative_x_is_flexion(body):
    j = joints_of(body, pose_with(left_hip=(-90, 0, 0)))
    assert j[J["left_knee"]][2] - j[J["left_hip"]][2] > 0.3  # thigh forwards


def test_elbow_y_range_matches_smpl_convention(body):
    # Left elbow flexes with negative y (range -150..0), the right with positive y (0..150).
    for side, sign in (("left", -1), ("right", 1)):
        for angle in (45, 90, 150):
            j = joints_of(body, pose_with(**{f"{side}_elbow": (0, sign * angle, 0)}))
            forearm = j[J[f"{side}_wrist"]] - j[J[f"{side}_elbow"]]
            assert forearm[2] > 0.1, f"{side} elbow y={sign * angle} must bend the forearm forwards"
        j = joints_of(body, pose_with(**{f"{side}_elbow": (0, -sign * 60, 0)}))
        assert (j[J[f"{side}_wrist"]] - j[J[f"{side}_elbow"]])[2] < -0.1  # outside the range: hyperextension


def test_shoulder_z_lowers_arms(body):
    j = joints_of(body, pose_with(left_shoulder=(0, 0, -80), right_shoulder=(0, 0, 80)))
    for side in ("left", "right"):
        assert j[J[f"{side}_wrist"]][1] < j[J[f"{side}_shoulder"]][1] - 0.4


def test_global_orient_turns_body(body):
    v = body(np.array([0.0, np.pi, 0.0]), np.zeros(69)).vertices[0].detach().numpy()
    assert v[body.landmarks["nose"]][2] < -0.05  # facing -z after a half turn about y


def _fake_smpl_pickle(tmp_path, body, chumpy_state_key="x"):
    """An SMPL-style pickle whose arrays are chumpy objects, written with a stand-in chumpy."""
    fake = types.ModuleType("chumpy.ch")

    class Ch:
        def __init__(self, value):
            self.__dict__.update({chumpy_state_key: value, "_dirty_vars": set()})

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    fake.Ch = Ch
    package = types.ModuleType("chumpy")
    package.ch = fake
    sys.modules.update({"chumpy": package, "chumpy.ch": fake})
    try:
        smpl = body.smpl
        data = {
            "v_template": Ch(smpl.v_template.numpy().astype(np.float64)),
            "shapedirs": Ch(smpl.shapedirs.numpy().astype(np.float64)),
            "posedirs": np.zeros((body.num_vertices, 3, 207)),
            "J_regressor": scipy.sparse.csc_matrix(smpl.J_regressor.numpy().astype(np.float64)),
            "weights": Ch(smpl.lbs_weights.numpy().astype(np.float64)),
            "kintree_table": np.stack([smpl.parents.numpy(), np.arange(24)]).astype(np.uint32),
            "f": body.faces.astype(np.uint32),
        }
        path = tmp_path / "SMPL_NEUTRAL.pkl"
        path.write_bytes(pickle.dumps(data, protocol=2))
    finally:
        del sys.modules["chumpy.ch"], sys.modules["chumpy"]
    return path


def test_smpl_pickle_with_chumpy_loads_without_chumpy(tmp_path, body):
    path = _fake_smpl_pickle(tmp_path, body)
    assert "chumpy" not in sys.modules
    real = load_body_model(path)
    pose = pose_with(left_knee=(60, 0, 0), right_shoulder=(0, 0, 40))
    ours = body(np.zeros(3), pose).vertices
    theirs = real(np.zeros(3), pose).vertices
    assert float((ours - theirs).abs().max()) < 1e-5
    # A directory works too (smplx's own convention) and so does the environment variable.
    assert load_body_model(tmp_path).num_vertices == body.num_vertices


def test_env_variable_selects_body(tmp_path, body, monkeypatch):
    path = _fake_smpl_pickle(tmp_path, body)
    monkeypatch.setenv(BODY_MODEL_ENV, str(path))
    assert load_body_model().path == path


def test_unreadable_chumpy_expression_says_what_to_do(tmp_path, body):
    path = _fake_smpl_pickle(tmp_path, body, chumpy_state_key="a")
    with pytest.raises(BodyModelError, match="chumpy installed"):
        load_body_model(path)


@pytest.mark.parametrize("content, message", [(b"not a pickle", "not a readable SMPL pickle"),
                                              (pickle.dumps([1, 2]), "expected a dict")])
def test_bad_pickle(tmp_path, content, message):
    path = tmp_path / "bad.pkl"
    path.write_bytes(content)
    with pytest.raises(BodyModelError, match=message):
        load_body_model(path)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(BodyModelError, match="not found"):
        load_body_model(tmp_path / "nope.pkl")
    corrupt = tmp_path / "body.npz"
    corrupt.write_bytes(DEFAULT_BODY_PATH.read_bytes()[:5000])
    with pytest.raises(BodyModelError, match="corrupt"):
        load_body_model(corrupt)
    other = tmp_path / "other.npz"
    np.savez(other, v_template=np.zeros((10, 3)))
    with pytest.raises(BodyModelError, match="not a PoseGen body asset"):
        load_body_model(other)


@pytest.mark.parametrize("kwargs, message", [
    ({"body_pose": np.zeros(72)}, "body_pose must have shape"),
    ({"global_orient": np.zeros((2, 3)), "body_pose": np.zeros((3, 69))}, "batch size"),
    ({"body_pose": np.full(69, np.nan)}, "NaN"),
    ({"betas": np.zeros(11)}, "betas must have shape"),
    ({"betas": np.array([np.inf])}, "NaN or inf"),
])
def test_bad_parameters(body, kwargs, message):
    args = {"global_orient": np.zeros(3), "body_pose": np.zeros(69), "betas": None} | kwargs
    with pytest.raises(BodyModelError, match=message):
        body(args["global_orient"], args["body_pose"], args["betas"])
