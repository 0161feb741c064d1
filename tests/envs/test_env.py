"""PoseGen-v0: registration, env checkers, action mapping, reward, vector == single, bad input."""

import re

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import posegen_env  # noqa: F401  (registers PoseGen-v0)
from agents.policies.sb3 import SB3VecEnv
from posegen_env.body.joints import EVAL_JOINTS
from posegen_env.body.plausibility import penetration_depth
from posegen_env.body.pose_space import is_within_limits
from posegen_env.distributions import BaseCameraSampler, BasePoseSampler
from posegen_env.envs.action_space import (
    ACTION_DIM,
    check_actions,
    decode,
    encode,
    uniform_actions,
)
from posegen_env.envs.env import PoseGenEnv
from posegen_env.envs.reward import RewardConfig
from posegen_env.envs.task import PoseGenTask
from posegen_env.envs.vector_env import PoseGenVectorEnv
from posegen_env.estimation.spec import EstimatorError
from posegen_env.render.avatar import AvatarError


def zero_estimator(images: torch.Tensor) -> torch.Tensor:
    """Predicts every joint at the root: its MPJPE is the mean distance of the true joints from the root."""
    return torch.zeros(images.shape[0], 24, 3)


@pytest.fixture(scope="module")
def task():
    return PoseGenTask()


def test_registered_and_passes_both_checkers(task):
    assert "PoseGen-v0" in gym.registry
    env = gym.make("PoseGen-v0", render_mode="rgb_array", task=task)
    gym_check_env(env.unwrapped)
    sb3_check_env(env.unwrapped)
    obs, _ = env.reset(seed=3)
    obs2, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert terminated is True and truncated is False and isinstance(reward, float)
    assert env.render().shape == (64, 64, 3) and env.render().dtype == np.uint8
    for key in ("global_orient", "body_pose", "betas", "camera", "K", "R", "t", "joints3d", "joints2d",
                "predicted_joints3d", "mpjpe_mm", "pa_mpjpe_mm", "limit_violation", "penetration_m"):
        assert key in info
    assert info["body_pose"].shape == (69,) and info["joints3d"].shape == (24, 3)
    assert set(info["camera"]) >= {"azimuth_deg", "elevation_deg", "distance", "roll_deg", "fov_deg"}


def test_make_accepts_keyword_arguments_and_vector_entry_point(task):
    env = gym.make("PoseGen-v0", estimator=zero_estimator, image_size=48, reward={"mode": "raw"}, context_dim=3)
    assert env.observation_space.shape == (3,) and env.unwrapped.task.image_size == 48
    venv = gym.make_vec("PoseGen-v0", num_envs=2, vectorization_mode="vector_entry_point", task=task)
    assert venv.action_space.shape == (2, ACTION_DIM)


def test_seeding_is_reproducible(task):
    env = PoseGenEnv(task=task)
    a = np.random.default_rng(0).uniform(-1, 1, ACTION_DIM).astype(np.float32)
    results = []
    for _ in range(2):
        obs, _ = env.reset(seed=11)
        results.append((obs, env.step(a)[1]))
    assert np.array_equal(results[0][0], results[1][0]) and results[0][1] == results[1][1]


def test_action_mapping_stays_inside_joint_limits_and_covers_the_camera_sphere():
    rng = np.random.default_rng(0)
    inside = decode(uniform_actions(5000, rng))
    assert is_within_limits(inside.body_pose).all() and (inside.limit_violation < 1e-9).all()
    extreme = decode(rng.choice([-1.0, 1.0], size=(200, ACTION_DIM)))
    assert is_within_limits(extreme.body_pose).all() and (extreme.limit_violation > 0).all()
    cams = inside.cameras
    az_bins = np.histogram(cams.azimuth_deg, bins=12, range=(-180, 180))[0]
    assert (az_bins > 0.5 * len(cams) / 12).all()  # every direction around the body
    assert cams.elevation_deg.min() < -55 and cams.elevation_deg.max() > 80  # from below to nearly overhead
    # uniform on the sphere: equal areas (equal bands of sin(elevation)) get equal counts
    counts = np.histogram(np.sin(np.deg2rad(cams.elevation_deg)), bins=5)[0]
    assert counts.min() > 0.8 * counts.mean()
    assert cams.distance.min() < 1.7 and cams.distance.max() > 10


def test_encode_inverts_decode_and_keeps_the_image():
    rng = np.random.default_rng(1)
    poses, cams = BasePoseSampler().sample(50, rng), BaseCameraSampler().sample(50, rng)
    s = decode(encode(poses, cams))
    np.testing.assert_allclose(s.body_pose, poses["body_pose"], atol=1e-9)
    np.testing.assert_allclose(s.betas, poses["betas"], atol=1e-9)
    # heading moved from the body into the camera: the camera sees the same body
    from scipy.spatial.transform import Rotation

    for i in range(50):
        c0, c1 = cams.to_camera(i), s.cameras.to_camera(i)
        rel0 = Rotation.from_matrix(c0.R) * Rotation.from_rotvec(poses["global_orient"][i])
        rel1 = Rotation.from_matrix(c1.R) * Rotation.from_rotvec(s.global_orient[i])
        assert (rel0.inv() * rel1).magnitude() < 1e-6


def test_bad_actions_get_clear_errors(task):
    env = PoseGenEnv(task=task)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="NaN or inf"):
        env.step(np.full(ACTION_DIM, np.nan, np.float32))
    with pytest.raises(ValueError, match="leave the action box"):
        env.step(np.full(ACTION_DIM, 1.5, np.float32))
    with pytest.raises(ValueError, match=f"shape \\({ACTION_DIM},\\)"):
        env.step(np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="inf"):
        check_actions(np.full((2, ACTION_DIM), np.inf))
    with pytest.raises(ValueError, match="actions must be numbers .* got dict"):
        env.step({"pose": np.zeros(ACTION_DIM)})
    _, reward, *_ = env.step(torch.zeros(ACTION_DIM, requires_grad=True))  # a policy's output, grad and all
    assert np.isfinite(reward)
    venv = PoseGenVectorEnv(num_envs=2, task=task)
    for seed in (1.5, -1, [0, 1, 2], True):
        with pytest.raises(ValueError, match=rf"reset\(seed={re.escape(repr(seed))}\): give a non-negative"):
            venv.reset(seed=seed)
    with pytest.raises(ValueError, match="got dict"):
        venv.step({"a": 1})


def test_reward_on_a_toy_estimator_with_known_error(task):
    toy = PoseGenTask(avatar=task.avatar, estimator=zero_estimator, reward={"mode": "capped", "cap_mm": 150.0})
    env = PoseGenEnv(task=toy)
    env.reset(seed=5)
    action = uniform_actions(1, np.random.default_rng(5))[0].astype(np.float32)
    _, reward, _, _, info = env.step(action)
    joints = info["joints3d"][list(EVAL_JOINTS)]
    expected_mm = 1000 * np.linalg.norm(joints - info["joints3d"][0], axis=-1).mean()
    assert info["mpjpe_mm"] == pytest.approx(expected_mm, rel=1e-4)
    excess = max(0.0, info["penetration_m"] - 0.02)
    assert reward == pytest.approx(min(expected_mm, 150.0) / 1000 - 5.0 * excess, abs=1e-6)
    assert info["penetration_m"] == pytest.approx(float(penetration_depth(info["joints3d"])), abs=1e-9)


def test_reward_shapes_and_penalties():
    cfg = RewardConfig(mode="band", cap_mm=200)
    np.testing.assert_allclose(cfg.shaped_error([100, 200, 300, 500]), [100, 200, 100, 0])
    assert RewardConfig(mode="capped", cap_mm=200).shaped_error(350) == 200
    cfg = RewardConfig(mode="raw", limit_weight=2.0, penetration_weight=10.0, penetration_tolerance_m=0.01)
    assert cfg(300.0, 0.1, 0.03) == pytest.approx(0.3 - 0.2 - 0.2)
    with pytest.raises(ValueError, match="reward mode"):
        RewardConfig(mode="max")
    with pytest.raises(ValueError, match="unknown reward settings"):
        RewardConfig.from_any({"cap": 3})


def test_limbs_through_the_torso_are_penalised():
    joints = np.zeros((24, 3))
    joints[[3, 6, 9, 12, 15]] = [[0, 0.1, 0], [0, 0.25, 0], [0, 0.4, 0], [0, 0.5, 0], [0, 0.6, 0]]
    joints[[1, 4, 7]] = [[0.1, -0.05, 0], [0.1, -0.45, 0], [0.1, -0.85, 0]]
    joints[[2, 5, 8]] = [[-0.1, -0.05, 0], [-0.1, -0.45, 0], [-0.1, -0.85, 0]]
    joints[[16, 18, 20]] = [[0.18, 0.45, 0], [0.2, 0.2, 0], [0.2, 0.0, 0]]
    joints[[17, 19, 21]] = [[-0.18, 0.45, 0], [-0.2, 0.2, 0], [-0.2, 0.0, 0]]
    assert penetration_depth(joints) == 0.0
    joints[20] = [-0.1, 0.3, 0.0]  # left forearm driven through the torso
    assert penetration_depth(joints) > 0.05


def test_vector_env_equals_single_envs(task):
    n, seed = 4, 21
    venv = PoseGenVectorEnv(num_envs=n, task=task)
    obs, _ = venv.reset(seed=seed)
    actions = uniform_actions(n, np.random.default_rng(0)).astype(np.float32)
    vobs, vrew, vterm, vtrunc, vinfo = venv.step(actions)
    assert vterm.all() and not vtrunc.any()
    single = PoseGenEnv(task=task)
    # On CUDA the estimator's convolutions run in TF32 with kernels chosen by batch size: a crop scored in
    # a batch of one and in a batch of four differs by up to ~0.1 mm (the crops themselves agree).
    tolerance_mm = 0.05 if task.device.type == "cpu" else 0.5
    for i in range(n):
        o, _ = single.reset(seed=seed + i)
        np.testing.assert_array_equal(o, obs[i])
        np.testing.assert_array_equal(vinfo["final_obs"][i], o)
        _, r, *_, info = single.step(actions[i])
        assert r == pytest.approx(vrew[i], abs=2e-3 * tolerance_mm)
        assert info["mpjpe_mm"] == pytest.approx(vinfo["mpjpe_mm"][i], abs=tolerance_mm)
        np.testing.assert_allclose(info["joints3d"], vinfo["joints3d"][i], atol=1e-5)
        o2, _ = single.reset()  # the next context equals the vector env's same-step reset
        np.testing.assert_array_equal(o2, vobs[i])


def stacked_infos(result) -> dict:
    """The per-sample infos stacked one key at a time, with a ``_key`` mask beside each."""
    rows = [result.info(i) for i in range(len(result))]
    infos = {}
    for key, value in rows[0].items():
        if isinstance(value, dict):
            infos[key] = {k: np.array([r[key][k] for r in rows]) for k in value}
        else:
            infos[key] = np.stack([np.asarray(r[key]) for r in rows])
        infos[f"_{key}"] = np.ones(len(rows), bool)
    return infos


def assert_same_arrays(got: dict, want: dict) -> None:
    assert list(got) == list(want)
    for key, value in want.items():
        if isinstance(value, dict):
            assert_same_arrays(got[key], value)
        else:
            assert got[key].dtype == value.dtype and got[key].shape == value.shape, key
            np.testing.assert_array_equal(got[key], value, err_msg=key)


def test_columnar_infos_equal_the_stacked_per_sample_infos(task):
    actions = uniform_actions(3, np.random.default_rng(2))
    result = task.evaluate(actions, [np.random.default_rng(i) for i in range(3)])
    infos = result.infos()
    assert_same_arrays(infos, stacked_infos(result))
    assert isinstance(result.info(1)["mpjpe_mm"], float) and isinstance(result.info(1)["camera"]["fov_deg"], float)
    assert infos["camera"]["azimuth_deg"].shape == (3,) and infos["_camera"].all()


def test_sb3_adapter_steps_the_whole_batch(task):
    vec = SB3VecEnv(PoseGenVectorEnv(num_envs=3, task=task))
    vec.seed(4)
    obs = vec.reset()
    assert obs.shape == (3, 8)
    vec.step_async(uniform_actions(3, np.random.default_rng(0)))
    new_obs, rewards, dones, infos = vec.step_wait()
    assert dones.all() and rewards.dtype == np.float32 and len(infos) == 3
    np.testing.assert_array_equal(infos[0]["terminal_observation"], obs[0])


def test_mismatched_estimator_and_missing_files_get_clear_errors(task, tmp_path):
    def wrong_shape(images):
        return torch.zeros(images.shape[0], 17, 3)

    unprobed = PoseGenTask(avatar=task.avatar, estimator=wrong_shape)  # a callable is checked on its first batch
    with pytest.raises(EstimatorError, match="returned 17 joints, but declares the smpl24 set of 24"):
        unprobed.evaluate(np.zeros((2, unprobed.action_dim)), [np.random.default_rng(k) for k in range(2)])
    with pytest.raises(EstimatorError, match="file not found"):
        PoseGenTask(avatar=task.avatar, estimator=str(tmp_path / "missing.pt"))
    with pytest.raises(AvatarError, match="not found"):
        PoseGenTask(avatar=tmp_path / "missing_avatar.pt")
    with pytest.raises(ValueError, match="image_size"):
        PoseGenTask(avatar=task.avatar, image_size=4)


@pytest.mark.parametrize("make, message", [
    (lambda task: PoseGenVectorEnv(num_envs=0, task=task), "num_envs must be a positive int, got 0"),
    (lambda task: PoseGenVectorEnv(num_envs=True, task=task), "num_envs must be a positive int, got True"),
    (lambda task: PoseGenEnv(context_dim=2.0, task=task), "context_dim must be a positive int, got 2.0"),
    (lambda task: PoseGenTask(avatar=task.avatar, image_size=8),
     "image_size must be an int from 16 to 2048 (crop side in pixels), got 8"),
    (lambda task: PoseGenEnv(render_mode="human", task=task), "render_mode must be None or 'rgb_array', got 'human'"),
    (lambda task: PoseGenVectorEnv(num_envs=2, render_mode="ansi", task=task),
     "render_mode must be None or 'rgb_array', got 'ansi'"),
], ids=["num_envs-zero", "num_envs-bool", "context_dim-float", "image_size-small", "render_mode", "vector-render_mode"])
def test_bad_arguments_get_clear_errors(task, make, message):
    with pytest.raises(ValueError) as info:
        make(task)
    assert str(info.value) == message


def test_search_policy_learns_towards_higher_reward_and_round_trips(task, tmp_path):
    from agents.policies import make_policy

    toy = PoseGenTask(avatar=task.avatar, estimator=zero_estimator, reward={"mode": "raw"})
    env = PoseGenVectorEnv(num_envs=64, task=toy)
    policy = make_policy("search", num_agents=2, population_per_agent=32, seed=0)

    def mean_reward() -> float:  # of the policy's own draws, always the same anchors and noise
        contexts = np.random.default_rng(9).uniform(-1, 1, (64, 8))
        return float(np.mean(env.step_batch(policy.act(contexts, np.random.default_rng(10)))[2]))

    before, curve = mean_reward(), []
    policy.learn(env, 640, lambda steps, rewards: curve.append(steps))
    assert curve == [64 * k for k in range(1, 11)]
    assert mean_reward() > before  # spread-out limbs: larger distances from the root
    policy.save(tmp_path)
    again = make_policy("search", num_agents=2, population_per_agent=32)
    again.load(tmp_path)
    contexts = np.random.default_rng(0).uniform(-1, 1, (6, 8))
    np.testing.assert_array_equal(policy.act(contexts, np.random.default_rng(1)),
                                  again.act(contexts, np.random.default_rng(1)))
    actions = policy.act(contexts, np.random.default_rng(2))
    assert np.abs(actions).max() <= 1 and is_within_limits(decode(actions).body_pose).all()


def test_a_batch_too_large_for_the_gpu_is_rendered_in_smaller_parts(task, monkeypatch):
    """An out-of-memory render halves ``render_batch`` (with a warning) and renders the same crops; one
    that fails even one crop at a time says what to lower instead of CUDA's raw error."""
    from posegen_env.envs import task as task_module

    real = task_module.render_crop_tensors

    def small_gpu(*args, batch, **kwargs):
        if batch > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return real(*args, batch=batch, **kwargs)

    actions = uniform_actions(5, np.random.default_rng(7))
    expected = task.evaluate(actions, [np.random.default_rng(k) for k in range(5)])
    monkeypatch.setattr(task_module, "render_crop_tensors", small_gpu)
    monkeypatch.setattr(task, "render_batch", 8)
    with pytest.warns(UserWarning, match="rendering 2 crops at a time"):
        got = task.evaluate(actions, [np.random.default_rng(k) for k in range(5)])
    assert task.render_batch == 2
    # Matrix products round by their batch's shape, so a pixel may move by one level; the draws are the same.
    assert np.abs(got.data.images.astype(int) - expected.data.images).max() <= 1
    np.testing.assert_array_equal(got.data.background, expected.data.background)
    np.testing.assert_allclose(got.reward, expected.reward, atol=1e-3)
    monkeypatch.setattr(task_module, "render_crop_tensors", lambda *a, **k: (_ for _ in ()).throw(
        torch.cuda.OutOfMemoryError("CUDA out of memory")))
    monkeypatch.setattr(task, "render_batch", 1)
    with pytest.raises(MemoryError, match="smaller image_size"):
        task.evaluate(actions[:1], [np.random.default_rng(0)])
