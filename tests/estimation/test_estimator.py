"""Estimator interface, adapter, baseline checkpoints and the training/fine-tuning loop."""

import sys
import textwrap

import numpy as np
import pytest
import torch

from posegen_env.data.dataset import PoseData
from posegen_env.device import resolve_device
from posegen_env.estimation.baseline import BaselineEstimator
from posegen_env.estimation.checkpoints import DEFAULT_ESTIMATOR_PATH, load_estimator, save_estimator
from posegen_env.estimation.prediction import as_batch, predict
from posegen_env.estimation.spec import EstimatorError
from posegen_env.estimation.training import Training, cosine_factor, finetune, train_estimator, validation_mpjpe


def tiny_data(n=48, seed=0) -> PoseData:
    """Images whose mean brightness encodes the pose, so a CNN can learn it quickly."""
    rng = np.random.default_rng(seed)
    level = rng.uniform(0.2, 0.8, n)
    images = (np.ones((n, 64, 64, 3)) * level[:, None, None, None] * 255).astype(np.uint8)
    direction = rng.standard_normal((24, 3)) * 0.2
    joints = level[:, None, None] * direction[None]
    return PoseData(images, (joints - joints[:, :1]).astype(np.float32))


def test_shipped_baseline_loads_and_predicts():
    assert DEFAULT_ESTIMATOR_PATH.stat().st_size < 20e6
    model = load_estimator()
    pred = predict(model, np.zeros((3, 64, 64, 3), np.uint8))
    assert pred.shape == (3, 24, 3) and np.allclose(pred[:, 0], 0) and np.isfinite(pred).all()
    assert model.meta["val_mpjpe_mm"] < 100


def test_image_checks_and_resizing():
    x = as_batch(np.zeros((2, 96, 96, 3), np.uint8), 64)
    assert x.shape == (2, 3, 64, 64) and x.dtype == torch.float32
    assert as_batch(torch.rand(2, 3, 64, 64), 64).shape == (2, 3, 64, 64)
    with pytest.raises(EstimatorError, match="square"):
        as_batch(np.zeros((2, 64, 48, 3), np.uint8), 64)
    with pytest.raises(EstimatorError, match="3 colour channels"):
        as_batch(np.zeros((2, 64, 64, 4), np.uint8), 64)
    with pytest.raises(EstimatorError, match=r"\[0, 1\]"):
        as_batch(np.full((1, 64, 64, 3), 255.0), 64)
    with pytest.raises(EstimatorError, match="uint8 or float"):
        as_batch(np.zeros((1, 64, 64, 3), np.int64), 64)


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "my_estimators.py").write_text(textwrap.dedent("""
        import torch

        def good(images):
            return torch.ones(images.shape[0], 24, 3) * 0.1

        def wrong_shape(images):
            return torch.zeros(images.shape[0], 17, 3)

        def nan(images):
            out = torch.zeros(images.shape[0], 24, 3)
            out[1] = float("nan")
            return out

        def build():  # no arguments: a factory, whatever its name
            return good

        def build_sized(scale=0.1):
            return lambda images: torch.ones(images.shape[0], 24, 3) * scale

        class NeedsWeights:
            def __init__(self, weights):
                self.weights = weights
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "my_estimators"
    sys.modules.pop("my_estimators", None)


def test_adapter_loads_user_callable(user_module):
    est = load_estimator(f"{user_module}:good")
    pred = predict(est, np.zeros((4, 64, 64, 3), np.uint8))
    assert pred.shape == (4, 24, 3) and np.allclose(pred, 0.0)  # made root-relative


@pytest.mark.parametrize("name, message", [("wrong_shape", r"returned 17 joints, but declares the smpl24 set of 24"),
                                           ("nan", r"NaN or inf for samples \[1\]")])
def test_adapter_rejects_bad_outputs(user_module, name, message):
    with pytest.raises(EstimatorError, match=message):
        predict(load_estimator(f"{user_module}:{name}"), np.zeros((4, 64, 64, 3), np.uint8))


def test_bad_estimator_specs(tmp_path, user_module):
    with pytest.raises(EstimatorError, match="cannot load estimator"):
        load_estimator(f"{user_module}:missing")
    with pytest.raises(EstimatorError, match="not found"):
        load_estimator(tmp_path / "nope.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint at all")
    with pytest.raises(EstimatorError, match="corrupt"):
        load_estimator(corrupt)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(EstimatorError, match="not a PoseGen estimator"):
        load_estimator(foreign)


def test_checkpoint_round_trip(tmp_path):
    model = BaselineEstimator(width=16)
    path = tmp_path / "m.pt"
    save_estimator(path, model, meta={"note": "x"})
    loaded = load_estimator(path, device="cpu")
    x = torch.rand(2, 3, 64, 64)
    model.eval()
    assert torch.allclose(model(x), loaded(x)) and loaded.meta["note"] == "x"
    assert load_estimator(path).mean.device.type == resolve_device().type  # by default: CUDA when present
    save_estimator(path, model, half=True)  # as the shipped estimators are stored: half the size, float32 loaded
    halved = load_estimator(path, device="cpu")
    assert all(p.dtype == torch.float32 for p in halved.parameters())
    assert torch.allclose(model(x), halved(x), atol=2e-2) and path.stat().st_size < 0.6 * _full_size(model, tmp_path)


def _full_size(model, tmp_path) -> int:
    save_estimator(tmp_path / "full.pt", model)
    return (tmp_path / "full.pt").stat().st_size


def test_training_lowers_the_loss():
    torch.manual_seed(0)
    data = tiny_data()
    model = BaselineEstimator(width=16)
    before = validation_mpjpe(model, data)
    history = train_estimator(model, [(data, 1.0)], lambda m: validation_mpjpe(m, data),
                              Training(steps=60, batch_size=16, lr=3e-3, eval_every=20))
    assert history["loss"][-1] < history["loss"][0]
    assert history["best_score"] < 0.7 * before


def test_resumed_training_follows_the_same_cosine_schedule(monkeypatch):
    lrs = []
    step = torch.optim.AdamW.step

    def recording_step(self, *args, **kwargs):
        lrs.append(self.param_groups[0]["lr"])
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", recording_step)
    torch.manual_seed(0)
    data, saved = tiny_data(n=16), {}
    model = BaselineEstimator(width=8)

    def checkpoint(done, score, optimizer):
        saved[done] = optimizer.state_dict()

    train_estimator(model, [(data, 1.0)], None, Training(steps=12, batch_size=4, lr=1e-3, eval_every=6),
                    on_eval=checkpoint)
    assert lrs == [1e-3 * cosine_factor(s, 12) for s in range(12)]
    for lr in (1e-3, 5e-4):  # the resumed call's ``lr`` sets the schedule, as for a fresh one
        lrs.clear()
        train_estimator(model, [(data, 1.0)], None, Training(steps=12, batch_size=4, lr=lr, eval_every=6),
                        start_step=6, optimizer_state=saved[6])
        assert lrs == [lr * cosine_factor(s, 12) for s in range(6, 12)]


def test_frozen_norm_keeps_the_batch_norm_statistics():
    torch.manual_seed(0)
    model = BaselineEstimator(width=8)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    before = [m.running_mean.clone() for m in norms]
    train_estimator(model, [(tiny_data(n=16), 1.0)], None, Training(steps=3, batch_size=4, freeze_norm=True))
    assert norms and all(torch.equal(m.running_mean, b) for m, b in zip(norms, before, strict=True))
    train_estimator(model, [(tiny_data(n=16), 1.0)], None, Training(steps=3, batch_size=4))
    assert not all(torch.equal(m.running_mean, b) for m, b in zip(norms, before, strict=True))


def test_finetune_keeps_in_distribution_within_tolerance():
    torch.manual_seed(0)
    base, hard = tiny_data(seed=1), tiny_data(seed=2)
    model = BaselineEstimator(width=16)
    train_estimator(model, [(base, 1.0)], None, Training(steps=40, batch_size=16, lr=3e-3, eval_every=20))
    start = validation_mpjpe(model, base)
    result = finetune(model, hard, base, base, Training(steps=40, batch_size=16, lr=3e-4, eval_every=10),
                      replay_ratio=0.5, tolerance=0.02)
    assert validation_mpjpe(model, base) <= start * 1.02 + 1e-6
    assert result["in_distribution_limit"] == pytest.approx(start * 1.02, rel=1e-6)
    assert result["alpha"] is None or 0.0 <= result["alpha"] <= 1.0
    assert result["blend"]["in_distribution"][-1] <= start * 1.02 + 1e-6
    with pytest.raises(ValueError, match="replay_ratio"):
        finetune(model, hard, base, base, Training(steps=4), replay_ratio=1.0)


def test_a_callable_of_no_arguments_builds_the_estimator(user_module):
    for name in ("build", "build_sized"):
        pred = predict(load_estimator(f"{user_module}:{name}"), np.zeros((2, 64, 64, 3), np.uint8))
        assert pred.shape == (2, 24, 3)
    with pytest.raises(EstimatorError, match="give its arguments defaults"):
        load_estimator(f"{user_module}:NeedsWeights")


def test_python_code_named_without_a_callable_says_how(user_module, tmp_path):
    with pytest.raises(EstimatorError, match=f"'{user_module}:make_estimator'"):
        load_estimator(user_module)
    with pytest.raises(EstimatorError, match="names Python code"):
        load_estimator(f"{user_module}.py")
    with pytest.raises(EstimatorError, match="not found"):  # neither code nor a file: still a missing checkpoint
        load_estimator("no_such_thing_here")


def test_callables_get_crops_on_the_device_they_declare():
    seen = []

    def fn(images):
        seen.append(images.device)
        return torch.zeros(images.shape[0], 24, 3)

    assert load_estimator(fn).device == torch.device("cpu")  # not CUDA just because torch sees one
    predict(load_estimator(fn), np.zeros((2, 64, 64, 3), np.uint8))
    fn.device = "cpu"
    assert load_estimator(fn).device == torch.device("cpu")
    assert load_estimator(fn, device="meta").device == torch.device("meta")  # an explicit device is kept
    assert seen == [torch.device("cpu")]
