"""Round trip of the dataset format and one test per kind of broken input the loader or writer must reject."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from posegen_env.body.joints import SMPL_JOINT_NAMES
from posegen_env.data.dataset import DatasetError, DatasetWriter, crop_box, load_dataset, write_dataset
from posegen_env.distributions import UniformCameraSampler, UniformPoseSampler
from posegen_env.render.avatar import load_avatar
from posegen_env.render.backgrounds import Backgrounds
from posegen_env.render.camera import orbit_camera
from posegen_env.render.crops import render_crops
from posegen_env.render.step import PoseBatch

SIZE = 32
N = 6
FAR_JOINT = 22  # sample 0 puts this joint (left_hand) far outside the crop


def make_data(seed: int = 0) -> dict:
    """Plausible synthetic samples: joints within ~0.4 m of the pelvis seen by orbit cameras."""
    rng = np.random.default_rng(seed)
    cams = [orbit_camera(60.0 * i, 10.0, 3.0, width=SIZE) for i in range(N)]
    world = rng.normal(scale=0.25, size=(N, 24, 3))
    world[0, FAR_JOINT] = [2.0, 0.0, 0.0]  # projects outside the 32 px crop
    joints2d = np.stack([c.project(w) for c, w in zip(cams, world, strict=True)])
    cam_pts = np.stack([c.world_to_camera(w) for c, w in zip(cams, world, strict=True)])
    visible = np.ones((N, 24), bool)
    visible[1, 5] = False  # occluded but inside the crop
    return {
        "images": rng.integers(0, 256, size=(N, SIZE, SIZE, 3), dtype=np.uint8),
        "joints2d": joints2d,
        "joints3d_cam": cam_pts - cam_pts[:, :1],
        "pose": rng.normal(scale=0.2, size=(N, 72)),
        "betas": rng.normal(size=(N, 10)),
        "K": np.stack([c.K for c in cams]), "R": np.stack([c.R for c in cams]), "t": np.stack([c.t for c in cams]),
        "visible": visible,
    }


def as_batch(data: dict) -> PoseBatch:
    """The samples of ``make_data`` as the PoseBatch that write_dataset takes."""
    return PoseBatch(joints3d=data["joints3d_cam"], **{k: v for k, v in data.items() if k != "joints3d_cam"})


def write(root: Path, data: dict, **kwargs) -> Path:
    return write_dataset(root, as_batch(data), meta={"source": "synthetic"}, **kwargs)


@pytest.fixture
def data() -> dict:
    return make_data()


@pytest.fixture
def ds_dir(tmp_path: Path, data: dict) -> Path:
    return write(tmp_path / "ds", data)


def sample(data: dict, i: int) -> dict:
    return {k: v[i] for k, v in data.items() if k != "images"} | {"image": data["images"][i]}


def rewrite_npz(root: Path, drop: str | None = None, **changes) -> None:
    with np.load(root / "annotations.npz") as npz:
        arrays = {k: npz[k] for k in npz.files if k != drop}
    arrays.update(changes)
    np.savez(root / "annotations.npz", **arrays)


def annotations(root: Path) -> dict[str, np.ndarray]:
    with np.load(root / "annotations.npz") as npz:
        return dict(npz)


def edit_json(root: Path, edit) -> None:
    path = root / "dataset.json"
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))


def rejects(root: Path, *words: str, check_images: bool = True) -> str:
    with pytest.raises(DatasetError) as info:
        load_dataset(root, check_images=check_images)
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} not in: {message}"
    return message


def assert_message(info: pytest.ExceptionInfo, *words: str) -> None:
    for word in words:
        assert word in str(info.value), f"{word!r} not in: {info.value}"


# --------------------------------------------------------------------------------------------------
# Round trip


def test_round_trip(ds_dir: Path, data: dict):
    ds = load_dataset(ds_dir)
    assert len(ds) == N and ds.image_size == SIZE and ds.root == ds_dir
    assert ds.meta == {"source": "synthetic"} and ds.created_by.startswith("posegen ")
    a = ds.arrays
    assert list(a["imgname"]) == [f"images/{i:06d}.png" for i in range(N)]
    for key, dim in (("center", (N, 2)), ("scale", (N,)), ("part", (N, 24, 3)), ("S", (N, 24, 4)),
                     ("pose", (N, 72)), ("shape", (N, 10)), ("cam_K", (N, 3, 3)), ("cam_R", (N, 3, 3)),
                     ("cam_t", (N, 3))):
        assert a[key].shape == dim and a[key].dtype == np.float32, key
    assert a["has_smpl"].dtype == np.uint8 and (a["has_smpl"] == 1).all()
    f32 = {k: np.asarray(v, dtype=np.float32) for k, v in data.items() if k not in ("images", "visible")}
    np.testing.assert_array_equal(ds.joints2d, f32["joints2d"])
    np.testing.assert_array_equal(ds.joints3d, f32["joints3d_cam"])
    np.testing.assert_array_equal(a["S"][..., 3], 1.0)
    np.testing.assert_array_equal(a["pose"], f32["pose"])
    np.testing.assert_array_equal(a["shape"], f32["betas"])
    np.testing.assert_array_equal(a["cam_K"], f32["K"])
    np.testing.assert_array_equal(a["cam_R"], f32["R"])
    np.testing.assert_array_equal(a["cam_t"], f32["t"])
    expected_vis = np.ones((N, 24), np.float32)
    expected_vis[0, FAR_JOINT] = 0.0  # outside the crop
    expected_vis[1, 5] = 0.0  # occluded
    np.testing.assert_array_equal(ds.visibility, expected_vis)
    for i in range(N):
        img = ds.load_image(i)
        assert img.dtype == np.uint8 and img.shape == (SIZE, SIZE, 3)
        np.testing.assert_array_equal(img, data["images"][i])
    np.testing.assert_array_equal(ds.load_images([4, 1]), data["images"][[4, 1]])
    cam = ds.camera(3)
    assert (cam.width, cam.height) == (SIZE, SIZE)
    np.testing.assert_allclose(cam.R, data["R"][3], atol=1e-6)
    assert ds.image_path(2) == ds_dir / "images" / "000002.png"
    with pytest.raises(IndexError):
        ds.load_image(N)
    doc = json.loads((ds_dir / "dataset.json").read_text())
    assert doc["format"] == "posegen-dataset" and doc["version"] == 1
    assert doc["num_samples"] == N and doc["image_size"] == SIZE
    assert doc["joint_names"] == list(SMPL_JOINT_NAMES)


def test_writer_leaves_no_temporary_files(ds_dir: Path):
    assert sorted(p.name for p in ds_dir.parent.iterdir()) == ["ds"]
    assert sorted(p.name for p in ds_dir.iterdir()) == ["annotations.npz", "dataset.json", "images"]


def test_add_one_by_one_matches_write_dataset(tmp_path: Path, data: dict, ds_dir: Path):
    with DatasetWriter(tmp_path / "one", SIZE) as w:
        for i in range(N):
            s = sample(data, i)
            s["pose"] = s["pose"].reshape(24, 3)  # SMPL's (24, 3) layout is accepted too
            assert w.add(**s) == i
    one, batch = annotations(tmp_path / "one"), annotations(ds_dir)
    assert sorted(one) == sorted(batch)
    for key in one:
        np.testing.assert_array_equal(one[key], batch[key], err_msg=key)


def test_extras_round_trip(tmp_path: Path, data: dict):
    rng = np.random.default_rng(3)
    error, policy = rng.random(N), rng.random((N, 4))
    with DatasetWriter(tmp_path / "ds", SIZE) as w:
        w.add(**sample(data, 0), extras={"error": error[0], "extra_policy": policy[0]})
        w.add_batch(data["images"][1:], data["joints2d"][1:], data["joints3d_cam"][1:], data["pose"][1:],
                    data["betas"][1:], data["K"][1:], data["R"][1:], data["t"][1:],
                    extras={"error": error[1:], "policy": policy[1:]})
    ds = load_dataset(tmp_path / "ds")
    assert sorted(ds.extras) == ["error", "policy"]
    np.testing.assert_array_equal(ds.extras["error"], error.astype(np.float32))
    np.testing.assert_array_equal(ds.extras["policy"], policy.astype(np.float32))
    assert {"extra_error", "extra_policy"} <= set(annotations(tmp_path / "ds"))


@pytest.fixture(scope="module")
def rendered() -> PoseBatch:
    """Three 16 px crops of the default avatar, on a plain colour, a noise texture and a gradient."""
    poses = UniformPoseSampler().sample(3, np.random.default_rng(0))
    cameras = UniformCameraSampler().sample(3, np.random.default_rng(1))
    return render_crops(load_avatar(), poses, cameras, crop_size=16, background=Backgrounds(),
                        rng=[np.random.default_rng(i) for i in range(3)], styles=["plain", "noise", "linear"])


def test_background_round_trip(tmp_path: Path, rendered: PoseBatch):
    ds = load_dataset(write_dataset(tmp_path / "ds", rendered))
    assert ds.background is not None and ds.background.dtype.kind == "U"
    assert list(ds.background) == list(rendered.background)
    assert [ds.background_record(i)["kind"] for i in range(3)] == ["plain", "noise", "linear"]
    assert ds.background_record(0) == json.loads(rendered.background[0])


def test_background_of_mixed_chunks(tmp_path: Path, data: dict):
    record = json.dumps({"kind": "plain", "colour": [12.0, 200.0, 3.0]})
    with DatasetWriter(tmp_path / "ds", SIZE) as w:
        w.add(**sample(data, 0))
        w.add_batch(data["images"][1:3], data["joints2d"][1:3], data["joints3d_cam"][1:3], data["pose"][1:3],
                    data["betas"][1:3], data["K"][1:3], data["R"][1:3], data["t"][1:3], background=[record, ""])
        w.add(**sample(data, 3), background=record)
    ds = load_dataset(tmp_path / "ds")
    assert list(ds.background) == ["", record, "", record]
    assert [ds.background_record(i) for i in range(4)] == [None, json.loads(record), None, json.loads(record)]


def test_dataset_without_background(ds_dir: Path, tmp_path: Path, data: dict):
    assert "background" not in annotations(ds_dir)  # never given: the key is not written
    ds = load_dataset(ds_dir)
    assert ds.background is None and ds.background_record(0) is None
    with DatasetWriter(tmp_path / "one", SIZE) as w:
        w.add(**sample(data, 0), background=None)
    assert "background" not in annotations(tmp_path / "one")


@pytest.mark.parametrize("background, words", [
    (np.array(["", "not json", "", "", "", ""]), ["background of batch item(s) 1 (sample(s) 1)", "got 'not json'",
                                                   "json.dumps"]),
    ([""] * 5 + ['{"colour": [1, 2, 3]}'], ["batch item(s) 5", '"kind"']),
    (['["kind"]'] * 6, ["batch item(s) 0, 1, 2, 3, 4, ..."]),
    ([""] * 5, ["background has 5 records", "B = 6"]),
    ([{"kind": "plain"}] * 6, ["batch item(s) 0", "JSON object"]),
], ids=["not-json", "no-kind", "not-an-object", "too-few", "dict-not-json"])
def test_add_batch_rejects_bad_background(tmp_path: Path, data: dict, background, words):
    with pytest.raises(DatasetError) as info, DatasetWriter(tmp_path / "ds", SIZE) as w:
        w.add_batch(data["images"], data["joints2d"], data["joints3d_cam"], data["pose"], data["betas"], data["K"],
                    data["R"], data["t"], background=background)
    assert_message(info, "DatasetWriter.add_batch", *words)
    assert list(tmp_path.iterdir()) == []


def test_add_rejects_bad_background(tmp_path: Path, data: dict):
    with pytest.raises(DatasetError) as info, DatasetWriter(tmp_path / "ds", SIZE) as w:
        w.add(**sample(data, 0))
        w.add(**sample(data, 1), background="plain")
    assert_message(info, "DatasetWriter.add: background (sample(s) 1)", "'plain'", '"kind"')


@pytest.mark.parametrize("make, words", [
    (lambda n: np.zeros(n), ["background has shape (6,) and dtype float64", "(N,) str"]),
    (lambda n: np.full((n, 2), ""), ["background has shape (6, 2)", "(N,) str"]),
    (lambda n: np.full(n - 1, ""), ["disagree", "background 5", "imgname 6"]),
], ids=["numeric", "2d", "N-mismatch"])
def test_bad_background_array(ds_dir: Path, make, words):
    rewrite_npz(ds_dir, background=make(N))
    rejects(ds_dir, "annotations.npz", *words)


def test_add_batch_shares_one_camera(tmp_path: Path, data: dict):
    cam = orbit_camera(30.0, 0.0, 3.0, width=SIZE)
    with DatasetWriter(tmp_path / "ds", SIZE) as w:
        assert w.add_batch(data["images"], data["joints2d"], data["joints3d_cam"], data["pose"], data["betas"],
                           cam.K, cam.R, cam.t) == range(N)
    ds = load_dataset(tmp_path / "ds")
    np.testing.assert_array_equal(ds.arrays["cam_t"], np.broadcast_to(cam.t.astype(np.float32), (N, 3)))


def test_center_and_scale_from_in_frame_joints():
    part = np.full((2, 24, 2), 50.0)
    part[0, 1] = [10.0, 20.0]
    part[0, 2] = [70.0, 60.0]  # with joint 1: box x 10..70, y 20..60
    part[0, 3] = [150.0, 40.0]  # outside the 100 px crop: ignored
    part[0, 4] = [40.0, -3.0]  # outside (above): ignored
    part[0, 5] = [99.5, 99.5]  # on the last pixel's outer edge: inside
    part[1] = [-10.0, 200.0]  # nothing inside: the whole crop
    center, scale = crop_box(part, 100)
    np.testing.assert_allclose(center[0], [(10 + 99.5) / 2, (20 + 99.5) / 2])
    np.testing.assert_allclose(scale[0], (99.5 - 10) / 200)  # the longer side of the box
    np.testing.assert_allclose(center[1], [49.5, 49.5])
    np.testing.assert_allclose(scale[1], 100 / 200)


def test_writer_center_and_scale(tmp_path: Path, data: dict):
    s = sample(data, 2)
    s["joints2d"] = np.full((24, 2), 16.0)
    s["joints2d"][7] = [4.0, 10.0]
    s["joints2d"][8] = [20.0, 28.0]  # box 16 x 18 around (12, 19)
    s["joints2d"][9] = [40.0, 16.0]  # outside: neither in the box nor visible
    s["visible"] = np.ones(24, bool)
    s["visible"][8] = False  # occluded joints still count for the box
    with DatasetWriter(tmp_path / "ds", SIZE) as w:
        w.add(**s)
    a = load_dataset(tmp_path / "ds").arrays
    np.testing.assert_allclose(a["center"][0], [12.0, 19.0])
    np.testing.assert_allclose(a["scale"][0], 18.0 / 200)
    assert a["part"][0, 8, 2] == 0 and a["part"][0, 9, 2] == 0 and a["part"][0, 7, 2] == 1


def test_check_images_false_skips_image_checks(ds_dir: Path):
    (ds_dir / "images" / "000002.png").unlink()
    assert len(load_dataset(ds_dir, check_images=False)) == N


# --------------------------------------------------------------------------------------------------
# Rejections by the loader


def test_missing_directory(tmp_path: Path):
    rejects(tmp_path / "nope", "nope", "does not exist")


def test_missing_directory_points_to_backup(ds_dir: Path):
    ds_dir.rename(ds_dir.with_name(".ds.old-1234abcd"))
    rejects(ds_dir, "does not exist", ".ds.old-1234abcd", "rename it back")


def test_missing_dataset_json(ds_dir: Path):
    (ds_dir / "dataset.json").unlink()
    rejects(ds_dir, "dataset.json", "missing")


def test_invalid_json(ds_dir: Path):
    (ds_dir / "dataset.json").write_text('{"format": "posegen-dataset", ')
    rejects(ds_dir, "dataset.json", "invalid JSON")


@pytest.mark.parametrize("edit, words", [
    (lambda d: d.update(format="spin"), ["dataset.json", "format is 'spin'", "posegen-dataset"]),
    (lambda d: d.update(version=2), ["dataset.json", "version is 2", "version 1"]),
    (lambda d: d.pop("image_size"), ["dataset.json", "missing", "image_size"]),
    (lambda d: d.update(image_size=[32, 32]), ["dataset.json", "image_size", "positive integer"]),
    (lambda d: d.update(joint_names=d["joint_names"][::-1]), ["dataset.json", "joint_names", "SMPL order"]),
    (lambda d: d.update(notes="x"), ["dataset.json", "unknown key", "notes", "meta"]),
    (lambda d: d.update(num_samples=N + 1), ["annotations.npz", f"{N} samples", f"num_samples = {N + 1}"]),
], ids=["format", "version", "missing-key", "image-size", "joint-names", "unknown-key", "num-samples"])
def test_bad_dataset_json(ds_dir: Path, edit, words):
    edit_json(ds_dir, edit)
    rejects(ds_dir, *words)


def test_missing_annotations(ds_dir: Path):
    (ds_dir / "annotations.npz").unlink()
    rejects(ds_dir, "annotations.npz", "missing")


def test_truncated_annotations(ds_dir: Path):
    path = ds_dir / "annotations.npz"
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    rejects(ds_dir, "annotations.npz", "truncated or corrupt")


def test_missing_key(ds_dir: Path):
    rewrite_npz(ds_dir, drop="cam_R")
    rejects(ds_dir, "annotations.npz", "missing", "cam_R")


def test_unknown_key(ds_dir: Path):
    rewrite_npz(ds_dir, gender=np.zeros(N))
    rejects(ds_dir, "annotations.npz", "unknown", "gender", "extra_")


@pytest.mark.parametrize("key, make, words", [
    ("S", lambda a: a["S"][..., :3], ["annotations.npz", "S has shape (6, 24, 3)", "(N, 24, 4)", "metres"]),
    ("pose", lambda a: a["pose"][:, 3:], ["annotations.npz", "pose has shape (6, 69)", "(N, 72)"]),
    ("part", lambda a: a["part"][:N - 1], ["annotations.npz", "disagree", "part 5", "imgname 6"]),
    ("shape", lambda a: a["shape"].astype(np.int64), ["annotations.npz", "shape has dtype int64", "float"]),
    ("S", lambda a: _set(a["S"], (4, 10, 1), np.nan), ["annotations.npz", "S has NaN", "sample(s) 4"]),
    ("cam_R", lambda a: _set(a["cam_R"], (2, 0, 0), 1.3), ["annotations.npz", "cam_R is not orthonormal",
                                                            "sample(s) 2"]),
    ("cam_R", lambda a: -a["cam_R"], ["annotations.npz", "cam_R", "determinant"]),
    ("cam_K", lambda a: _set(a["cam_K"], (1, 0, 0), -5.0), ["annotations.npz", "cam_K", "focal", "sample(s) 1"]),
    ("S", lambda a: a["S"] + np.array([0.0, 0.1, 0.0, 0.0], np.float32), ["S is not root-relative", "pelvis"]),
    ("S", lambda a: a["S"] * np.array([1000, 1000, 1000, 1], np.float32), ["S has joints", "metres", "1000"]),
    ("part", lambda a: _set(a["part"], (3, 0, 2), 2.0), ["part confidence", "[0, 1]", "sample(s) 3"]),
    ("imgname", lambda a: _set(a["imgname"], 5, "images/000000.png"), ["imgname", "more than once"]),
    ("imgname", lambda a: _set(a["imgname"], 5, "../x.png"), ["imgname[5]", "relative path inside"]),
    ("extra_error", lambda a: np.zeros((N, 2, 2)), ["extra_error", "(N,) or (N, D)"]),
], ids=["S-shape", "pose-shape", "N-mismatch", "int-dtype", "nan-S", "R-orthonormal", "R-reflection",
        "K-focal", "S-not-root-relative", "S-millimetres", "confidence", "duplicate-image", "escaping-path",
        "extra-3d"])
def test_bad_annotations(ds_dir: Path, key, make, words):
    rewrite_npz(ds_dir, **{key: make(annotations(ds_dir))})
    rejects(ds_dir, *words)


def _set(arr: np.ndarray, index, value) -> np.ndarray:
    arr = arr.copy()
    arr[index] = value
    return arr


def test_missing_images(ds_dir: Path):
    (ds_dir / "images" / "000001.png").unlink()
    (ds_dir / "images" / "000004.png").unlink()
    rejects(ds_dir, "2 of 6 image files", "missing", "images/000001.png", "images/000004.png")


def test_image_of_wrong_size(ds_dir: Path):
    path = ds_dir / "images" / "000003.png"
    Image.fromarray(np.zeros((SIZE, SIZE + 1, 3), np.uint8)).save(path)
    rejects(ds_dir, str(path), "size is 33x32", "image_size = 32")


def test_image_of_wrong_mode(ds_dir: Path):
    path = ds_dir / "images" / "000000.png"
    Image.fromarray(np.zeros((SIZE, SIZE, 4), np.uint8)).save(path)
    rejects(ds_dir, str(path), "mode RGBA", "RGB")


def test_corrupt_image(ds_dir: Path):
    path = ds_dir / "images" / "000005.png"
    path.write_bytes(b"not a png")
    rejects(ds_dir, str(path), "cannot be read")


# --------------------------------------------------------------------------------------------------
# Writer


def test_exception_inside_writer_leaves_nothing(tmp_path: Path, data: dict):
    with pytest.raises(RuntimeError, match="boom"), DatasetWriter(tmp_path / "ds", SIZE) as w:
        w.add(**sample(data, 0))
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_exception_keeps_existing_dataset(ds_dir: Path, data: dict):
    other = make_data(seed=1)
    with pytest.raises(RuntimeError, match="boom"), DatasetWriter(ds_dir, SIZE, overwrite=True) as w:
        w.add(**sample(other, 0))
        raise RuntimeError("boom")
    assert sorted(p.name for p in ds_dir.parent.iterdir()) == ["ds"]
    ds = load_dataset(ds_dir)
    assert len(ds) == N
    np.testing.assert_array_equal(ds.arrays["shape"], data["betas"].astype(np.float32))
    np.testing.assert_array_equal(ds.load_image(0), data["images"][0])


def test_existing_directory_needs_overwrite(ds_dir: Path, data: dict):
    with pytest.raises(DatasetError, match="already exists.*overwrite=True"):
        write(ds_dir, make_data(seed=1))
    np.testing.assert_array_equal(load_dataset(ds_dir).load_image(0), data["images"][0])


def test_overwrite_replaces_dataset(ds_dir: Path):
    other = make_data(seed=1)
    other = {k: v[:4] for k, v in other.items()}
    write(ds_dir, other, overwrite=True)
    assert sorted(p.name for p in ds_dir.parent.iterdir()) == ["ds"]
    assert sorted(p.name for p in (ds_dir / "images").iterdir()) == [f"{i:06d}.png" for i in range(4)]
    ds = load_dataset(ds_dir)
    assert len(ds) == 4
    np.testing.assert_array_equal(ds.arrays["shape"], other["betas"].astype(np.float32))
    np.testing.assert_array_equal(ds.load_image(3), other["images"][3])


def test_overwrite_refuses_non_dataset_directory(tmp_path: Path, data: dict):
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "notes.txt").write_text("keep me")
    with pytest.raises(DatasetError, match="not a dataset"):
        DatasetWriter(tmp_path / "ds", SIZE, overwrite=True)
    assert (tmp_path / "ds" / "notes.txt").read_text() == "keep me"


def test_empty_writer_fails_at_close(tmp_path: Path):
    with pytest.raises(DatasetError, match="no samples were added"), DatasetWriter(tmp_path / "ds", SIZE):
        pass
    assert list(tmp_path.iterdir()) == []


def test_add_outside_with(tmp_path: Path, data: dict):
    with pytest.raises(DatasetError, match="not open"):
        DatasetWriter(tmp_path / "ds", SIZE).add(**sample(data, 0))


def _change(**changes):
    return lambda s: s | changes


def _nan_joint(s):
    j = s["joints3d_cam"].copy()
    j[3, 2] = np.nan
    return s | {"joints3d_cam": j}


def _bent_R(s):
    R = s["R"].copy()
    R[1, 1] += 0.1
    return s | {"R": R}


@pytest.mark.parametrize("mutate, words", [
    (_change(image=np.zeros((SIZE, SIZE, 3), np.float32)), ["image dtype is float32", "uint8"]),
    (_change(image=np.zeros((SIZE, SIZE + 2, 3), np.uint8)), ["image shape is (32, 34, 3)", "(32, 32, 3)"]),
    (_change(joints2d=np.zeros((23, 2))), ["joints2d has shape (23, 2)", "(24, 2)"]),
    (_change(joints2d=np.array([["a", "b"]] * 24)), ["joints2d has dtype", "numeric"]),
    (_nan_joint, ["joints3d_cam has NaN"]),
    (lambda s: s | {"joints3d_cam": s["joints3d_cam"] + 0.5}, ["joints3d_cam is not root-relative", "pelvis"]),
    (lambda s: s | {"joints3d_cam": s["joints3d_cam"] * 1000}, ["joints3d_cam has joints", "metres"]),
    (_change(pose=np.zeros(69)), ["pose has shape (69,)", "(72,)", "global_orient"]),
    (_change(betas=np.zeros(300)), ["betas has shape (300,)", "(10,)"]),
    (_bent_R, ["R is not orthonormal"]),
    (_change(t=np.array([0.0, np.inf, 3.0])), ["t has NaN or inf"]),
    (_change(visible=np.full(24, 0.5)), ["visible", "0/1"]),
    (_change(extras={"error": np.zeros((2, 2))}), ["extras['error']", "(2, 2)"]),
    (_change(extras={"bad name": 1.0}), ["extras name 'bad name'", "not valid"]),
    (_change(extras={"error": np.nan}), ["extras['error'] has NaN"]),
], ids=["float-image", "image-size", "joints2d-shape", "joints2d-str", "nan-joints3d", "not-root-relative",
        "millimetres", "pose-shape", "betas-shape", "R-orthonormal", "t-inf", "visible", "extras-shape",
        "extras-name", "extras-nan"])
def test_add_rejects(tmp_path: Path, data: dict, mutate, words):
    with pytest.raises(DatasetError) as info, DatasetWriter(tmp_path / "ds", SIZE) as w:
        w.add(**mutate(sample(data, 0)))
    assert_message(info, *words)
    assert list(tmp_path.iterdir()) == []


def test_write_dataset_needs_a_pose_batch(tmp_path: Path, data: dict):
    with pytest.raises(DatasetError, match="batch must be a PoseBatch.*DatasetWriter.add_batch"):
        write_dataset(tmp_path / "ds", data)
    assert list(tmp_path.iterdir()) == []


def test_add_batch_names_bad_items(tmp_path: Path, data: dict):
    joints = data["joints3d_cam"].copy()
    joints[[1, 4], 7, 0] = np.nan
    with pytest.raises(DatasetError) as info, DatasetWriter(tmp_path / "ds", SIZE) as w:
        w.add_batch(data["images"], data["joints2d"], joints, data["pose"], data["betas"], data["K"], data["R"],
                    data["t"])
    assert_message(info, "joints3d_cam has NaN", "batch item(s) 1, 4")


def test_add_batch_rejects_batch_size_mismatch(tmp_path: Path, data: dict):
    with pytest.raises(DatasetError) as info, DatasetWriter(tmp_path / "ds", SIZE) as w:
        w.add_batch(data["images"], data["joints2d"][:3], data["joints3d_cam"], data["pose"], data["betas"],
                    data["K"], data["R"], data["t"])
    assert_message(info, "joints2d has shape (3, 24, 2)", "(B, 24, 2) with B = 6")


def test_extras_must_match_earlier_samples(tmp_path: Path, data: dict):
    with pytest.raises(DatasetError) as info, DatasetWriter(tmp_path / "ds", SIZE) as w:
        w.add(**sample(data, 0), extras={"error": 0.5})
        w.add(**sample(data, 1), extras={"error": np.zeros(3)})
    assert_message(info, "extras differ from earlier samples", "error")
    assert list(tmp_path.iterdir()) == []
