"""People drawn from the outfit family: baked onto the shared geometry, apart by stream, checked at the door."""

import numpy as np
import pytest
import torch

from posegen_env.body.pose_library import library_array
from posegen_env.data.base_splits import split_people
from posegen_env.envs.action_space import uniform_actions
from posegen_env.envs.task import PoseGenTask
from posegen_env.render.avatar import AvatarError, load_avatar
from posegen_env.render.avatar.loading import load_renderer
from posegen_env.render.avatar.people import STREAMS, PeopleRenderer, draw_person, person_rng
from posegen_env.render.camera import orbit_camera
from posegen_env.render.mesh.appearance import ProceduralAppearance
from posegen_env.render.mesh.renderer import MeshRenderer
from posegen_env.suites.heldout_people import HELDOUT_STREAM, with_heldout_people


@pytest.fixture(scope="module")
def people():
    return PeopleRenderer(load_avatar(), train=6, validation=2)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(-10 * np.log10(((a - b) ** 2).mean()))


def test_a_person_is_a_seed_and_streams_never_share_one():
    outfit, betas = draw_person(STREAMS["train"], 3)
    again, betas_again = draw_person(STREAMS["train"], 3)
    assert outfit == again and np.array_equal(betas, betas_again)
    seen = {draw_person(STREAMS["train"], k)[0] for k in range(200)}
    assert len(seen) == 200  # 200 training people, 200 looks
    others = {draw_person(s, k)[0] for s in (STREAMS["validation"], HELDOUT_STREAM) for k in range(100)}
    assert not seen & others
    assert np.abs(betas).max() <= 2.0 and betas.std() > 0.3  # builds vary with the person


def test_a_baked_person_looks_like_the_mesh_in_their_outfit(people):
    """The baked table against the ground-truth mesh renderer, same person, pose and views."""
    go, bp = library_array()
    cams = [orbit_camera(a, e, 3.0, target=(0, -0.3, 0), fov_deg=40, width=96) for a, e in ((20, 0), (200, 25))]
    k = 4
    outfit = people.colours.outfits[k]
    pose = torch.tensor(go[5:6]).float(), torch.tensor(bp[5:6]).float()
    truth, _ = MeshRenderer(people.body, appearance=ProceduralAppearance.for_body(people.body, outfit)).render(
        *pose, people.betas[k:k + 1], torch.zeros(1, 3), cams)
    baked = people.render(*pose, cameras=cams, subjects=k, background=(255, 255, 255)).rgb.numpy()
    other = people.render(*pose, cameras=cams, subjects=0, betas=people.betas[k:k + 1],
                          background=(255, 255, 255)).rgb.numpy()
    assert _psnr(baked, truth / 255.0) > 27.0
    assert _psnr(other, truth / 255.0) < _psnr(baked, truth / 255.0) - 3.0  # another person does not pass


def test_a_mixed_batch_renders_each_person_as_alone(people):
    go, bp = library_array()
    cams = [orbit_camera(30.0 * i, 10.0, 3.0, target=(0, -0.3, 0), fov_deg=40, width=48) for i in range(3)]
    pose = torch.tensor(go[:3]).float(), torch.tensor(bp[:3]).float()
    mixed = people.render(*pose, cameras=cams, subjects=[1, 5, 2]).rgb
    for i, k in enumerate((1, 5, 2)):
        alone = people.render(pose[0][i:i + 1], pose[1][i:i + 1], cameras=cams[i:i + 1], subjects=k).rgb
        assert torch.allclose(mixed[i], alone[0], atol=1e-4)  # float32 sums differ by batch on some CPUs
    assert people.colours.baked[[1, 2, 5]].all() and not people.colours.baked[3]  # baked on first use


def test_groups_and_the_guards_validation_people(people):
    assert people.group("train").tolist() == list(range(6))
    assert people.group("validation").tolist() == [6, 7]
    assert split_people(people, "val").tolist() == [6, 7] and split_people(people, "train").tolist() == list(range(6))
    assert people.names[0] == "train-00000" and people.names[6] == "validation-00000"


def test_the_task_draws_and_records_training_people_only(people):
    task = PoseGenTask(avatar=people)
    result = task.evaluate(uniform_actions(16, np.random.default_rng(0)), [np.random.default_rng(s) for s in range(16)])
    assert set(result.data.subject.tolist()) <= set(range(6)) and len(set(result.data.subject.tolist())) > 2
    np.testing.assert_allclose(result.data.betas, people.betas[torch.as_tensor(result.data.subject)].numpy())
    assert result.info(3)["subject"] == int(result.data.subject[3])
    chooser = PoseGenTask(avatar=people, choose=("subject",))
    action = uniform_actions(1, np.random.default_rng(1))
    action = np.concatenate([action, [[chooser.subject_action("train-00004")]]], axis=1)
    assert chooser.evaluate(action, [np.random.default_rng(0)]).data.subject.tolist() == [4]


def test_held_out_and_validation_people_stay_out_of_training():
    people = PeopleRenderer(load_avatar(), train=2, validation=1)
    with_heldout_people(people)
    assert people.names[-1].startswith("heldout-") and len(people.group("heldout")) == 16
    for group in ("heldout", "validation"):
        with pytest.raises(ValueError, match="held out: only the test suites and the in-distribution guard"):
            PoseGenTask(avatar=people, subjects=group)
    with pytest.raises(AvatarError, match="training or validation stream"):
        people.add_people("mine", STREAMS["train"], 3, heldout=True)


def test_bad_people_settings_are_refused():
    with pytest.raises(AvatarError, match=r"index must be a whole number in 0\.\.2147483647, got -1"):
        person_rng(0, -1)
    with pytest.raises(AvatarError, match="whole number in"):
        person_rng(0, 2**31)
    with pytest.raises(AvatarError, match="at least one training person"):
        PeopleRenderer(load_avatar(), train=0)
    with pytest.raises(AvatarError, match="validation people must be a whole number >= 0, got -2"):
        PeopleRenderer(load_avatar(), train=2, validation=-2)
    with pytest.raises(AvatarError, match="baked, not fitted"):
        PeopleRenderer(load_avatar(), train=1, validation=0).avatar(0)


def test_people_is_a_shipped_renderer_name():
    people = load_renderer("people")
    assert isinstance(people, PeopleRenderer) and len(people.group("train")) == 256
    assert len(people.group("validation")) == 32 and people.identifier.startswith("people-")


def test_suites_show_the_test_people_and_base_splits_never_do(tmp_path):
    from posegen_env.data.base_splits import base_split
    from posegen_env.suites.suites import build_suite

    people = PeopleRenderer(load_avatar(), train=3, validation=2)
    suite = build_suite("in-distribution", people, num_samples=12, crop_size=32)
    assert all(people.names[k].startswith("heldout-") for k in suite.subject) and len(set(suite.subject)) > 3
    val = base_split(people, "val", 8, tmp_path, crop_size=32)
    train = base_split(people, "train", 8, tmp_path, crop_size=32)
    assert set(val.subject.tolist()) <= {3, 4} and set(train.subject.tolist()) <= {0, 1, 2}
