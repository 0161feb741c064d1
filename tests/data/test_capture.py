"""Round trip of the capture format and one test per kind of broken input the loader must reject."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from posegen_env.data.capture import CaptureError, CaptureWriter, load_capture
from posegen_env.render.camera import orbit_camera

H, W = 16, 16
NUM_FRAMES = 4
NAMES = ("cam_00", "cam_01", "cam_02")
SPLITS = {"train_cameras": ["cam_00", "cam_01"], "test_cameras": ["cam_02"],
          "train_frames": [0, 1, 2], "test_frames": [3]}


def make_data(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    cameras = {name: orbit_camera(120.0 * i, 10.0, 3.0, target=(0.0, 0.3, 0.0), width=W, height=H)
               for i, name in enumerate(NAMES)}
    smpl = {"global_orient": rng.normal(size=(NUM_FRAMES, 3)).astype(np.float32),
            "body_pose": rng.normal(scale=0.2, size=(NUM_FRAMES, 69)).astype(np.float32),
            "betas": rng.normal(size=(NUM_FRAMES, 10)).astype(np.float32),
            "transl": rng.normal(size=(NUM_FRAMES, 3)).astype(np.float32)}
    images = rng.integers(0, 256, size=(NUM_FRAMES, len(NAMES), H, W, 3), dtype=np.uint8)
    masks = rng.random((NUM_FRAMES, len(NAMES), H, W)) > 0.5
    return {"cameras": cameras, "smpl": smpl, "images": images, "masks": masks}


def frame_args(data: dict, f: int) -> tuple:
    params = {k: v[f] for k, v in data["smpl"].items()}
    return (f, params, {c: data["images"][f, i] for i, c in enumerate(NAMES)},
            {c: data["masks"][f, i] for i, c in enumerate(NAMES)})


def writer(root: Path, data: dict, **kwargs) -> CaptureWriter:
    return CaptureWriter(root, data["cameras"], (H, W), (0, 0, 0), "smpl_neutral_10", SPLITS,
                         meta={"source": "synthetic"}, **kwargs)


def write_capture(root: Path, data: dict, **kwargs) -> Path:
    with writer(root, data, **kwargs) as w:
        for f in (2, 0, 3, 1):  # any order
            w.add_frame(*frame_args(data, f))
    return root


@pytest.fixture
def data() -> dict:
    return make_data()


@pytest.fixture
def cap_dir(tmp_path: Path, data: dict) -> Path:
    return write_capture(tmp_path / "cap", data)


def edit_json(root: Path, edit) -> None:
    path = root / "capture.json"
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))  # NaN is written as the token NaN, which json.loads accepts


def rewrite_smpl(root: Path, **changes) -> None:
    with np.load(root / "smpl_params.npz") as npz:
        arrays = dict(npz)
    arrays.update(changes)
    np.savez(root / "smpl_params.npz", **arrays)


def rejects(root: Path, *words: str, check_files: bool = True) -> str:
    with pytest.raises(CaptureError) as info:
        load_capture(root, check_files=check_files)
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} not in: {message}"
    return message


# --------------------------------------------------------------------------------------------------
# Round trip


def test_round_trip(cap_dir: Path, data: dict):
    cap = load_capture(cap_dir)
    assert cap.camera_names == list(NAMES)
    assert cap.num_frames == NUM_FRAMES
    assert cap.image_size == (H, W) and cap.background == (0, 0, 0)
    assert cap.body_model == "smpl_neutral_10" and cap.meta == {"source": "synthetic"}
    assert cap.splits == SPLITS
    for name, cam in data["cameras"].items():
        got = cap.cameras[name]
        np.testing.assert_array_equal(got.K, cam.K)
        np.testing.assert_array_equal(got.R, cam.R)
        np.testing.assert_array_equal(got.t, cam.t)
        assert (got.width, got.height) == (W, H)
        np.testing.assert_array_equal(cap.distortion[name], np.zeros(5))
    for key, arr in data["smpl"].items():
        assert cap.smpl[key].dtype == np.float32
        np.testing.assert_array_equal(cap.smpl[key], arr)
    for f in range(NUM_FRAMES):
        for i, name in enumerate(NAMES):
            img, mask = cap.load_image(name, f), cap.load_mask(name, f)
            assert img.dtype == np.uint8 and mask.dtype == np.bool_
            np.testing.assert_array_equal(img, data["images"][f, i])
            np.testing.assert_array_equal(mask, data["masks"][f, i])
    params = cap.frame_params(2)
    assert set(params) == {"global_orient", "body_pose", "betas", "transl"}
    np.testing.assert_array_equal(params["body_pose"], data["smpl"]["body_pose"][2])
    assert cap.image_path("cam_01", 3) == cap_dir / "images" / "cam_01" / "000003.png"
    assert cap.mask_path("cam_01", 3) == cap_dir / "masks" / "cam_01" / "000003.png"
    with pytest.raises(IndexError):
        cap.frame_params(NUM_FRAMES)
    with pytest.raises(KeyError):
        cap.image_path("cam_09", 0)


def test_writer_leaves_no_temporary_files(cap_dir: Path):
    assert sorted(p.name for p in cap_dir.parent.iterdir()) == ["cap"]


def test_check_files_false_skips_image_checks(cap_dir: Path):
    (cap_dir / "images" / "cam_01" / "000002.png").unlink()
    assert load_capture(cap_dir, check_files=False).num_frames == NUM_FRAMES


# --------------------------------------------------------------------------------------------------
# Rejections by the loader


def test_missing_directory(tmp_path: Path):
    rejects(tmp_path / "nope", "nope", "does not exist")


def test_missing_capture_json(cap_dir: Path):
    (cap_dir / "capture.json").unlink()
    rejects(cap_dir, "capture.json", "missing")


def test_invalid_json(cap_dir: Path):
    (cap_dir / "capture.json").write_text('{"format": "posegen-capture", ')
    rejects(cap_dir, "capture.json", "invalid JSON")


def _set_camera(i: int, key: str, fn):
    def edit(doc):
        doc["cameras"][i][key] = fn(doc["cameras"][i][key])
    return edit


def _perturb_R(R):
    R[0][0] += 0.2
    return R


def _nan_at(index):
    def fn(value):
        arr = np.array(value)
        arr[index] = math.nan
        return arr.tolist()
    return fn


@pytest.mark.parametrize("edit, words", [
    (lambda d: d.update(format="zju-mocap"), ["capture.json", "format", "zju-mocap"]),
    (lambda d: d.update(version=2), ["capture.json", "version"]),
    (lambda d: d.pop("splits"), ["capture.json", "missing", "splits"]),
    (lambda d: d.update(image_size=[16]), ["image_size", "[H, W]"]),
    (_set_camera(1, "R", _perturb_R), ["capture.json", "cam_01", "R is not orthonormal"]),
    (_set_camera(1, "R", lambda R: (-np.array(R)).tolist()), ["cam_01", "determinant"]),
    (_set_camera(0, "K", _nan_at((0, 2))), ["capture.json", "cam_00", "K is not finite"]),
    (_set_camera(2, "T", _nan_at(1)), ["capture.json", "cam_02", "T is not finite"]),
    (_set_camera(0, "K", lambda K: [[-K[0][0], 0, K[0][2]], K[1], K[2]]), ["cam_00", "focal"]),
    (_set_camera(0, "T", lambda T: T[:2]), ["cam_00", "T (metres)", "list of 3 numbers"]),
    (lambda d: d["cameras"][2].update(name="cam_00"), ["capture.json", "duplicate", "cam_00"]),
    (lambda d: d["splits"].update(test_cameras=["cam_09"]), ["splits.test_cameras", "cam_09", "not one of"]),
    (lambda d: d["splits"].update(test_frames=[4]), ["splits.test_frames", "out of range"]),
    (lambda d: d.update(num_frames=5), ["smpl_params.npz", "num_frames = 5"]),
], ids=["format", "version", "missing-key", "image-size", "R-orthonormal", "R-reflection", "K-nan", "T-nan",
        "negative-focal", "T-length", "duplicate-camera", "split-camera", "split-frame", "frame-count"])
def test_bad_capture_json(cap_dir: Path, edit, words):
    edit_json(cap_dir, edit)
    rejects(cap_dir, *words)


def test_missing_smpl_params(cap_dir: Path):
    (cap_dir / "smpl_params.npz").unlink()
    rejects(cap_dir, "smpl_params.npz", "missing")


@pytest.mark.parametrize("change, words", [
    ({"body_pose": np.zeros((NUM_FRAMES, 72), np.float32)}, ["body_pose", "(4, 72)", "(num_frames, 69)"]),
    ({"transl": np.full((NUM_FRAMES, 3), np.nan, np.float32)}, ["smpl_params.npz", "transl", "NaN"]),
    ({"betas": np.zeros((NUM_FRAMES + 1, 10), np.float32)}, ["smpl_params.npz", "betas", "5 frames"]),
    ({"global_orient": np.zeros((NUM_FRAMES, 3), np.int64)}, ["global_orient", "dtype"]),
], ids=["body-pose-shape", "nan", "frame-count", "int-dtype"])
def test_bad_smpl_params(cap_dir: Path, change, words):
    rewrite_smpl(cap_dir, **change)
    rejects(cap_dir, *words)


def test_smpl_params_missing_key(cap_dir: Path):
    with np.load(cap_dir / "smpl_params.npz") as npz:
        arrays = {k: npz[k] for k in npz.files if k != "betas"}
    np.savez(cap_dir / "smpl_params.npz", **arrays)
    rejects(cap_dir, "smpl_params.npz", "missing", "betas")


@pytest.mark.parametrize("sub", ["images", "masks"])
def test_missing_image_or_mask(cap_dir: Path, sub: str):
    (cap_dir / sub / "cam_01" / "000002.png").unlink()
    (cap_dir / sub / "cam_02" / "000000.png").unlink()
    rejects(cap_dir, f"{sub}/cam_01/000002.png", f"{sub}/cam_02/000000.png", "2 of 24", "missing")


def test_image_of_wrong_size(cap_dir: Path):
    path = cap_dir / "images" / "cam_02" / "000001.png"
    Image.fromarray(np.zeros((H, W + 1, 3), np.uint8)).save(path)
    rejects(cap_dir, str(path), "size is 17x16", "[16, 16]")


def test_mask_of_wrong_mode(cap_dir: Path):
    path = cap_dir / "masks" / "cam_00" / "000003.png"
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(path)
    rejects(cap_dir, str(path), "mode RGB")


def test_corrupt_image(cap_dir: Path):
    path = cap_dir / "images" / "cam_00" / "000000.png"
    path.write_bytes(b"not a png")
    rejects(cap_dir, str(path), "cannot be read")


def test_more_frames_on_disk_than_declared(cap_dir: Path):
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(cap_dir / "images" / "cam_00" / "000004.png")
    rejects(cap_dir, "cam_00", "000004.png", "num_frames = 4")


def test_unknown_camera_folder(cap_dir: Path):
    (cap_dir / "masks" / "cam_07").mkdir()
    rejects(cap_dir, "masks", "cam_07", "not cameras")


# --------------------------------------------------------------------------------------------------
# Writer


def test_exception_inside_writer_leaves_nothing(tmp_path: Path, data: dict):
    with pytest.raises(RuntimeError, match="boom"), writer(tmp_path / "cap", data) as w:
        w.add_frame(*frame_args(data, 0))
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_exception_keeps_existing_capture(cap_dir: Path, data: dict):
    other = make_data(seed=1)
    with pytest.raises(RuntimeError, match="boom"), writer(cap_dir, other, overwrite=True) as w:
        w.add_frame(*frame_args(other, 0))
        raise RuntimeError("boom")
    assert sorted(p.name for p in cap_dir.parent.iterdir()) == ["cap"]
    cap = load_capture(cap_dir)
    np.testing.assert_array_equal(cap.smpl["body_pose"], data["smpl"]["body_pose"])
    np.testing.assert_array_equal(cap.load_image("cam_00", 0), data["images"][0, 0])


def test_existing_directory_needs_overwrite(cap_dir: Path, data: dict):
    with pytest.raises(CaptureError, match="already exists.*overwrite=True"):
        writer(cap_dir, data)


def test_overwrite_replaces_capture(cap_dir: Path):
    other = make_data(seed=1)
    write_capture(cap_dir, other, overwrite=True)
    assert sorted(p.name for p in cap_dir.parent.iterdir()) == ["cap"]
    cap = load_capture(cap_dir)
    np.testing.assert_array_equal(cap.smpl["betas"], other["smpl"]["betas"])
    np.testing.assert_array_equal(cap.load_image("cam_02", 3), other["images"][3, 2])


def test_overwrite_refuses_non_capture_directory(tmp_path: Path, data: dict):
    (tmp_path / "cap").mkdir()
    (tmp_path / "cap" / "notes.txt").write_text("keep me")
    with pytest.raises(CaptureError, match="not a capture"):
        writer(tmp_path / "cap", data, overwrite=True)


def test_frame_gap_fails_at_close(tmp_path: Path, data: dict):
    never_added = r"frame\(s\) 1 were never added"
    with pytest.raises(CaptureError, match=never_added), writer(tmp_path / "cap", data) as w:
        for f in (0, 2):
            w.add_frame(*frame_args(data, f))
    assert list(tmp_path.iterdir()) == []


def test_split_frame_out_of_range_fails_at_close(tmp_path: Path, data: dict):
    with pytest.raises(CaptureError, match="test_frames.*out of range"), writer(tmp_path / "cap", data) as w:
        for f in range(3):
            w.add_frame(*frame_args(data, f))
    assert list(tmp_path.iterdir()) == []


def test_duplicate_frame(tmp_path: Path, data: dict):
    with pytest.raises(CaptureError, match="already added"), writer(tmp_path / "cap", data) as w:
        w.add_frame(*frame_args(data, 0))
        w.add_frame(*frame_args(data, 0))


def _drop_camera(args):
    f, params, images, masks = args
    images.pop("cam_01")
    return f, params, images, masks


def _replace(pos: int, key: str, value):
    def fn(args):
        args = list(args)
        args[pos] = {**args[pos], key: value}
        return tuple(args)
    return fn


@pytest.mark.parametrize("mutate, words", [
    (_drop_camera, ["images", "no entry", "cam_01"]),
    (_replace(2, "cam_02", np.zeros((H, W, 3), np.float32)), ["cam_02", "dtype is float32", "uint8"]),
    (_replace(2, "cam_00", np.zeros((H, W, 4), np.uint8)), ["cam_00", "(16, 16, 4)"]),
    (_replace(3, "cam_00", np.ones((H, W), np.uint8)), ["cam_00", "0/1", "255"]),
    (_replace(3, "cam_03", np.ones((H, W), bool)), ["masks", "unknown camera", "cam_03"]),
    (_replace(1, "body_pose", np.zeros(72)), ["body_pose", "(72,)", "(69,)"]),
    (_replace(1, "transl", np.array([0.0, np.nan, 0.0])), ["transl", "NaN"]),
    (_replace(1, "expression", np.zeros(10)), ["smpl_params", "unknown", "expression"]),
], ids=["missing-camera", "float-image", "rgba-image", "01-mask", "unknown-camera", "body-pose", "nan",
        "extra-param"])
def test_add_frame_rejects(tmp_path: Path, data: dict, mutate, words):
    with pytest.raises(CaptureError) as info, writer(tmp_path / "cap", data) as w:
        w.add_frame(*mutate(frame_args(data, 0)))
    for word in words:
        assert word in str(info.value), f"{word!r} not in: {info.value}"
    assert list(tmp_path.iterdir()) == []


def test_writer_rejects_camera_of_wrong_size(tmp_path: Path, data: dict):
    cameras = {**data["cameras"], "cam_02": orbit_camera(0.0, 0.0, 3.0, width=W + 2, height=H)}
    with pytest.raises(CaptureError, match="cam_02.*18x16"):
        CaptureWriter(tmp_path / "cap", cameras, (H, W), (0, 0, 0), "smpl", SPLITS)


def test_writer_rejects_split_with_unknown_camera(tmp_path: Path, data: dict):
    splits = {**SPLITS, "train_cameras": ["cam_00", "cam_5"]}
    with pytest.raises(CaptureError, match="cam_5"):
        CaptureWriter(tmp_path / "cap", data["cameras"], (H, W), (0, 0, 0), "smpl", splits)
