"""Device choice: auto picks what torch sees; a GPU that is not there is a clear error, not a late crash."""


import fit_avatar
import pretrain_estimator
import pytest
import torch

from posegen_env.device import resolve_device
from posegen_env.estimation.checkpoints import load_estimator


def test_auto_and_none_pick_cuda_only_when_torch_sees_it():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device().type == resolve_device("auto").type == expected


def test_explicit_devices_are_kept():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="the machine has a GPU")
def test_a_missing_gpu_is_a_clear_error():
    with pytest.raises(ValueError, match="torch sees 0 CUDA GPU"):
        resolve_device("cuda")


def test_a_nonsense_device_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown device 'gpu0'"):
        resolve_device("gpu0")


def test_fit_avatar_rejects_a_bad_device_at_the_command_line(capsys):
    with pytest.raises(SystemExit):
        fit_avatar.parse_args(["--capture", "captures/default", "--out", "avatar.pt", "--device", "gpu0"])
    assert "unknown device 'gpu0'" in capsys.readouterr().err


def test_pretrain_estimator_trains_on_the_chosen_device(tmp_path, capsys):
    with pytest.raises(SystemExit):
        pretrain_estimator.main(["--quick", "--device", "gpu0"])
    assert "unknown device 'gpu0'" in capsys.readouterr().err
    out = tmp_path / "estimator.pt"
    pretrain_estimator.main(["--quick", "--device", "cpu", "--out", str(out), "--data-dir", str(tmp_path / "data")])
    assert load_estimator(out, device="cpu").meta["steps"] == 20
