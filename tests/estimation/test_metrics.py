"""3D pose metrics against hand-computed cases."""

import json

import numpy as np
import pytest
import torch

from posegen_env.body.joints import EVAL_JOINT_NAMES, EVAL_JOINTS, JOINT_INDEX, NUM_JOINTS, SMPL_JOINT_NAMES
from posegen_env.estimation.metrics import (
    evaluate_poses,
    format_table,
    mpjpe,
    pa_mpjpe,
    pck3d,
    per_joint_errors,
    procrustes_align,
)


def skeletons(n: int = 3, seed: int = 0) -> np.ndarray:
    """Generic (non-planar, chiral) 24-joint point sets in metres."""
    return np.random.default_rng(seed).normal(scale=0.4, size=(n, NUM_JOINTS, 3))


def rot_y(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    return np.array([[np.cos(a), 0.0, np.sin(a)], [0.0, 1.0, 0.0], [-np.sin(a), 0.0, np.cos(a)]])


def random_rotations(n: int, seed: int) -> np.ndarray:
    """Uniform random proper rotations from unit quaternions."""
    w, x, y, z = np.random.default_rng(seed).normal(size=(4, n))
    norm = np.sqrt(w**2 + x**2 + y**2 + z**2)
    w, x, y, z = w / norm, x / norm, y / norm, z / norm
    return np.stack(
        [
            np.stack([1 - 2 * (y**2 + z**2), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
            np.stack([2 * (x * y + z * w), 1 - 2 * (x**2 + z**2), 2 * (y * z - x * w)], -1),
            np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x**2 + y**2)], -1),
        ],
        axis=1,
    )


def test_mpjpe_known_offset_counts_the_root_zero():
    gt = skeletons(2)
    pred = gt.copy()
    pred[0, 1:, 0] += 0.010  # every joint but the root 10 mm along x
    pred[1, 1:, 0] += 0.030
    np.testing.assert_allclose(mpjpe(pred, gt), [10.0 * 23 / 24, 30.0 * 23 / 24])
    # The pelvis is not in the evaluation subset, so there every joint is off by the full offset.
    np.testing.assert_allclose(mpjpe(pred, gt, joints=EVAL_JOINTS), [10.0, 30.0])


def test_global_translation_costs_nothing_after_root_alignment():
    gt = skeletons(4)
    pred = gt + np.array([[[0.5, -1.0, 3.0]], [[0.0, 0.2, 0.0]], [[1.0, 1.0, 1.0]], [[0.0, 0.0, 0.0]]])
    np.testing.assert_allclose(mpjpe(pred, gt), 0.0, atol=1e-9)
    np.testing.assert_allclose(mpjpe(pred, gt, joints=EVAL_JOINTS), 0.0, atol=1e-9)  # root outside the subset
    np.testing.assert_allclose(pck3d(pred, gt), 1.0)
    # Without root alignment the translation is the whole error.
    np.testing.assert_allclose(mpjpe(pred, gt, root=None)[1], 200.0)


def test_pa_mpjpe_forgives_a_similarity_transform():
    gt = skeletons(3)
    pred = 1.3 * gt @ rot_y(30.0).T + np.array([0.2, -0.1, 2.5])
    assert (mpjpe(pred, gt) > 50.0).all()
    np.testing.assert_allclose(pa_mpjpe(pred, gt), 0.0, atol=1e-6)
    np.testing.assert_allclose(pa_mpjpe(pred, gt, joints=EVAL_JOINTS), 0.0, atol=1e-6)
    np.testing.assert_allclose(procrustes_align(pred, gt), gt, atol=1e-9)


def test_pa_mpjpe_is_not_translation_or_scale_blind_to_pose_changes():
    gt = skeletons(1)
    pred = gt.copy()
    pred[0, JOINT_INDEX["head"]] += [0.0, 0.2, 0.0]
    assert pa_mpjpe(pred, gt)[0] > 1.0


def test_procrustes_uses_a_proper_rotation_for_a_mirrored_skeleton():
    gt = skeletons(2, seed=3)
    pred = gt * np.array([-1.0, 1.0, 1.0])  # left/right mirror: exactly matched only by a reflection
    x = pred - pred.mean(axis=1, keepdims=True)
    y = gt - gt.mean(axis=1, keepdims=True)

    # Sanity of the case: the best *improper* orthogonal map fits perfectly.
    u, _, vt = np.linalg.svd(np.einsum("nji,njk->nik", x, y))
    improper = np.swapaxes(vt, 1, 2) @ np.swapaxes(u, 1, 2)
    assert (np.linalg.det(improper) < 0).all()
    np.testing.assert_allclose(x @ np.swapaxes(improper, 1, 2), y, atol=1e-9)

    aligned = procrustes_align(pred, gt)
    assert (pa_mpjpe(pred, gt) > 10.0).all()
    for i in range(len(gt)):
        # Recover the linear part of the applied transform: scale * rotation with det > 0.
        m = np.linalg.lstsq(x[i], aligned[i] - aligned[i].mean(axis=0), rcond=None)[0].T
        scale = np.cbrt(np.linalg.det(m))
        assert scale > 0
        np.testing.assert_allclose((m / scale) @ (m / scale).T, np.eye(3), atol=1e-9)

        # Brute check: no sampled proper rotation (with its optimal scale) beats the returned fit.
        rx = np.einsum("rab,jb->rja", random_rotations(20000, seed=i), x[i])
        s = np.clip(np.einsum("rja,ja->r", rx, y[i]) / (x[i] ** 2).sum(), 0.0, None)  # s < 0 would reflect
        brute = ((s[:, None, None] * rx - y[i]) ** 2).sum(axis=(1, 2)).min()
        fitted = ((aligned[i] - gt[i]) ** 2).sum()
        assert fitted <= brute + 1e-9
        assert fitted > 1e-3  # and is not the (improper) perfect fit


def test_pck3d_known_fractions():
    gt = skeletons(2)
    pred = gt.copy()
    pred[:, 1:, 2] += 0.100  # 23 non-root joints at 100 mm
    pred[0, 1:7, 2] += 0.100  # sample 0: six of them at 200 mm
    np.testing.assert_allclose(pck3d(pred, gt), [18 / 24, 1.0])
    np.testing.assert_allclose(pck3d(pred, gt, threshold_mm=50.0), [1 / 24, 1 / 24])  # only the root
    np.testing.assert_allclose(pck3d(pred, gt, threshold_mm=250.0), [1.0, 1.0])
    np.testing.assert_allclose(pck3d(pred, gt, joints=[1, 2, 7, 8]), [0.5, 1.0])


def test_per_joint_errors_shape_and_values():
    gt = skeletons(2)
    pred = gt.copy()
    pred[:, :, 1] += np.arange(NUM_JOINTS) * 0.001  # joint j off by j mm (root by 0)
    errors = per_joint_errors(pred, gt)
    assert errors.shape == (2, NUM_JOINTS)
    np.testing.assert_allclose(errors, np.tile(np.arange(NUM_JOINTS, dtype=float), (2, 1)), atol=1e-9)
    subset = per_joint_errors(pred, gt, joints=EVAL_JOINTS)
    assert subset.shape == (2, len(EVAL_JOINTS))
    np.testing.assert_allclose(subset[0], EVAL_JOINTS, atol=1e-9)

    similar = 0.8 * gt @ rot_y(-45.0).T + 1.0
    aligned = per_joint_errors(similar, gt, joints=EVAL_JOINTS, aligned=True)
    assert aligned.shape == (2, len(EVAL_JOINTS))
    np.testing.assert_allclose(aligned, 0.0, atol=1e-6)
    assert per_joint_errors(similar, gt).max() > 10.0


def test_torch_inputs_match_numpy():
    gt = skeletons(2)
    pred = gt + np.random.default_rng(1).normal(scale=0.05, size=gt.shape)
    expected = mpjpe(pred, gt)
    got = mpjpe(torch.tensor(pred, dtype=torch.float64, requires_grad=True), torch.tensor(gt))
    assert isinstance(got, torch.Tensor) and not got.requires_grad  # tensors in, tensors out (the env's step)
    np.testing.assert_allclose(got.numpy(), expected)
    np.testing.assert_allclose(pa_mpjpe(torch.tensor(pred), torch.tensor(gt)), pa_mpjpe(pred, gt))


def test_evaluate_poses_keys_names_and_values():
    gt = skeletons(3)
    pred = gt.copy()
    pred[:, 1:, 0] += 0.010
    results = evaluate_poses(pred, gt)
    json.loads(json.dumps(results))  # plain python types only
    assert results["num_samples"] == 3
    assert set(results) == {"num_samples", "joint_set", "eval14", "all"}
    for subset in ("eval14", "all"):
        r = results[subset]
        assert set(r) == {"mpjpe_mm", "pa_mpjpe_mm", "pck3d_150_pct", "per_joint_mpjpe_mm"}
        assert all(type(v) is float for k, v in r.items() if k != "per_joint_mpjpe_mm")
        assert all(type(v) is float for v in r["per_joint_mpjpe_mm"].values())
        assert r["pck3d_150_pct"] == pytest.approx(100.0)
    assert list(results["eval14"]["per_joint_mpjpe_mm"]) == list(EVAL_JOINT_NAMES)
    assert list(results["all"]["per_joint_mpjpe_mm"]) == list(SMPL_JOINT_NAMES)
    assert results["eval14"]["mpjpe_mm"] == pytest.approx(10.0)
    assert results["eval14"]["pa_mpjpe_mm"] == pytest.approx(0.0, abs=1e-6)  # all 14 moved together
    assert results["all"]["pa_mpjpe_mm"] > 0.1  # the unmoved pelvis breaks the rigid motion
    assert results["all"]["mpjpe_mm"] == pytest.approx(10.0 * 23 / 24)
    assert results["all"]["per_joint_mpjpe_mm"]["pelvis"] == pytest.approx(0.0)
    assert results["eval14"]["per_joint_mpjpe_mm"]["head"] == pytest.approx(10.0)


def test_eval14_subset_is_the_eval_joints():
    gt = skeletons(1)
    outside = gt.copy()
    outside[0, JOINT_INDEX["left_hand"], 0] += 0.240
    r = evaluate_poses(outside, gt)
    assert r["eval14"]["mpjpe_mm"] == pytest.approx(0.0)
    assert r["all"]["mpjpe_mm"] == pytest.approx(10.0)
    assert r["eval14"]["pck3d_150_pct"] == pytest.approx(100.0)
    assert r["all"]["pck3d_150_pct"] == pytest.approx(100.0 * 23 / 24)

    inside = gt.copy()
    inside[0, JOINT_INDEX["head"], 0] += 0.140
    r = evaluate_poses(inside, gt)
    assert r["eval14"]["mpjpe_mm"] == pytest.approx(10.0)
    assert r["eval14"]["pck3d_150_pct"] == pytest.approx(100.0)
    assert r["eval14"]["per_joint_mpjpe_mm"]["head"] == pytest.approx(140.0)


def test_format_table_rows_and_numbers():
    gt = skeletons(2)
    shifted = gt.copy()
    shifted[:, 1:, 0] += 0.010
    table = format_table({"easy": evaluate_poses(gt, gt), "shifted": evaluate_poses(shifted, gt)})
    lines = table.splitlines()
    assert len(lines) == 4
    assert "MPJPE-14" in lines[0] and "PA-MPJPE-14" in lines[0] and "PCK3D@150" in lines[0]
    assert "MPJPE-all" in lines[0]
    assert lines[2] == "| easy | 2 | 0.0 | 0.0 | 100.0 | 0.0 |"
    assert lines[3] == "| shifted | 2 | 10.0 | 0.0 | 100.0 | 9.6 |"


@pytest.mark.parametrize(
    ("pred_shape", "gt_shape", "message"),
    [
        ((2, 24, 3), (2, 14, 3), "shapes differ"),
        ((2, 24, 3), (3, 24, 3), "shapes differ"),
        ((2, 24, 2), (2, 24, 2), r"must have shape \(N, J, 3\)"),
        ((24, 3), (24, 3), "add a batch axis"),
    ],
)
def test_bad_shapes_raise(pred_shape, gt_shape, message):
    with pytest.raises(ValueError, match=message):
        mpjpe(np.zeros(pred_shape), np.zeros(gt_shape))


def test_non_finite_values_raise_naming_the_samples():
    gt = skeletons(10)
    pred = gt.copy()
    pred[3, 5, 0] = np.nan
    pred[7, 0, 2] = np.inf
    for fn in (mpjpe, pa_mpjpe, pck3d, per_joint_errors, procrustes_align, evaluate_poses):
        with pytest.raises(ValueError, match=r"predictions contain NaN or inf values for samples \[3, 7\]"):
            fn(pred, gt)
    bad_gt = gt.copy()
    bad_gt[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"ground truth contains NaN .*samples \[0\]"):
        mpjpe(gt, bad_gt)


def test_bad_joint_selection_and_layout_raise():
    gt = skeletons(1)
    with pytest.raises(ValueError, match="out of range"):
        mpjpe(gt, gt, joints=[0, 24])
    with pytest.raises(ValueError, match="non-empty"):
        mpjpe(gt, gt, joints=[])
    with pytest.raises(ValueError, match="the smpl24 joint set has 24 joints; got 14"):
        evaluate_poses(gt[:, :14], gt[:, :14])
    # Other layouts work with the metrics themselves.
    assert mpjpe(gt[:, :14], gt[:, :14]).shape == (1,)
