"""A researcher's own torch module through the rounds: another joint set, unit and crop, resume,
a custom loss, frozen modules, and the bad inputs each get a clear error."""

import json
import sys

import pytest
import run_agent
import torch

from posegen_env.estimation.checkpoints import load_estimator
from posegen_env.estimation.plugins import build_from
from posegen_env.estimation.spec import EstimatorError

MODEL = '''
import torch

class Net(torch.nn.Module):
    input_size = 32
    input_mean = (0.485, 0.456, 0.406)
    input_std = (0.229, 0.224, 0.225)
    joint_set = "h36m17"
    units = "mm"
    root_relative = False
    crop_scale = 1.4

    def __init__(self):
        super().__init__()
        self.backbone = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, 2, 1), torch.nn.BatchNorm2d(8),
                                            torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten())
        self.head = torch.nn.Linear(128, 17 * 3)

    def forward(self, x):
        return self.head(self.backbone(x)).reshape(-1, 17, 3) * 1000.0 + 3000.0

def make():
    torch.manual_seed(0)
    return Net()

SEEN = []

def loss(model, batch):
    SEEN.append(sorted(batch))
    pred = model(batch["images"]) / 1000.0
    pred = pred - pred[:, :1]
    return (pred - batch["joints3d"]).abs().mean() + 0.0 * batch["betas"].sum()

def nan_loss(model, batch):
    return model(batch["images"]).sum() * float("nan")

def vector_loss(model, batch):
    return model(batch["images"]).abs().mean(dim=(1, 2))

def plain(images):
    return torch.zeros(len(images), 24, 3)
'''


pytestmark = pytest.mark.usefixtures("private_cache")  # renders go to a cache of their own


@pytest.fixture(scope="module")
def user_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("user") / "user_model.py"
    path.write_text(MODEL)
    return path


def _quick(user_file, out, *extra):
    return ["--quick", "--policy", "search", "--estimator", f"{user_file}:make", "--out", str(out), *extra]


def test_a_user_module_runs_the_rounds_in_its_own_joint_set_and_resumes(user_file, tmp_path):
    out = tmp_path / "run"
    assert run_agent.main(_quick(user_file, out, "--rounds", "2", "--loss", f"{user_file}:loss",
                                 "--freeze", "backbone.0", "--finetune-optimizer", "sgd")) == 0
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert sorted((r["policy"], r["round"]) for r in rows) == [("pretrained", 0), ("search", 1), ("search", 2)]
    suite = rows[0]["suites"]["in-distribution"]
    assert suite["joint_set"] == "h36m17" and "thorax" in suite["eval14"]["per_joint_mpjpe_mm"]
    seen = sys.modules[build_from(f"{user_file}:loss").__module__].SEEN
    assert seen and {"images", "joints3d", "smpl_joints3d", "joints2d", "visible", "global_orient", "body_pose",
                     "betas", "K", "R", "t"} <= set(seen[0])
    first = load_estimator(out / "search" / "round-1" / "estimator.pt", device="cpu")
    start = build_from(f"{user_file}:make")
    torch.testing.assert_close(first.backbone[0].weight, start.backbone[0].weight)  # frozen
    config = json.loads((out / "config.json").read_text())
    assert config["estimator"].endswith("user_model.py:make") and config["freeze"] == ["backbone.0"]
    # the round's estimator is rebuilt from the factory, and a resumed run redoes nothing
    (out / "results.json").write_text(json.dumps({"rows": rows[:2]}))  # as if killed after round 1
    assert run_agent.main(["--resume", str(out)]) == 0
    again = json.loads((out / "results.json").read_text())["rows"]
    assert sorted(r["round"] for r in again if r["policy"] == "search") == [1, 2]


@pytest.mark.parametrize("loss, message", [("nan_loss", "returned nan at step 0"),
                                           ("vector_loss", "returned \\(2,\\) at step 0; it must return one scalar")])
def test_a_bad_custom_loss_stops_with_a_clear_error(user_file, tmp_path, loss, message):
    """Checked on two replay samples at start-up: the run fails before it writes anything."""
    with pytest.raises(EstimatorError, match=message):
        run_agent.main(_quick(user_file, tmp_path / "run", "--loss", f"{user_file}:{loss}"))
    assert not (tmp_path / "run" / "config.json").exists() and not (tmp_path / "run" / "results.json").exists()


def test_what_the_rounds_cannot_fine_tune_points_to_examine_mode(user_file, tmp_path):
    def run(estimator, *extra):
        out = tmp_path / f"run{len(list(tmp_path.iterdir()))}"
        return run_agent.main(["--quick", "--estimator", estimator, "--out", str(out), *extra])

    with pytest.raises(EstimatorError, match="must be a trainable torch module; this one is a function.*--examine"):
        run(f"{user_file}:plain")
    with pytest.raises(EstimatorError, match="no parameters named trunk to freeze; the model's modules are "
                                             "backbone, head"):
        run(f"{user_file}:make", "--freeze", "trunk")
    with pytest.raises(EstimatorError, match="cannot load.*No module named 'not_a_package'"):
        run("not_a_package.models:make")
    with pytest.raises(EstimatorError, match="another architecture"):
        torch.save({"weight": torch.zeros(2)}, tmp_path / "other.pt")
        run(f"{user_file}:make", "--estimator-checkpoint", str(tmp_path / "other.pt"))
