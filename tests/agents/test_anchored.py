"""Anchored policies: anchors are base bodies from every view, steps stay within reach, SB3 sees the anchor."""

import numpy as np
import pytest
import torch

from agents.policies import make_policy
from agents.policies.anchored import REACH, Anchoring
from agents.policies.sb3 import AnchoredVecEnv
from posegen_env.body.pose_space import is_within_limits
from posegen_env.envs.action_space import ACTION_DIM, CAMERA_SLICE, decode, uniform_actions
from posegen_env.envs.task import PoseGenTask
from posegen_env.envs.vector_env import PoseGenVectorEnv

AZIMUTH = CAMERA_SLICE.start


def zero_estimator(images: torch.Tensor) -> torch.Tensor:
    return torch.zeros(images.shape[0], 24, 3)


def reach_used(actions: np.ndarray, anchors: np.ndarray) -> float:
    """The largest move of any component from its anchor (azimuth measured around the circle)."""
    gap = np.abs(actions - anchors)
    gap[:, AZIMUTH] = np.minimum(gap[:, AZIMUTH], 2.0 - gap[:, AZIMUTH])
    return float(gap.max())


@pytest.fixture(scope="module")
def task():
    return PoseGenTask(estimator=zero_estimator, reward={"mode": "raw"})


def test_anchors_are_base_bodies_seen_from_every_view():
    base_only = Anchoring(uniform_share=0.0)
    anchors = base_only.draw(400, np.random.default_rng(0))
    sample = decode(anchors)
    assert is_within_limits(sample.body_pose).all()
    azimuth, elevation = sample.cameras.azimuth_deg, sample.cameras.elevation_deg
    assert np.histogram(azimuth, bins=4, range=(-180, 180))[0].min() > 60  # every side of the body
    assert elevation.min() < -40 and elevation.max() > 70  # from below and from above
    assert np.abs(sample.betas).max() < 2.5  # base body shapes, not the extremes of the box
    np.testing.assert_array_equal(anchors, base_only.draw(400, np.random.default_rng(0)))


def test_a_share_of_anchors_is_uniform_over_the_whole_box():
    np.testing.assert_array_equal(Anchoring(uniform_share=1.0).draw(50, np.random.default_rng(8)),
                                  uniform_actions(50, np.random.default_rng(8)))
    mixed = Anchoring(uniform_share=0.25).draw(2000, np.random.default_rng(9))
    uniform = np.all(mixed == uniform_actions(2000, np.random.default_rng(9)), axis=1)  # the rest are base bodies
    assert 0.22 < uniform.mean() < 0.28
    assert np.abs(decode(mixed[~uniform]).betas).mean() < 0.5 < 1.0 < np.abs(decode(mixed[uniform]).betas).mean()
    with pytest.raises(ValueError, match=r"uniform_share must be in \[0, 1\]"):
        Anchoring(uniform_share=1.5)
    policy = make_policy("anchor", anchoring=Anchoring(uniform_share=1.0))
    np.testing.assert_array_equal(policy.act(np.zeros((5, 8)), np.random.default_rng(10)),
                                  uniform_actions(5, np.random.default_rng(10)))


def test_steps_stay_within_reach_inside_the_box_and_wrap_the_azimuth():
    rng, anchoring = np.random.default_rng(1), Anchoring()
    anchors = anchoring.draw(300, rng)
    np.testing.assert_allclose(anchoring.move(anchors, np.zeros_like(anchors)), anchors)
    moved = anchoring.move(anchors, rng.uniform(-1, 1, anchors.shape))
    assert np.abs(moved).max() <= 1.0 and is_within_limits(decode(moved).body_pose).all()
    assert reach_used(moved, anchors) <= REACH + 1e-9
    edge = anchors[:1].copy()
    edge[0, AZIMUTH] = 0.9
    step = np.zeros_like(edge)
    step[0, AZIMUTH] = 1.0
    assert anchoring.move(edge, step)[0, AZIMUTH] == pytest.approx(0.9 + REACH - 2.0)  # past +180 deg: back at -180


def test_sb3_view_shows_the_anchor_and_steps_from_it(task):
    vec = AnchoredVecEnv(PoseGenVectorEnv(num_envs=4, task=task), np.random.default_rng(2))
    vec.seed(3)
    obs = vec.reset()
    assert obs.shape == (4, 8 + ACTION_DIM) and vec.observation_space.contains(obs[0])
    anchors = obs[:, 8:].astype(np.float64)
    vec.step_async(np.zeros((4, ACTION_DIM), np.float32))
    new_obs, rewards, dones, infos = vec.step_wait()
    assert dones.all() and rewards.dtype == np.float32
    np.testing.assert_array_equal(infos[1]["terminal_observation"], obs[1])
    expected = decode(anchors).body_pose  # a zero step renders the anchor itself
    np.testing.assert_allclose(np.stack([i["body_pose"] for i in infos]), expected, atol=1e-5)
    assert not np.allclose(new_obs[:, 8:], obs[:, 8:])  # every episode gets a fresh anchor


def test_anchored_ppo_learns_acts_near_anchors_and_round_trips(task, tmp_path):
    env = PoseGenVectorEnv(num_envs=16, task=task)
    policy = make_policy("ppo", seed=0, anchoring=Anchoring(reach=0.1))
    seen = []
    policy.learn(env, 64, lambda steps, rewards: seen.append(steps))
    assert seen[-1] == 64
    contexts = np.random.default_rng(4).uniform(-1, 1, (10, 8))
    actions = policy.act(contexts, np.random.default_rng(5))
    assert np.abs(actions).max() <= 1.0 and is_within_limits(decode(actions).body_pose).all()
    anchors = Anchoring().draw(10, np.random.default_rng(5))  # act draws its anchors first from the same rng
    assert reach_used(actions, anchors) <= 0.1 + 1e-6
    policy.save(tmp_path)
    again = make_policy("ppo", seed=0, anchoring=Anchoring(reach=0.1))
    again.load(tmp_path)
    np.testing.assert_allclose(again.act(contexts, np.random.default_rng(5)), actions, atol=1e-6)


def test_anchor_policy_samples_the_anchors_themselves():
    contexts = np.zeros((7, 8))
    np.testing.assert_array_equal(make_policy("anchor").act(contexts, np.random.default_rng(6)),
                                  Anchoring().draw(7, np.random.default_rng(6)))


def test_every_anchored_policy_takes_the_anchoring():
    short = Anchoring(reach=0.05)
    search = make_policy("search", num_agents=2, anchoring=short)
    actions = search.act(np.zeros((50, 8)), np.random.default_rng(7))
    assert reach_used(actions, short.draw(50, np.random.default_rng(7))) <= 0.05 + 1e-9
    assert Anchoring(reach=2.0).reach == 2.0
    with pytest.raises(ValueError, match=r"reach must be in \(0, 2\]"):
        Anchoring(reach=0.0)
    for name in ("anchor", "search", "ppo", "sac"):
        assert make_policy(name, anchoring=short).anchoring is short
