"""Every setting is spelt once, in its dataclass: each field is an option of its script and a key of
its settings file, each option and key is a field, and a value given on the command line is the
value the run records."""

import dataclasses
import json

import examine
import pretrain_estimator
import pytest
import run_agent

from agents.analysis.sweep import NOT_GRIDDED, parse_value
from agents.loop.examine import ExamineConfig
from agents.loop.run import RoundConfig
from posegen_env.envs.reward import RewardConfig, reward_pairs
from posegen_env.settings import flag_of, read_settings

# A value other than the default for every option, as typed on a command line. A new setting
# fails these tests until it is listed here, so that its option is tried.
ROUND = {"policies": ["ppo,sac"], "rounds": ["3"], "samples": ["10"], "learn_steps": ["32"],
         "objective": ["learnability"], "fresh_share": ["0.5"], "learn_part": ["view"], "search_replay": ["0.5"],
         "finetune_steps": ["5"], "finetune_lr": ["0.001"], "recolour": None, "replay_ratio": ["0.5"],
         "in_distribution_tolerance": ["0.02"], "replay_samples": ["100"], "val_samples": ["50"],
         "suite_samples": ["40"], "num_envs": ["8"], "estimator": ["baseline"], "avatar": ["cast"],
         "estimator_checkpoint": ["weights.pt"], "image_size": ["64"], "loss": ["my_pkg.losses:l2"],
         "finetune_optimizer": ["sgd"], "freeze": ["backbone,head"], "background_mix": ["plain"],
         "backgrounds": ["photos"], "choose": ["background,subject"], "reach": ["0.3"],
         "uniform_share": ["0.1"], "seed": ["4"]}
REWARD = {"metric": ["pa_mpjpe"], "mode": ["band"], "cap_mm": ["250"], "limit_weight": ["2"],
          "penetration_weight": ["3"], "penetration_tolerance_m": ["0.01"]}
EXAMINE = {"policies": ["ppo"], "seeds": ["5,6"], "learn_steps": ["32"], "samples": ["8"], "num_envs": ["4"],
           "avatar": ["cast"], "background_mix": ["plain"], "backgrounds": ["photos"], "choose": ["subject"],
           "image_size": ["64"], "no_detection_mm": ["400"], "reward": ["cap_mm=250"], "reach": ["0.3"],
           "uniform_share": ["0.1"], "search_agents": ["2"], "search_draws": ["8"], "search_replay": ["0.5"]}
PRETRAIN = {"out": ["elsewhere.pt"], "data_dir": ["cache"], "avatar": ["cast"], "train_samples": ["50"],
            "val_samples": ["20"], "steps": ["7"], "batch": ["4"], "lr": ["0.01"], "width": ["8"],
            "estimator": ["my_pkg.nets:Net"], "init": ["start.pt"], "eval_every": ["3"], "seed": ["2"],
            "background_mix": ["plain=1,texture=1"], "backgrounds": ["photos"], "recolour": None, "half": None}


@pytest.fixture(autouse=True)
def photos(tmp_path, monkeypatch):
    """A folder of background photos, "photos", where the tests run."""
    from PIL import Image

    (tmp_path / "photos").mkdir()
    Image.new("RGB", (32, 32), (90, 120, 60)).save(tmp_path / "photos" / "field.png")
    monkeypatch.chdir(tmp_path)


def _argv(cls, name: str, values: dict) -> list[str]:
    """The command line that sets ``name`` to a non-default value: a flag for a bool (its negation
    when it defaults to true), else the flag and the value listed."""
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    if values[name] is None:
        return [flag_of(f) if not getattr(cls(), name) else "--no-" + flag_of(f)[2:]]
    return [flag_of(f), *values[name]]


def _changed(config) -> list[str]:
    """The fields in which ``config`` differs from its class's defaults."""
    default = type(config)()
    return [f.name for f in dataclasses.fields(config) if getattr(config, f.name) != getattr(default, f.name)]


def _flagged(cls) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if flag_of(f)]


@pytest.mark.parametrize("cls, values", [(RoundConfig, ROUND), (RewardConfig, REWARD), (ExamineConfig, EXAMINE),
                                         (pretrain_estimator.PretrainConfig, PRETRAIN)])
def test_every_option_of_a_settings_class_is_listed_here(cls, values):
    assert sorted(_flagged(cls)) == sorted(values)


@pytest.mark.parametrize("name", sorted(ROUND))
def test_each_run_option_sets_its_field_and_lands_in_config_json(name, tmp_path):
    args = run_agent.parse(_argv(RoundConfig, name, ROUND))
    assert args.given == {name}
    config = run_agent.new_config(args)
    assert getattr(config, name) != getattr(RoundConfig(), name)
    config.write(tmp_path / "config.json")
    assert json.loads((tmp_path / "config.json").read_text())[name] == getattr(config, name)
    assert RoundConfig.read(tmp_path / "config.json") == config


@pytest.mark.parametrize("name", sorted(REWARD))
def test_each_reward_option_sets_the_runs_reward(name, tmp_path):
    args = run_agent.parse(_argv(RewardConfig, name, REWARD))
    assert args.given == {run_agent.REWARD + name}
    reward = run_agent.new_config(args).reward
    assert reward[name] != RewardConfig.from_any(RoundConfig().reward).as_dict()[name]
    assert reward == RewardConfig.from_any(reward).as_dict()  # spelt out in full in config.json


@pytest.mark.parametrize("name", sorted(EXAMINE))
def test_each_examine_option_sets_its_field(name):
    _, config = examine.parse(_argv(ExamineConfig, name, EXAMINE))
    assert _changed(config) == [name]


@pytest.mark.parametrize("name", sorted(PRETRAIN))
def test_each_pretraining_option_sets_its_field(name):
    cls = pretrain_estimator.PretrainConfig
    _, config = pretrain_estimator.parse(_argv(cls, name, PRETRAIN))
    assert _changed(config) == [name]


def test_the_command_lines_hold_no_option_outside_the_settings_classes():
    own = {"run_agent": {"device", "out", "resume", "quick", "examine", "given"},
           "examine": {"estimator", "estimator_checkpoint", "device", "out", "quick"},
           "pretrain": {"device", "quick"}}
    round_dests = set(_flagged(RoundConfig)) | {run_agent.REWARD + n for n in _flagged(RewardConfig)}
    assert set(vars(run_agent.parse([]))) == round_dests | own["run_agent"]
    assert set(vars(examine.parse([])[0])) == set(_flagged(ExamineConfig)) | own["examine"]
    pretrain_dests = set(_flagged(pretrain_estimator.PretrainConfig))
    assert set(vars(pretrain_estimator.parse([])[0])) == pretrain_dests | own["pretrain"]


def test_config_json_holds_exactly_the_fields(tmp_path):
    RoundConfig().write(tmp_path / "config.json")
    doc = json.loads((tmp_path / "config.json").read_text())
    assert list(doc) == [f.name for f in dataclasses.fields(RoundConfig)]
    assert RoundConfig.read(tmp_path / "config.json") == RoundConfig()
    with pytest.raises(ValueError, match="setting 'rounds' holds 'two'"):
        read_settings(RoundConfig, doc | {"rounds": "two"}, "config.json")


@pytest.mark.parametrize("name", sorted(ROUND))
def test_a_sweep_reads_each_run_setting_as_its_option_does(name):
    if name in NOT_GRIDDED:
        pytest.skip("a sweep's own option")
    text = ",".join(ROUND[name]) if ROUND[name] else "false" if getattr(RoundConfig(), name) else "true"
    value = parse_value(name, text.replace(",", "+"))
    assert value != getattr(RoundConfig(), name)
    if ROUND[name] is not None:
        assert value == getattr(run_agent.new_config(run_agent.parse(_argv(RoundConfig, name, ROUND))), name)


def test_reward_pairs_read_each_value_by_its_type():
    assert reward_pairs("mode=capped, cap_mm=250") == {"mode": "capped", "cap_mm": 250.0}
    with pytest.raises(ValueError, match="unknown setting 'cap'"):
        reward_pairs("cap=1")
    with pytest.raises(ValueError, match="write KEY=VALUE"):
        reward_pairs("capped")
