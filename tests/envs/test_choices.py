"""Actions that choose the subject and the background: trailing components, bins over [-1, 1]."""

import json

import numpy as np
import pytest

from agents.loop.collect import collect
from agents.policies import POLICIES, make_policy
from posegen_env.envs.action_space import (
    ACTION_DIM,
    action_dim,
    check_choose,
    choice_action,
    choice_index,
    decode,
    uniform_actions,
)
from posegen_env.envs.env import PoseGenEnv
from posegen_env.envs.task import PoseGenTask
from posegen_env.envs.vector_env import PoseGenVectorEnv
from posegen_env.render.backgrounds import TEXTURES, Backgrounds


def test_choices_are_bins_and_their_centres():
    assert check_choose("background,subject") == ("subject", "background") == check_choose(["background", "subject"])
    assert action_dim() == ACTION_DIM and action_dim("subject,background") == ACTION_DIM + 2
    assert choice_index(np.array([-1.0, -0.51, -0.49, 0.99, 1.0]), 4).tolist() == [0, 0, 1, 3, 3]
    centres = choice_action(np.arange(5), 5)
    assert choice_index(centres, 5).tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="out of range"):
        choice_action(5, 5)
    with pytest.raises(ValueError, match="at most once"):
        check_choose("subject,camera")
    a = uniform_actions(3, np.random.default_rng(0), ACTION_DIM + 1)
    assert set(decode(a, "subject").choices) == {"subject"}
    with pytest.raises(ValueError, match="plus 1 choices"):
        decode(a[:, :ACTION_DIM], "subject")


def test_actions_pick_the_subject_and_background_style(cast_file):
    task = PoseGenTask(avatar=cast_file, background=Backgrounds(), choose="subject,background")
    styles = task.background.styles
    assert styles == ("plain", *TEXTURES) and task.action_dim == ACTION_DIM + 2
    actions = uniform_actions(len(styles), np.random.default_rng(0), task.action_dim)
    actions[:, -2] = task.subject_action("person_1")
    actions[:, -1] = [task.background_action(s) for s in styles]
    result = task.evaluate(actions, [np.random.default_rng(s) for s in range(len(styles))])
    assert result.data.subject.tolist() == [1] * len(styles)
    np.testing.assert_allclose(result.data.betas, np.full((len(styles), 10), 0.0), atol=1e-6)  # person_1's build
    kinds = [json.loads(b)["kind"] for b in result.data.background]
    assert kinds == ["plain", *TEXTURES]
    actions[:, -2] = task.subject_action(0)
    assert task.evaluate(actions[:2], [np.random.default_rng(s) for s in range(2)]).data.subject.tolist() == [0, 0]


def test_choices_that_cannot_be_made_are_refused(cast_file):
    with pytest.raises(ValueError, match="needs a cast"):
        PoseGenTask(choose="subject")
    with pytest.raises(ValueError, match="needs a Backgrounds mix"):
        PoseGenTask(avatar=cast_file, choose="background")
    task = PoseGenTask(avatar=cast_file, background=Backgrounds(mix={"texture": 1}), choose="subject,background")
    with pytest.raises(ValueError, match="not one this task draws from"):
        task.subject_action("person_2")  # held out
    with pytest.raises(Exception, match="out of range"):
        task.subject_action(7)
    with pytest.raises(ValueError, match="not in this task's mix"):
        task.background_action("plain")
    with pytest.raises(ValueError, match=r"shape \(87,\)"):
        task.evaluate(uniform_actions(1, np.random.default_rng(0)), [np.random.default_rng(0)])


def test_envs_and_every_policy_work_with_choices(cast_file):
    env = PoseGenVectorEnv(4, avatar=cast_file, background=Backgrounds(), choose="subject,background")
    assert env.single_action_space.shape == (ACTION_DIM + 2,)
    assert PoseGenEnv(task=env.task).action_space.shape == (ACTION_DIM + 2,)
    for name in POLICIES:
        policy = make_policy(name, seed=0, action_dim=env.task.action_dim)
        if policy.learns:
            policy.learn(env, 8)
        got = collect(policy, env, 4, seed=0)
        assert got.actions.shape == (4, ACTION_DIM + 2), name
        assert np.abs(got.actions).max() <= 1.0
