"""The learning objectives: the raw error is the reward itself; learnability is a paired, cross-fitted
error drop that never scores a sample with a copy that trained on it; transfer is the exact first-order
drop of the anchors' loss; fresh draws stay at their anchor."""

from dataclasses import asdict

import numpy as np
import pytest
import torch

import agents.policies.objectives as objectives
from agents.policies import make_policy
from agents.policies.anchored import Anchoring
from agents.policies.objectives import Objective
from posegen_env.envs.action_space import CAMERA_SLICE, decode
from posegen_env.envs.task import PoseGenTask
from posegen_env.envs.vector_env import PoseGenVectorEnv
from posegen_env.estimation.checkpoints import load_estimator
from posegen_env.estimation.prediction import as_batch
from posegen_env.estimation.spec import spec_of
from posegen_env.estimation.targets import training_data
from posegen_env.estimation.training import default_loss, loss_gradient, transfer_mm
from posegen_env.render.step import PoseBatch

QUICK = Objective("learnability", adapt_steps=8)


@pytest.fixture(scope="module")
def task():
    return PoseGenTask(estimator=load_estimator(None, "cpu"), reward={"mode": "raw", "penetration_weight": 50.0})


@pytest.fixture(scope="module")
def results(task):
    env = PoseGenVectorEnv(num_envs=32, task=task)
    env.reset(seed=0)
    actions = Anchoring().draw(64, np.random.default_rng(1))
    return [env.step_batch(chunk)[3] for chunk in np.split(actions, 2)]


def test_the_error_objective_is_the_reward(task, results):
    np.testing.assert_array_equal(Objective().score(task, results, seed=0),
                                  np.concatenate([r.reward for r in results]))


def test_learnability_is_deterministic_per_seed_and_leaves_the_estimator_alone(task, results):
    before = {k: v.clone() for k, v in task.estimator.state_dict().items()}
    first, again, other = (QUICK.score(task, results, seed=s) for s in (3, 3, 4))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)  # other folds, other copies
    assert all(torch.equal(before[k], v) for k, v in task.estimator.state_dict().items())


def test_learnability_keeps_the_rewards_penalties(task, results):
    learnable = QUICK.learnable_mm(task, type(results[0].data).concat([r.data for r in results]), seed=3)
    rewards = np.concatenate([r.reward for r in results])
    penalties = np.concatenate([r.mpjpe_mm for r in results]) / 1000.0 - rewards
    assert (penalties > 0).any()  # some draws bend past the limits or through themselves
    np.testing.assert_allclose(QUICK.score(task, results, seed=3), learnable / 1000.0 - penalties, atol=1e-12)


def test_no_sample_is_scored_by_a_copy_that_trained_on_it(task, results, monkeypatch):
    seen = []

    def recording(model, data, *args, **kwargs):
        seen.append({img.tobytes() for img in data.images})
        return real(model, data, *args, **kwargs)

    real = objectives.adapted_copy
    monkeypatch.setattr(objectives, "adapted_copy", recording)
    held = []
    monkeypatch.setattr(objectives, "sample_mpjpe",
                        lambda model, data, real_mpjpe=objectives.sample_mpjpe: (
                            held.append({img.tobytes() for img in data.images}), real_mpjpe(model, data))[1])
    learnable = QUICK.learnable_mm(task, type(results[0].data).concat([r.data for r in results]), seed=0)
    scored = held[1:]  # the first call scores every sample under the current estimator
    assert len(seen) == len(scored) == QUICK.folds
    assert all(not (train & test) for train, test in zip(seen, scored, strict=True))
    assert sum(len(s) for s in scored) == len(learnable) == 64
    assert learnable.mean() > 0  # what the copies learn from the other fold transfers


def test_search_learns_the_learnability_the_same_way_twice(task):
    policies = [make_policy("search", num_agents=2, population_per_agent=16, objective=QUICK) for _ in range(2)]
    curves = []
    for policy in policies:
        curve, env = [], PoseGenVectorEnv(num_envs=16, task=task)
        env.reset(seed=0)  # the rendering's own draws (person, background, crop) repeat too
        policy.learn(env, 32, lambda done, scores, c=curve: c.append(scores))
        curves.append(np.concatenate(curve))
    np.testing.assert_array_equal(*curves)
    np.testing.assert_array_equal(policies[0].mean, policies[1].mean)
    assert not np.array_equal(policies[0].mean, make_policy("search", num_agents=2).mean)


@pytest.mark.parametrize("name", ["search", "ppo"])
def test_a_fresh_share_of_draws_stays_at_the_anchor(name, task):
    contexts = np.random.default_rng(2).uniform(-1, 1, (400, 8))
    policy = make_policy(name, fresh_share=0.5)
    policy.prepare(PoseGenVectorEnv(num_envs=4, task=task))
    anchors = Anchoring().draw(400, np.random.default_rng(9))  # act draws its anchors first
    at_anchor = np.all(policy.act(contexts, np.random.default_rng(9)) == Anchoring().move(anchors, 0 * anchors), axis=1)
    assert 0.4 < at_anchor.mean() < 0.6
    plain = make_policy(name)
    plain.prepare(PoseGenVectorEnv(num_envs=4, task=task))
    assert not np.any(np.all(plain.act(contexts, np.random.default_rng(9)) == Anchoring().move(anchors, 0 * anchors),
                             axis=1))


def test_bad_objectives_and_shares_are_refused():
    with pytest.raises(ValueError, match="unknown objective 'regret'; choose one of error, learnability"):
        Objective("regret")
    with pytest.raises(ValueError, match="folds >= 2"):
        Objective("learnability", folds=1)
    with pytest.raises(ValueError, match="transfer objective scores samples against a probe"):
        Objective("transfer").score(PoseGenTask(), [], seed=0)
    with pytest.raises(ValueError, match=r"fresh_share must be in \[0, 1\)"):
        make_policy("search", fresh_share=1.0)


def test_replay_keeps_the_best_draws_and_redraws_them_with_small_edits(task, tmp_path):
    search = make_policy("search", num_agents=2, population_per_agent=16, replay_share=1.0, archive_size=8,
                         edit_std=0.02)
    env = PoseGenVectorEnv(num_envs=16, task=task)
    env.reset(seed=0)
    seen = []
    search.learn(env, 64, lambda done, scores: seen.append(scores))
    assert len(search.archive) == 8
    np.testing.assert_array_equal(search.archive_scores, np.sort(np.concatenate(seen))[::-1][:8])
    actions = search.act(np.zeros((40, 8)), np.random.default_rng(3))
    nearest = np.abs(actions[:, None, :] - search.archive[None]).max(axis=2).min(axis=1)
    assert (nearest < 0.2).all() and (nearest > 0).all()  # near an archived action, never the same one
    search.save(tmp_path)
    again = make_policy("search", num_agents=2, replay_share=1.0, archive_size=8, edit_std=0.02)
    again.load(tmp_path)
    np.testing.assert_array_equal(again.act(np.zeros((40, 8)), np.random.default_rng(3)), actions)
    with pytest.raises(ValueError, match="replay_share in"):
        make_policy("search", replay_share=1.5)


@pytest.mark.parametrize("name", ["search", "ppo"])
def test_the_learned_part_moves_and_the_rest_stays_the_anchors(name, task):
    contexts = np.random.default_rng(2).uniform(-1, 1, (50, 8))
    anchors = Anchoring().draw(50, np.random.default_rng(9))  # act draws its anchors first
    at_anchor = Anchoring().move(anchors, 0 * anchors)
    body = slice(0, CAMERA_SLICE.start)
    for part, view_moves, body_moves in (("all", True, True), ("body", False, True), ("view", True, False)):
        policy = make_policy(name, learn_part=part)
        policy.prepare(PoseGenVectorEnv(num_envs=4, task=task))
        actions = policy.act(contexts, np.random.default_rng(9))
        assert np.allclose(actions[:, CAMERA_SLICE], at_anchor[:, CAMERA_SLICE]) != view_moves, part
        assert np.allclose(actions[:, body], at_anchor[:, body]) != body_moves, part
        assert np.allclose(actions[:, CAMERA_SLICE.stop:], at_anchor[:, CAMERA_SLICE.stop:]) != body_moves, part
    with pytest.raises(ValueError, match="learn_part must be one of all, body, view"):
        make_policy(name, learn_part="camera")


def test_a_run_written_with_learn_view_resumes_with_its_part(tmp_path):
    import json

    from agents.loop.run import RoundConfig

    for learn_view, part in ((False, "body"), (True, "all")):
        doc = json.loads(json.dumps(asdict(RoundConfig())))
        del doc["learn_part"]
        (tmp_path / "config.json").write_text(json.dumps(doc | {"learn_view": learn_view}))
        assert RoundConfig.read(tmp_path / "config.json").learn_part == part


def test_the_run_config_checks_its_learning_settings():
    from agents.loop.run import RoundConfig

    RoundConfig(objective="learnability", fresh_share=0.5, search_replay=1.0, learn_part="view").check()
    for bad, match in (({"objective": "regret"}, "unknown objective"), ({"fresh_share": 1.0}, "fresh_share"),
                       ({"search_replay": 2.0}, "search_replay"), ({"samples": 0}, "samples"),
                       ({"learn_part": "camera"}, "learn_part")):
        with pytest.raises(ValueError, match=match):
            RoundConfig(**bad).check()


def _data(task, results):
    return training_data(task.spec.joint_set, PoseBatch.concat([r.data for r in results]), task.avatar.body)


SMALL_PROBE = Objective("transfer", probe_size=16)


def test_transfer_is_the_first_order_drop_of_the_probes_loss(task, results):
    """Against plain autograd: lr * grad(probe's mean loss) . grad(one sample's loss), in mm."""
    data = _data(task, results)
    probe, samples = data.select(np.arange(48, 64)), data.select(np.arange(6))
    model = task.estimator
    before = {k: v.clone() for k, v in model.state_dict().items()}
    towards = loss_gradient(model, probe, chunk=4)  # chunks smaller than either set
    got = transfer_mm(model, samples, towards, lr=1e-3, chunk=4)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()) and not model.training
    params = [p for p in model.parameters() if p.requires_grad]

    def loss(d, rows):
        x = spec_of(model).prepare(as_batch(d.images[rows], spec_of(model).input_size))
        return default_loss(model, {"images": x, "joints3d": torch.as_tensor(d.joints3d[rows])})

    expected_towards = torch.autograd.grad(loss(probe, np.arange(len(probe))), params)
    expected = [1e-3 * 1000 * sum((a * b).sum() for a, b in zip(expected_towards, torch.autograd.grad(
        loss(samples, [i]), params), strict=True)).item() for i in range(len(samples))]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-7)
    np.testing.assert_array_equal(transfer_mm(model, samples, towards, lr=1e-3, chunk=4), got)  # the same every time
    np.testing.assert_allclose(transfer_mm(model, samples, loss_gradient(model, probe), lr=2e-3), 2 * got,
                               rtol=1e-4)  # any chunks


def test_a_transfer_probe_is_fresh_anchors_and_deterministic_per_seed(task):
    probe = SMALL_PROBE.probe(task, Anchoring(), seed=5)
    anchors = decode(Anchoring().draw(16, np.random.default_rng(5)))
    np.testing.assert_array_equal(probe.sample.body_pose, anchors.body_pose)
    again = SMALL_PROBE.probe(task, Anchoring(), seed=5)
    assert all(torch.equal(probe.gradient[k], again.gradient[k]) for k in probe.gradient)  # deterministic per seed
    assert Objective().probe(task, Anchoring(), seed=5) is None  # only transfer probes


def test_transfer_scores_keep_the_rewards_penalties(task, results):
    probe = SMALL_PROBE.probe(task, Anchoring(), seed=0)
    gain = transfer_mm(task.estimator, _data(task, results[:1]), probe.gradient, lr=1e-3)
    penalties = results[0].mpjpe_mm / 1000.0 - results[0].reward
    scored = SMALL_PROBE.score(task, results[:1], seed=0, probe=probe)
    in_error_units = (scored + penalties) * 1000.0
    np.testing.assert_allclose(in_error_units / gain, np.std(results[0].mpjpe_mm) / np.std(gain))  # one scale
    assert np.std(in_error_units) == pytest.approx(np.std(results[0].mpjpe_mm))  # the error's spread


@pytest.mark.parametrize("name", ["search", "ppo"])
def test_a_learning_call_probes_once_and_scores_every_draw_against_that_probe(name, task, monkeypatch):
    made, used = [], []
    real_probe, real_score = Objective.probe, Objective.score
    monkeypatch.setattr(Objective, "probe", lambda self, *a, **k: made.append(real_probe(self, *a, **k)) or made[-1])
    monkeypatch.setattr(Objective, "score", lambda self, task, results, seed, probe=None: (
        used.append(probe), real_score(self, task, results, seed, probe))[1])
    policy = make_policy(name, objective=SMALL_PROBE, **({"num_agents": 2, "population_per_agent": 16}
                                                         if name == "search" else {}))
    env = PoseGenVectorEnv(num_envs=16, task=task)
    env.reset(seed=0)
    policy.prepare(env)
    policy.learn(env, 64, None)
    assert len(made) == 1 and len(used) >= 2 and all(p is made[0] for p in used)


def test_every_config_refuses_the_same_bad_policy_lists():
    from agents.analysis.sweep import SweepConfig
    from agents.loop.examine import ExamineConfig
    from agents.loop.run import RoundConfig, RunError

    for bad in ([], ["anchor", "anchor"], ["nope"]):
        for build in (lambda p: RoundConfig(policies=p).check(), lambda p: ExamineConfig(policies=p),
                      lambda p: SweepConfig(policies=p)):
            with pytest.raises((ValueError, RunError), match=r"name one or more distinct ones of .*anchor"):
                build(bad)
