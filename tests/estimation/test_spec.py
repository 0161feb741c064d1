"""Estimator specs: what an estimator declares, how PoseGen prepares its input and reads its output."""

import numpy as np
import pytest
import torch

from posegen_env.estimation.baseline import BaselineEstimator
from posegen_env.estimation.checkpoints import load_estimator, save_estimator
from posegen_env.estimation.prediction import as_batch, check_prediction, predict
from posegen_env.estimation.spec import IMAGENET_MEAN, IMAGENET_STD, EstimatorError, EstimatorSpec, SpecError, spec_of


class H36MNet(torch.nn.Module):
    """A tiny module in every respect unlike the baseline."""

    input_size = 32
    input_mean = IMAGENET_MEAN
    input_std = IMAGENET_STD
    channel_order = "BGR"
    joint_set = "h36m17"
    units = "mm"
    root_relative = False
    crop_scale = 1.5

    def __init__(self):
        super().__init__()
        self.mean = torch.nn.Parameter(torch.zeros(3))  # a model's own "mean" is not the spec's
        self.head = torch.nn.Linear(3 * 32 * 32, 17 * 3)

    def forward(self, x):
        return self.head(x.flatten(1)).reshape(-1, 17, 3) * 1000 + 500.0


def test_the_baseline_declares_todays_defaults():
    spec = spec_of(BaselineEstimator())
    assert spec == EstimatorSpec()
    assert (spec.input_size, spec.joint_set.name, spec.units, spec.crop_scale) == (64, "smpl24", "m", 1.25)
    x = torch.rand(2, 3, 64, 64)
    assert spec.prepare(x) is x  # the baseline normalises itself


def test_a_module_declares_its_spec_as_attributes_or_one_spec():
    spec = spec_of(H36MNet())
    assert (spec.input_size, spec.channel_order, spec.joint_set.name, spec.units, spec.root_relative,
            spec.crop_scale) == (32, "BGR", "h36m17", "mm", False, 1.5)
    assert spec.input_mean == IMAGENET_MEAN  # not the module's own ``mean`` parameter

    def fn(images):
        return torch.zeros(len(images), 14, 3)

    fn.spec = {"joint_set": "lsp14", "input_size": 96}
    assert spec_of(load_estimator(fn)).joint_set.name == "lsp14"
    fn.spec = {"joint_sets": "lsp14"}
    with pytest.raises(EstimatorError, match="unknown spec fields.*joint_sets"):
        spec_of(fn)


@pytest.mark.parametrize("change, message", [
    ({"input_size": 8}, "input_size"), ({"input_std": (0.2, 0.0, 0.2)}, "input_std must be positive"),
    ({"input_mean": (0.5, 0.5)}, "three finite numbers"), ({"channel_order": "RGBA"}, "channel_order"),
    ({"units": "cm"}, "units must be 'm' or 'mm'"), ({"crop_scale": 0.5}, "crop_scale"),
    ({"joint_set": "h37m"}, "joint_set"), ({"joint_set": ["pelvis", "left_hip", "tail"]}, "tail"),
])
def test_bad_specs_say_what_to_fix(change, message):
    with pytest.raises(SpecError, match=message):
        EstimatorSpec(**change)


def test_prepare_normalises_in_the_declared_channel_order():
    spec = spec_of(H36MNet())
    x = torch.rand(2, 3, 32, 32)
    y = spec.prepare(x)
    mean, std = torch.tensor(IMAGENET_MEAN).reshape(1, 3, 1, 1), torch.tensor(IMAGENET_STD).reshape(1, 3, 1, 1)
    torch.testing.assert_close(y, ((x - mean) / std).flip(1))  # BGR: blue first, each with its own statistics
    custom = EstimatorSpec(input_transform=lambda t: 2 * t - 1)
    torch.testing.assert_close(custom.prepare(x), 2 * x - 1)


def test_output_is_read_in_its_unit_and_made_root_relative():
    spec = spec_of(H36MNet())
    joints = torch.randn(3, 17, 3) * 300 + 2000.0  # mm, with a global offset
    metres = spec.to_metres(joints)
    torch.testing.assert_close(metres[:, 0], torch.zeros(3, 3))  # the H36M root (pelvis) at 0
    torch.testing.assert_close(metres[:, 5] - metres[:, 2], (joints[:, 5] - joints[:, 2]) / 1000)


def test_predict_returns_root_relative_metres_in_the_estimators_set():
    model = H36MNet()
    pred = predict(model, np.random.default_rng(0).integers(0, 255, (4, 32, 32, 3), dtype=np.uint8),
                   units_check=False)
    assert pred.shape == (4, 17, 3) and np.abs(pred[:, 0]).max() < 1e-6


def test_wrong_joint_counts_nan_and_missing_detections():
    spec = EstimatorSpec(joint_set="coco17")
    with pytest.raises(EstimatorError, match="returned 24 joints, but declares the coco17 set of 17"):
        check_prediction(torch.zeros(2, 24, 3), 2, spec, "net")
    pred = torch.zeros(3, 17, 3)
    pred[1] = float("nan")
    with pytest.raises(EstimatorError, match="NaN or inf for samples \\[1\\].*examine"):
        check_prediction(pred, 3, spec, "net")
    out = check_prediction(pred, 3, spec, "net", missing=True)
    assert torch.isnan(out[1]).all() and torch.isfinite(out[[0, 2]]).all()


def _body(scale):
    rng = np.random.default_rng(0)
    return lambda images: torch.as_tensor(rng.normal(0, 0.4, (len(images), 24, 3)) * scale, dtype=torch.float32)


def test_outputs_in_the_wrong_unit_are_refused():
    images = np.zeros((4, 64, 64, 3), np.uint8)
    with pytest.raises(EstimatorError, match="declares units='m'.*looks like mm"):
        predict(load_estimator(_body(1000.0)), images)
    metres_as_mm = _body(1.0)
    metres_as_mm.units = "mm"
    with pytest.raises(EstimatorError, match="declares units='mm'.*looks like m; declare units='m'"):
        predict(load_estimator(metres_as_mm), images)
    assert predict(load_estimator(_body(1.0)), images).shape == (4, 24, 3)


def test_crops_of_another_size_are_resampled_with_a_warning():
    with pytest.warns(UserWarning, match="64 px crops resampled to the estimator's 32 px"):
        assert as_batch(np.zeros((1, 64, 64, 3), np.uint8), 32).shape == (1, 3, 32, 32)


def test_a_user_file_module_saves_and_reloads_from_its_factory(tmp_path):
    source = tmp_path / "my_model.py"
    source.write_text("import torch\n"
                      "class Net(torch.nn.Module):\n"
                      "    joint_set = 'lsp14'\n"
                      "    def __init__(self, width=8):\n"
                      "        super().__init__()\n"
                      "        self.fc = torch.nn.Linear(3, width)\n"
                      "        self.out = torch.nn.Linear(width, 14 * 3)\n"
                      "    def forward(self, x):\n"
                      "        return self.out(self.fc(x.mean(dim=(2, 3)))).reshape(-1, 14, 3)\n"
                      "def build():\n"
                      "    return Net()\n"
                      "def wide():\n"
                      "    return Net(width=16)\n")
    model = load_estimator(f"{source}:build")
    assert spec_of(model).joint_set.name == "lsp14"
    path = tmp_path / "net.pt"
    save_estimator(path, model, factory=f"{source}:build")
    again = load_estimator(path, device="cpu")
    for key, value in model.state_dict().items():
        torch.testing.assert_close(again.state_dict()[key], value)
    torch.save(model.state_dict(), tmp_path / "plain.pt")  # a researcher's own state_dict file
    loaded = load_estimator(f"{source}:build", checkpoint=tmp_path / "plain.pt")
    torch.testing.assert_close(loaded.out.weight, model.out.weight)
    with pytest.raises(EstimatorError, match="another architecture than Net.*other shapes: fc.bias, fc.weight"):
        load_estimator(f"{source}:wide", checkpoint=tmp_path / "plain.pt")
    with pytest.raises(EstimatorError, match="needs the 'module:callable' factory"):
        save_estimator(tmp_path / "x.pt", model)
    with pytest.raises(EstimatorError, match="cannot load.*no file"):
        load_estimator(f"{tmp_path / 'missing.py'}:build")
    with pytest.raises(EstimatorError, match="cannot load.*nothing"):
        load_estimator(f"{source}:nothing")
    with pytest.raises(EstimatorError, match="not a torch module to load weights into"):
        load_estimator(lambda images: images, checkpoint=tmp_path / "plain.pt")
    (tmp_path / "notes.pt").write_bytes(b"junk")
    with pytest.raises(EstimatorError, match="not a torch checkpoint"):
        load_estimator(f"{source}:build", checkpoint=tmp_path / "notes.pt")
