"""Bad input across every script and ``gym.make``, as a new user would try it: each case must end with
one clear line (or be accepted where it is right), never a raw traceback, a silent wrong result or
lost data. ``pytest -s`` prints the counts: tried / clear error / correct acceptance / other.

Scripts run in this process through their own ``run_script(main, name, ERRORS)``: an exception that
is not one of the script's errors would escape as a raw traceback and fail the case.
"""

import importlib
from collections import Counter

import gymnasium as gym
import numpy as np
import pytest

import posegen_env  # noqa: F401  registers PoseGen-v0
from posegen_env.cli import run_script

COUNTS: Counter = Counter()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("battery")
    text = root / "notes.pt"
    text.write_text("these are notes, not weights\n")
    full = root / "full"
    full.mkdir()
    (full / "something.txt").write_text("x")
    loss = root / "losses.py"
    loss.write_text("def two_args(model, batch, extra):\n    return 0\n")
    factory = root / "factories.py"
    factory.write_text("def broken():\n    raise RuntimeError('weights server unreachable')\n\n"
                       "def value_error():\n    raise ValueError('bad width')\n")
    return {"root": root, "text": text, "full": full, "loss": loss, "factory": factory}


def run(script: str, argv: list[str], capsys) -> tuple[int | str, str]:
    """The exit of ``script`` on ``argv`` and what it printed to stderr."""
    module = importlib.import_module(script)
    with pytest.raises(SystemExit) as end:
        run_script(lambda: module.main(argv), f"{script}.py", module.ERRORS)
    return end.value.code, capsys.readouterr().err


def clear_error(code: int | str, err: str, script: str) -> str:
    """The one line the user reads; fails the case if there is none, or a traceback."""
    assert "Traceback" not in err, err
    if isinstance(code, str):  # run_script: "<script>.py: error: ..."
        assert code.startswith(f"{script}.py: error: ") and "\n" not in code.strip(), code
        return code
    assert code == 2, (code, err)  # argparse: usage, then "<script>.py: error: ..."
    line = err.strip().splitlines()[-1]
    assert "error:" in line, err
    return line


# (script, argv with {placeholders} for the fixture's files, what the message must say)
CASES = [
    ("run_agent", ["--image-size", "0"], "16 to 2048"),
    ("run_agent", ["--image-size", "99999"], "16 to 2048"),
    ("run_agent", ["--policy", "walk"], "walk"),
    ("run_agent", ["--estimator", "kast", "--out", "{root}/r1"], "'baseline', 'cast-baseline', 'people-baseline'"),
    ("run_agent", ["--estimator", "{text}", "--out", "{root}/r2"], "not a torch checkpoint file"),
    ("run_agent", ["--avatar", "kast", "--out", "{root}/r3"], "'cast' (ten fitted people) and 'people'"),
    ("run_agent", ["--estimator", "{factory}:broken", "--out", "{root}/r4"], "RuntimeError: weights server"),
    ("run_agent", ["--estimator", "{factory}:value_error", "--out", "{root}/r5"], "calling value_error() raised"),
    ("run_agent", ["--out", "{full}"], "not a PoseGen run"),
    ("run_agent", ["--resume", "{root}/nowhere"], "nowhere"),
    ("run_agent", ["--device", "cuda:7"], "CUDA"),
    ("run_agent", ["--background-mix", "plain=x"], "KIND=WEIGHT"),
    ("run_agent", ["--objective", "regret"], "choose from 'error', 'learnability'"),
    ("run_agent", ["--fresh-share", "1"], "--fresh-share must be in [0, 1)"),
    ("examine", ["--image-size", "0", "--out", "{root}/e1"], "16 to 2048"),
    ("examine", ["--image-size", "99999", "--out", "{root}/e2"], "16 to 2048"),
    ("examine", ["--policy", "walk", "--out", "{root}/e3"], "--policy: 'walk': use one of"),
    ("examine", ["--search-replay", "2", "--out", "{root}/e7"], "replay_share in [0, 1]"),
    ("examine", ["--reward", "limit_weight=x", "--out", "{root}/e4"],
     "--reward: limit_weight='x': limit_weight takes a number"),
    ("examine", ["--estimator", "kast", "--out", "{root}/e5"], "'baseline', 'cast-baseline', 'people-baseline'"),
    ("examine", ["--estimator", "{factory}:broken", "--out", "{root}/e6"], "weights server unreachable"),
    ("examine", ["--out", "{full}"], "is not empty"),
    ("evaluate", ["--estimator", "kast"], "'baseline', 'cast-baseline', 'people-baseline'"),
    ("evaluate", ["--data", "{root}/no-such-dataset"], "no-such-dataset"),
    ("evaluate", ["--estimator", "{text}"], "not a torch checkpoint file"),
    ("pretrain_estimator", ["--background-mix", "plain=x", "--out", "{root}/p.pt"], "KIND=WEIGHT"),
    ("pretrain_estimator", ["--avatar", "kast", "--out", "{root}/p.pt"], "'avatar' (one person)"),
    ("make_cast", ["--out", "{root}/c.pt", "--geometry", "{text}"], "not a torch checkpoint file"),
    ("export_zju", ["--capture", "{root}/no-capture", "--out", "{root}/z"], "no-capture"),
    ("compare_seeds", ["{root}/no-run"], "no-run"),
    ("merge_runs", ["{root}/no-run", "--out", "{root}/m"], "at least two run directories"),
    ("merge_runs", ["{root}/no-run", "{root}/no-run-2", "--out", "{root}/m"], "no-run"),
    ("render_cast", ["--avatar", "{text}", "--out", "{root}/c.png"], "not a torch checkpoint file"),
    ("render_avatar_turntable", ["--avatar", "{text}", "--out", "{root}/t.png"], "not a torch checkpoint file"),
    ("render_avatar_grid", ["--body", "{root}/no-body.npz", "--out", "{root}/g.png"], "no-body"),
    ("fit_avatar", ["--capture", "{root}/no-capture", "--out", "{root}/a.pt"], "no-capture"),
    ("fit_avatar", ["--capture", "{full}", "--out", "{root}/a.pt"], "full"),
    ("sweep", ["--address", "not_an_address", "--out", "{root}/s1"], "is not a Ray cluster address"),
    ("sweep", ["--address", "127.0.0.1:1", "--out", "{root}/s2"], "no Ray cluster answers at 127.0.0.1:1"),
    ("sweep", ["--grid", "reach=-1", "--out", "{root}/s3"], "reach"),
]


@pytest.mark.parametrize("script, argv, says", CASES, ids=[f"{c[0]}-{'-'.join(c[1])[:40]}" for c in CASES])
def test_scripts_end_bad_input_with_one_clear_line(script, argv, says, files, capsys):
    COUNTS["tried"] += 1
    code, err = run(script, [a.format(**files) for a in argv], capsys)
    line = clear_error(code, err, script)
    assert says.format(**files) in line, line
    COUNTS["clear error"] += 1


def test_a_failed_examine_start_leaves_nothing_behind(files, capsys):
    """The user's estimator fails at the first batch: the folder is as it was, so the retry is not
    refused for an '--out that is not empty'."""
    out = files["root"] / "examine-retry"
    detector = files["root"] / "raising.py"
    detector.write_text("def predict(images):\n    raise RuntimeError('model server down')\n")
    for _ in range(2):  # the retry meets the same error, not a refusal of its folder
        COUNTS["tried"] += 1
        code, err = run("examine", ["--quick", "--avatar", "avatar", "--background-mix", "plain", "--policy",
                                    "random", "--estimator", f"{detector}:predict", "--out", str(out)], capsys)
        line = clear_error(code, err, "examine")
        assert "predict raised RuntimeError" in line and "model server down" in line, line
        COUNTS["clear error"] += 1
        assert not out.exists()


def test_a_custom_loss_with_the_wrong_signature_fails_at_start_up(files, capsys):
    COUNTS["tried"] += 1
    code, err = run("run_agent", ["--quick", "--avatar", "avatar", "--estimator", "baseline", "--background-mix",
                                  "plain", "--policy", "random", "--loss", f"{files['loss']}:two_args", "--out",
                                  str(files["root"] / "loss-run")], capsys)
    line = clear_error(code, err, "run_agent")
    assert "failed on a batch of two replay samples" in line and "TypeError" in line, line
    COUNTS["clear error"] += 1


GYM_CASES = [
    ({"reward": {"limit_weight": "x"}}, "limit_weight must be a number"),
    ({"background": (300, -2, 5)}, "RGB triple in 0-255"),
    ({"background": "white"}, "RGB triple in 0-255"),
    ({"image_size": 99999}, "from 16 to 2048"),
    ({"image_size": 0}, "from 16 to 2048"),
    ({"render_batch": 0}, "render_batch must be a positive int"),
    ({"estimator": "kast"}, "'baseline', 'cast-baseline', 'people-baseline'"),
    ({"avatar": "kast"}, "'avatar' (one person)"),
    ({"device": "cuda:9"}, "CUDA"),
    ({"choose": "weather"}, "choose must name"),
    ({"subjects": "heldout"}, "needs a cast"),
    ({"render_mode": "ansi"}, "render_mode"),
]


@pytest.mark.parametrize("kwargs, says", GYM_CASES, ids=[str(k) for k, _ in GYM_CASES])
def test_gym_make_refuses_bad_settings_at_construction(kwargs, says):
    COUNTS["tried"] += 1
    with pytest.raises(ValueError) as refused:
        gym.make("PoseGen-v0", **kwargs)
    assert says in str(refused.value), str(refused.value)
    COUNTS["clear error"] += 1


def test_gym_env_accepts_good_settings_and_refuses_bad_actions():
    COUNTS["tried"] += 4
    env = gym.make("PoseGen-v0", background=(255, 0, 5), reward={"limit_weight": 2}, image_size=32)
    env.reset(seed=0)
    COUNTS["correct acceptance"] += 1
    action = env.action_space.sample()
    _, reward, *_ = env.step(action)
    assert np.isfinite(reward)
    COUNTS["correct acceptance"] += 1
    with pytest.raises(ValueError, match="real numbers"):
        env.step(action.astype(np.complex128) + 1j)
    COUNTS["clear error"] += 1
    with pytest.raises(ValueError, match="leave the action box"):
        env.step(action * 3)
    COUNTS["clear error"] += 1


def test_zz_counts(capsys):
    """The battery's tally (run with ``-s`` to see it): every case tried ended clearly."""
    with capsys.disabled():
        other = COUNTS["tried"] - COUNTS["clear error"] - COUNTS["correct acceptance"]
        print(f"\nbad-input battery: tried {COUNTS['tried']}, clear error {COUNTS['clear error']}, correct "
              f"acceptance {COUNTS['correct acceptance']}, other {other}")
    assert COUNTS["tried"] == COUNTS["clear error"] + COUNTS["correct acceptance"]


def test_a_factory_without_weights_is_not_silently_called_pretrained(recwarn):
    """A ``module:callable`` torch module with no checkpoint warns (its factory may load weights itself);
    with a checkpoint, or for a plain callable, nothing is said."""
    import torch

    from posegen_env.estimation.checkpoints import warn_if_untrained

    with pytest.warns(UserWarning, match="untrained network"):
        warn_if_untrained("my_pkg.model:make", None, torch.nn.Linear(2, 2))
    warn_if_untrained("my_pkg.model:make", "weights.pt", torch.nn.Linear(2, 2))
    warn_if_untrained("my_pkg.model:predict", None, lambda images: images)
    assert not [w for w in recwarn if "untrained network" in str(w.message)]
