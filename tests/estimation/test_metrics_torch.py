"""Scoring in torch: metrics, self-penetration, reward and ground truth give numpy's numbers on the tensors' device."""

import numpy as np
import pytest
import torch

from posegen_env.body import load_body_model
from posegen_env.body.joint_sets import JOINT_SETS, ground_truth
from posegen_env.body.joints import EVAL_JOINTS, NUM_JOINTS
from posegen_env.body.plausibility import penetration_depth
from posegen_env.envs.reward import MODES, RewardConfig
from posegen_env.estimation.metrics import mpjpe, pa_mpjpe, pck3d, per_joint_errors, procrustes_align

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))]


@pytest.fixture(params=DEVICES)
def device(request):
    return torch.device(request.param)


def batch(n: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Noisy predictions, the first mirrored left/right and the second collapsed to one point."""
    rng = np.random.default_rng(seed)
    gt = rng.normal(scale=0.4, size=(n, NUM_JOINTS, 3))
    pred = 1.1 * gt + rng.normal(scale=0.05, size=gt.shape) + rng.normal(size=(n, 1, 3))
    pred[0] = gt[0] * np.array([-1.0, 1.0, 1.0])
    pred[1] = 0.3
    return pred, gt


def crossing_limbs() -> np.ndarray:
    """Two skeletons (as in tests/envs): limbs clear of the torso, and a forearm driven through it."""
    joints = np.zeros((24, 3))
    joints[[3, 6, 9, 12, 15]] = [[0, 0.1, 0], [0, 0.25, 0], [0, 0.4, 0], [0, 0.5, 0], [0, 0.6, 0]]
    joints[[1, 4, 7]] = [[0.1, -0.05, 0], [0.1, -0.45, 0], [0.1, -0.85, 0]]
    joints[[2, 5, 8]] = [[-0.1, -0.05, 0], [-0.1, -0.45, 0], [-0.1, -0.85, 0]]
    joints[[16, 18, 20]] = [[0.18, 0.45, 0], [0.2, 0.2, 0], [0.2, 0.0, 0]]
    joints[[17, 19, 21]] = [[-0.18, 0.45, 0], [-0.2, 0.2, 0], [-0.2, 0.0, 0]]
    through = joints.copy()
    through[20] = [-0.1, 0.3, 0.0]
    return np.stack([joints, through])


def assert_tensor_matches(got, expected: np.ndarray, device: torch.device, atol: float) -> None:
    assert isinstance(got, torch.Tensor) and got.device.type == device.type and got.dtype == torch.float64
    np.testing.assert_allclose(got.cpu().numpy(), expected, rtol=0, atol=atol)


CASES = [
    (mpjpe, {}),
    (mpjpe, {"joints": EVAL_JOINTS}),
    (mpjpe, {"root": None}),
    (mpjpe, {"root": [1, 2], "joints": [3, 5, 7, -1]}),
    (pa_mpjpe, {}),
    (pa_mpjpe, {"joints": EVAL_JOINTS}),
    (per_joint_errors, {"aligned": True, "joints": EVAL_JOINTS}),
    (per_joint_errors, {"root": (1, 2)}),
    (pck3d, {"threshold_mm": 100.0}),
]


@pytest.mark.parametrize(("fn", "kwargs"), CASES, ids=lambda c: getattr(c, "__name__", str(c)))
def test_metrics_in_torch_equal_numpy(device, fn, kwargs):
    pred, gt = batch()
    expected = fn(pred, gt, **kwargs)
    assert isinstance(expected, np.ndarray)
    got = fn(torch.tensor(pred, device=device), torch.tensor(gt, device=device), **kwargs)
    assert_tensor_matches(got, expected, device, atol=1e-6)
    # float32 tensors (an estimator's output) are scored in float64; a numpy partner joins the tensor's device
    mixed = fn(torch.tensor(pred, dtype=torch.float32, device=device), gt, **kwargs)
    assert_tensor_matches(mixed, fn(pred.astype(np.float32), gt, **kwargs), device, atol=1e-6)


def test_procrustes_in_torch_keeps_the_mirror_and_the_collapse(device):
    pred, gt = batch()
    expected = procrustes_align(pred, gt)
    got = procrustes_align(torch.tensor(pred, device=device, requires_grad=True), torch.tensor(gt, device=device))
    assert_tensor_matches(got, expected, device, atol=1e-9)  # metres: 1e-6 mm
    assert not got.requires_grad  # a score, not a loss
    # The collapsed prediction has no scale to fit: every joint lands on the gt centroid.
    np.testing.assert_allclose(got[1].cpu().numpy(), np.broadcast_to(gt[1].mean(axis=0), gt[1].shape), atol=1e-12)
    # The mirrored one is not aligned away by a reflection.
    assert float(pa_mpjpe(torch.tensor(pred[:1], device=device), torch.tensor(gt[:1], device=device))[0]) > 10.0


def test_non_finite_tensors_give_numpys_messages(device):
    pred, gt = batch(10)
    pred[3, 5, 0], pred[7, 0, 2] = np.nan, np.inf
    bad_gt = gt.copy()
    bad_gt[0, 0, 0] = np.nan
    for p, g in ((pred, gt), (gt, bad_gt)):
        for fn in (mpjpe, pa_mpjpe, procrustes_align):
            with pytest.raises(ValueError) as from_numpy:
                fn(p, g)
            with pytest.raises(ValueError) as from_torch:
                fn(torch.tensor(p, device=device), torch.tensor(g, device=device))
            assert str(from_torch.value) == str(from_numpy.value)
    with pytest.raises(ValueError, match=r"predictions contain NaN or inf values for samples \[3, 7\]"):
        mpjpe(torch.tensor(pred, device=device), torch.tensor(gt, device=device))
    with pytest.raises(ValueError, match=r"got \(2, 24, 2\)"):
        mpjpe(torch.zeros((2, 24, 2), device=device), torch.zeros((2, 24, 2), device=device))


def test_penetration_depth_in_torch_equals_numpy(device):
    rng = np.random.default_rng(2)
    joints = np.concatenate([rng.normal(scale=0.3, size=(20, NUM_JOINTS, 3)), crossing_limbs()])
    expected = penetration_depth(joints)
    assert expected[-2] == 0.0 and expected[-1] > 0.05 and (expected[:20] > 0).any()
    got = penetration_depth(torch.tensor(joints, device=device))
    assert_tensor_matches(got, expected, device, atol=1e-12)
    single = penetration_depth(torch.tensor(joints[-1], device=device))
    assert single.ndim == 0 and float(single) == pytest.approx(expected[-1], abs=1e-12)


@pytest.mark.parametrize("mode", MODES)
def test_reward_in_torch_equals_numpy(device, mode):
    cfg = RewardConfig(mode=mode, cap_mm=200, limit_weight=2.0, penetration_weight=10.0)
    rng = np.random.default_rng(3)
    error, limit, depth = rng.uniform(0, 500, 50), rng.uniform(0, 0.3, 50), rng.uniform(0, 0.1, 50)
    expected = cfg(error, limit, depth)
    as_tensors = [torch.tensor(x, device=device) for x in (error, limit, depth)]
    assert_tensor_matches(cfg(*as_tensors), expected, device, atol=1e-12)
    assert_tensor_matches(cfg(as_tensors[0], limit, as_tensors[2]), expected, device, atol=1e-12)  # mixed
    assert_tensor_matches(cfg.shaped_error(as_tensors[0]), cfg.shaped_error(error), device, atol=1e-12)


@pytest.mark.parametrize(("setting", "value"), [("limit_weight", "x"), ("cap_mm", "300"), ("penetration_weight", True),
                                                ("penetration_tolerance_m", None)])
def test_reward_settings_must_be_numbers(setting, value):
    with pytest.raises(ValueError, match=f"reward {setting} must be a number, got {value!r}"):
        RewardConfig(**{setting: value})
    with pytest.raises(ValueError, match="reward mode must be one of"):
        RewardConfig(mode=["raw"])
    with pytest.raises(ValueError, match="reward metric must be one of"):
        RewardConfig(metric=1)
    assert RewardConfig(cap_mm=np.float32(250.0), limit_weight=2).cap_mm == 250.0  # numpy numbers and ints are fine


def test_ground_truth_from_tensors_stays_on_the_bodys_device(device):
    body = load_body_model(device=device)
    rng = np.random.default_rng(4)
    pose = np.concatenate([rng.normal(0, 0.5, (5, 3)), rng.normal(0, 0.2, (5, 69))], axis=1).astype(np.float32)
    betas = rng.normal(0, 0.5, (5, 10)).astype(np.float32)
    R = np.tile(np.eye(3, dtype=np.float32), (5, 1, 1))
    expected = ground_truth(JOINT_SETS["h36m17"], body, pose, betas, R, batch=2)
    assert isinstance(expected, np.ndarray) and expected.dtype == np.float32
    got = ground_truth(JOINT_SETS["h36m17"], body, *(torch.tensor(a, device=device) for a in (pose, betas, R)), batch=2)
    assert isinstance(got, torch.Tensor) and got.device.type == device.type and got.dtype == torch.float32
    np.testing.assert_allclose(got.cpu().numpy(), expected, atol=1e-6)
