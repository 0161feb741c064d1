"""Files that load but are damaged or malformed: caught by checksum or by content, with one clear error."""

import zipfile

import gymnasium as gym
import pytest
import torch

import posegen_env  # noqa: F401  (registers PoseGen-v0)
from posegen_env.estimation.checkpoints import DEFAULT_ESTIMATOR_PATH, load_estimator
from posegen_env.estimation.spec import EstimatorError
from posegen_env.files import zip_checksum_failure
from posegen_env.render.avatar import AvatarError
from posegen_env.render.avatar.cast import DEFAULT_CAST_PATH
from posegen_env.render.avatar.checkpoint import DEFAULT_AVATAR_PATH
from posegen_env.render.avatar.loading import load_renderer


def flip_bytes_inside(src, dst, count=4):
    """A copy of a zip-based file (torch, npz) with a few bytes flipped inside its largest part (it still unzips)."""
    data = bytearray(src.read_bytes())
    with zipfile.ZipFile(src) as z:
        member = max(z.infolist(), key=lambda i: i.file_size)
    local_extra = int.from_bytes(data[member.header_offset + 28:member.header_offset + 30], "little")
    start = member.header_offset + 30 + len(member.filename.encode()) + local_extra + member.file_size // 2
    for i in range(count):
        data[start + i] ^= 0x5A
    dst.write_bytes(bytes(data))
    return dst


def test_bit_flipped_estimator_still_loads_in_torch_but_posegen_refuses_it(tmp_path):
    bad = flip_bytes_inside(DEFAULT_ESTIMATOR_PATH, tmp_path / "flipped.pt")
    torch.load(bad, weights_only=True)  # torch itself reads it, with wrong weights
    assert zip_checksum_failure(DEFAULT_ESTIMATOR_PATH) is None
    with pytest.raises(EstimatorError, match="corrupt: its part .* does not match the checksum"):
        load_estimator(bad)
    with pytest.raises(EstimatorError, match="corrupt"):
        gym.make("PoseGen-v0", estimator=str(bad))


@pytest.mark.parametrize("damage, message", [
    (lambda s: s.pop("state_dict"), "no 'state_dict' of tensors"),
    (lambda s: s.update(config=[32, 64]), "neither a 'config' dict nor a 'factory'"),
    (lambda s: s.update(config={"width": "wide"}), "does not build the baseline network"),
    (lambda s: s.update(state_dict={k: v[..., :1] if v.ndim else v for k, v in s["state_dict"].items()}),
     "weights of another architecture")])
def test_malformed_estimator_checkpoints_name_the_file_and_the_fault(tmp_path, damage, message):
    state = torch.load(DEFAULT_ESTIMATOR_PATH, weights_only=True)
    damage(state)
    path = tmp_path / "malformed.pt"
    torch.save(state, path)
    with pytest.raises(EstimatorError, match=message) as err:
        load_estimator(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("source", ["avatar", "cast"])
@pytest.mark.parametrize("damage, message", [
    ("nan", "NaN or infinite values in the avatar's density"), ("samples", "num_samples is 0")])
def test_avatars_that_cannot_render_are_refused(tmp_path, source, damage, message):
    state = torch.load(DEFAULT_AVATAR_PATH if source == "avatar" else DEFAULT_CAST_PATH, weights_only=True)
    holder = state if source == "avatar" else state["geometry"]
    if damage == "nan":
        holder["field"]["density"][3] = float("nan")
    else:
        holder["num_samples"] = 0
    path = tmp_path / f"{source}.pt"
    torch.save(state, path)
    with pytest.raises(AvatarError, match=message):
        load_renderer(path)
    bad = flip_bytes_inside(DEFAULT_AVATAR_PATH, tmp_path / "flipped-avatar.pt")
    with pytest.raises(AvatarError, match="corrupt"):
        load_renderer(bad)
