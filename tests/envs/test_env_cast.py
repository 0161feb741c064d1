"""The environment with a cast: each sample shows a training subject in its own build, recorded in info."""

import numpy as np
import pytest
import torch

from posegen_env.envs.action_space import uniform_actions
from posegen_env.envs.env import PoseGenEnv
from posegen_env.envs.task import PoseGenTask
from posegen_env.envs.vector_env import PoseGenVectorEnv


def test_samples_show_training_subjects_in_their_own_build(cast_file):
    task = PoseGenTask(avatar=cast_file)
    actions = uniform_actions(24, np.random.default_rng(0))
    result = task.evaluate(actions, [np.random.default_rng(s) for s in range(24)])
    subjects = result.data.subject
    assert set(subjects.tolist()) == {0, 1}  # the held-out person_2 never appears
    np.testing.assert_allclose(result.data.betas, task.avatar.betas[torch.as_tensor(subjects)].cpu().numpy())
    again = task.evaluate(actions[3:4], [np.random.default_rng(3)])  # a sample does not depend on its batch
    assert again.data.subject[0] == subjects[3]
    # Bit for bit on the CPU; on CUDA, colour sums use atomic adds, whose order can move a pixel by one level.
    difference = np.abs(again.data.images[0].astype(int) - result.data.images[3])
    assert difference.max() <= (0 if task.device.type == "cpu" else 1)
    assert result.info(5)["subject"] == int(subjects[5])


def test_datasets_record_each_crops_subject(cast_file, tmp_path):
    from posegen_env.data.dataset import load_dataset, write_dataset

    task = PoseGenTask(avatar=cast_file)
    result = task.evaluate(uniform_actions(6, np.random.default_rng(2)), [np.random.default_rng(s) for s in range(6)])
    write_dataset(tmp_path / "data", result.data)
    np.testing.assert_array_equal(load_dataset(tmp_path / "data").extras["subject"], result.data.subject)


def test_vector_env_infos_carry_subject_and_background(cast_file):
    env = PoseGenVectorEnv(8, avatar=cast_file)
    env.reset(seed=0)
    _, _, _, _, infos = env.step(uniform_actions(8, np.random.default_rng(1)))
    assert infos["subject"].shape == (8,) and infos["_subject"].all()
    assert all('"kind": "plain"' in b for b in infos["background"])
    single = PoseGenEnv(avatar=cast_file)
    single.reset(seed=0)
    _, _, _, _, info = single.step(uniform_actions(1, np.random.default_rng(1))[0])
    assert info["subject"] == int(infos["subject"][0])


def test_heldout_subjects_and_subjects_without_a_cast_are_refused(cast_file):
    with pytest.raises(ValueError, match="person_2 are held out"):
        PoseGenTask(avatar=cast_file, subjects="heldout")
    with pytest.raises(ValueError, match="held out"):
        PoseGenTask(avatar=cast_file, subjects=["person_0", "person_2"])
    task = PoseGenTask(avatar=cast_file, subjects="heldout", allow_heldout=True)
    assert task.subject_pool.tolist() == [2]
    with pytest.raises(ValueError, match="needs a cast"):
        PoseGenTask(subjects="heldout")
    with pytest.raises(Exception, match="no subject named"):
        PoseGenTask(avatar=cast_file, subjects=["nobody"])


def test_the_shipped_cast_and_its_baseline_load_by_name():
    import gymnasium as gym

    import posegen_env  # noqa: F401  (registers PoseGen-v0)
    from posegen_env.render.backgrounds import Backgrounds

    env = gym.make("PoseGen-v0", avatar="cast", estimator="cast-baseline", background=Backgrounds())
    task = env.unwrapped.task
    assert len(task.avatar.group("train")) == 8 and len(task.avatar.group("heldout")) == 2
    assert task.estimator.meta["avatar"] == task.avatar.identifier  # pre-trained on this very cast
    env.reset(seed=0)
    _, _, _, _, info = env.step(env.action_space.sample())
    assert info["subject"] in task.avatar.group("train").tolist()
