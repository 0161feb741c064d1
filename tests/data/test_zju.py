"""The ZJU-MoCap / EasyMocap reader: a PoseGen capture exported to that layout reads back as the same
capture, and each kind of broken input is refused with the file and the fix."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from export_zju import export_zju
from PIL import Image
from scipy.spatial.transform import Rotation

from posegen_env.body.body_model import load_body_model
from posegen_env.data.capture import (
    CaptureError,
    CaptureWriter,
    ZjuCapture,
    detect_format,
    load_any_capture,
    load_capture,
    load_zju_capture,
)
from posegen_env.data.capture.zju_convert import easymocap_to_smpl, remap, smpl_to_easymocap, undistortion_coords
from posegen_env.render.camera import orbit_camera

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def body():
    return load_body_model()


@pytest.fixture(scope="module")
def native(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("native") / "capture"
    subprocess.run([sys.executable, str(ROOT / "train" / "make_capture.py"), "--quick", "--background", "0", "0", "0",
                    "--out", str(out)], check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def zju(native, body, tmp_path_factory) -> Path:
    return export_zju(native, tmp_path_factory.mktemp("zju") / "capture", body)


@pytest.fixture
def copy(zju, tmp_path) -> Path:
    """A copy of the exported capture that a test may break."""
    return Path(shutil.copytree(zju, tmp_path / "capture"))


def posed(body, params: dict) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad():
        out = body(params["global_orient"], params["body_pose"], params["betas"], params["transl"])
    return out.joints.numpy(), out.vertices.numpy()


def assert_same_bodies(body, a, b) -> None:
    for frame in range(a.num_frames):
        for x, y in zip(posed(body, a.frame_params(frame)), posed(body, b.frame_params(frame)), strict=True):
            np.testing.assert_allclose(x, y, rtol=0, atol=1e-5)


def annots(path: Path) -> dict:
    return np.load(path / "annots.npy", allow_pickle=True).item()


def save_annots(path: Path, doc: dict) -> None:
    np.save(path / "annots.npy", doc)


def expect_error(path: Path, *words: str, **kwargs) -> str:
    with pytest.raises(CaptureError) as err:
        load_any_capture(path, **kwargs)
    message = str(err.value)
    for word in words:
        assert word in message, message
    return message


# --------------------------------------------------------------------------------------------------
# Round trip


def test_exported_capture_reads_back_as_the_native_one(native, zju, body):
    ref, cap = load_capture(native), load_any_capture(zju, body=body)
    assert isinstance(cap, ZjuCapture) and detect_format(zju) == "zju" and detect_format(native) == "posegen"
    assert cap.camera_names == ref.camera_names and cap.image_size == ref.image_size
    assert cap.num_frames == ref.num_frames and cap.background == (0, 0, 0)
    for name, cam in ref.cameras.items():
        for key in ("K", "R", "t"):
            np.testing.assert_allclose(getattr(cap.cameras[name], key), getattr(cam, key), rtol=0, atol=1e-9)
    assert_same_bodies(body, ref, cap)
    for name in ref.camera_names:
        for frame in range(ref.num_frames):
            person = ref.load_alpha(name, frame) > 0  # the exported mask: any coverage of the pixel
            np.testing.assert_array_equal(cap.load_mask(name, frame), person)
            np.testing.assert_array_equal(cap.load_alpha(name, frame), person.astype(np.float32))
            np.testing.assert_array_equal(cap.load_image(name, frame), ref.load_image(name, frame))
    # Default splits: every 4th camera and the last 10 % of frames (at least one) held out.
    assert cap.splits == {"train_cameras": ["cam_00", "cam_01", "cam_02", "test_00", "test_01"],
                          "test_cameras": ["cam_03"], "train_frames": [0, 1, 2, 3], "test_frames": [4]}


def test_export_writes_easymocap_conventions(zju):
    doc = annots(zju)
    centres = [np.linalg.norm(-R.T @ T) for R, T in zip(doc["cams"]["R"], doc["cams"]["T"], strict=True)]
    assert min(centres) > 1000  # millimetres
    assert doc["cams"]["T"][0].shape == (3, 1) and doc["cams"]["D"][0].shape == (5, 1)
    assert doc["ims"][2]["ims"][0] == "cam_00/000002.png"
    params = np.load(zju / "params" / "2.npy", allow_pickle=True).item()
    assert params["poses"].shape == (1, 72) and not params["poses"][0, :3].any()
    assert params["Rh"].shape == params["Th"].shape == (1, 3) and params["shapes"].shape == (1, 10)


def test_conversion_is_easymocaps_transform(body):
    """R(Rh) X + Th, X posed with all 72 poses values (root included) and no translation."""
    rng = np.random.default_rng(0)
    n = 5
    poses, Rh, Th = rng.normal(scale=0.3, size=(n, 72)), rng.normal(size=(n, 3)), rng.normal(size=(n, 3))
    shapes = rng.normal(size=(n, 10))
    with torch.no_grad():
        local = body(poses[:, :3], poses[:, 3:], shapes).vertices.numpy().astype(np.float64)
    world = np.einsum("nij,nvj->nvi", Rotation.from_rotvec(Rh).as_matrix(), local) + Th[:, None]
    smpl = easymocap_to_smpl(poses, Rh, Th, shapes, body)
    np.testing.assert_allclose(posed(body, smpl)[1], world, rtol=0, atol=1e-5)
    back = smpl_to_easymocap(smpl, body)
    assert not back["poses"][:, :3].any()
    np.testing.assert_allclose(posed(body, easymocap_to_smpl(**back, body=body))[1], world, rtol=0, atol=1e-5)


def test_shape_translation_and_root_pose_survive_the_round_trip(tmp_path, body):
    rng = np.random.default_rng(1)
    names = ("a", "b")
    cameras = {n: orbit_camera(180.0 * i, 10.0, 3.0, width=8, height=8) for i, n in enumerate(names)}
    splits = {"train_cameras": ["a"], "test_cameras": ["b"], "train_frames": [0, 1], "test_frames": [2]}
    with CaptureWriter(tmp_path / "native", cameras, (8, 8), (0, 0, 0), "test", splits) as w:
        for f in range(3):
            params = {"global_orient": rng.normal(size=3), "body_pose": rng.normal(scale=0.2, size=69),
                      "betas": rng.normal(size=10), "transl": rng.normal(size=3)}
            w.add_frame(f, params, {n: np.zeros((8, 8, 3), np.uint8) for n in names},
                        {n: np.zeros((8, 8), bool) for n in names})
    zju = export_zju(tmp_path / "native", tmp_path / "zju", body)
    # EasyMocap may keep part of the rotation in poses[:3]: move some of Rh there, keeping the body in place.
    path = zju / "params" / "1.npy"
    p = np.load(path, allow_pickle=True).item()
    root = np.array([0.3, -0.2, 0.5])
    j0 = posed(body, {"global_orient": np.zeros(3), "body_pose": np.zeros(69), "betas": p["shapes"][0],
                      "transl": np.zeros(3)})[0][0, 0]
    rot = Rotation.from_rotvec(p["Rh"][0])
    rest = rot * Rotation.from_rotvec(root).inv()
    p["poses"][0, :3] = root
    p["Th"] = p["Th"] + (rot.apply(j0) - rest.apply(j0))[None]
    p["Rh"] = rest.as_rotvec()[None]
    np.save(path, p)
    assert_same_bodies(body, load_capture(tmp_path / "native"), load_any_capture(zju, body=body))


def test_split_options(zju, body):
    cap = load_zju_capture(zju, body, test_cameras=["test_01", "test_00"], test_frames=2)
    assert cap.splits["test_cameras"] == ["test_00", "test_01"] and cap.splits["test_frames"] == [3, 4]
    assert cap.splits["train_cameras"] == ["cam_00", "cam_01", "cam_02", "cam_03"]
    expect_error(zju, "cam_99", "cam_00", body=body, test_cameras=["cam_99"])
    expect_error(zju, "test_frames = 5", "5 frames", body=body, test_frames=5)


def test_format_option(native, zju, body):
    expect_error(zju, "capture.json", format="posegen")
    expect_error(native, "annots.npy", "file is missing", format="zju", body=body)
    expect_error(native, "capture.json", "ZJU", test_frames=1)
    expect_error(native, "'json'", format="json")


# --------------------------------------------------------------------------------------------------
# Masks, backgrounds, distortion


def test_masks_of_either_folder_and_any_values(copy, body):
    cap = load_zju_capture(copy, body)
    person = cap.load_mask("cam_01", 0)
    extra = np.zeros_like(person)
    extra[:4, :4] = True  # a corner the first mask misses
    Image.fromarray(person.astype(np.uint8)).save(copy / "mask" / "cam_01" / "000000.png")  # 0/1 valued
    for name in cap.camera_names:
        (copy / "mask_cihp" / name).mkdir(parents=True)
        for frame in range(cap.num_frames):
            labels = np.where(extra, 7, 0).astype(np.uint8)  # part labels: non-zero is the person
            Image.fromarray(labels).save(copy / "mask_cihp" / name / f"{frame:06d}.png")
    again = load_zju_capture(copy, body)
    np.testing.assert_array_equal(again.load_mask("cam_01", 0), person | extra)


def test_images_are_composited_onto_black(copy, zju, body):
    path = copy / "cam_02" / "000003.png"
    image = np.array(Image.open(path))
    person = load_zju_capture(zju, body).load_mask("cam_02", 3)
    noise = np.random.default_rng(2).integers(0, 256, size=image.shape, dtype=np.uint8)
    Image.fromarray(np.where(person[..., None], image, noise)).save(path)  # a "real" background
    np.testing.assert_array_equal(load_zju_capture(copy, body).load_image("cam_02", 3), image)


def test_undistortion_maps_a_distorted_point_to_its_pinhole_projection():
    """A blob drawn where OpenCV's model (k1 k2 p1 p2 k3) images a point lands at K x after undistortion."""
    K = np.array([[80.0, 0.0, 50.0], [0.0, 82.0, 45.0], [0.0, 0.0, 1.0]])
    D = np.array([-0.3, 0.1, 0.002, -0.003, -0.02])
    x, y = 0.45, -0.4  # normalised image coordinates
    r2 = x * x + y * y
    radial = 1 + D[0] * r2 + D[1] * r2**2 + D[4] * r2**3
    xd = x * radial + 2 * D[2] * x * y + D[3] * (r2 + 2 * x * x)
    yd = y * radial + D[2] * (r2 + 2 * y * y) + 2 * D[3] * x * y
    v, u = np.mgrid[0:90, 0:100]
    blob = np.exp(-((u - (K[0, 0] * xd + K[0, 2])) ** 2 + (v - (K[1, 1] * yd + K[1, 2])) ** 2) / 4.0)
    out = remap(blob, undistortion_coords(K, D, (90, 100)))
    centre = np.array([(out * u).sum(), (out * v).sum()]) / out.sum()
    np.testing.assert_allclose(centre, [K[0, 0] * x + K[0, 2], K[1, 1] * y + K[1, 2]], atol=0.1)
    np.testing.assert_allclose(remap(blob, undistortion_coords(K, np.zeros(5), (90, 100))), blob, atol=1e-6)


def test_images_and_masks_are_undistorted_with_D(copy, zju, body):
    D = np.array([-0.6, 0.2, 0.0, 0.0, 0.0])
    doc = annots(copy)
    doc["cams"]["D"][1] = D.reshape(5, 1)
    save_annots(copy, doc)
    plain, bent = load_zju_capture(zju, body), load_zju_capture(copy, body)
    assert not bent.distortion["cam_01"].any() and bent.raw_distortion["cam_01"][0] == -0.6
    np.testing.assert_array_equal(bent.load_image("cam_00", 0), plain.load_image("cam_00", 0))
    coords = undistortion_coords(plain.cameras["cam_01"].K, D, plain.image_size)
    mask, image = bent.load_mask("cam_01", 0), bent.load_image("cam_01", 0)
    np.testing.assert_array_equal(mask, remap(plain.load_mask("cam_01", 0), coords) >= 0.5)
    assert mask.sum() > plain.load_mask("cam_01", 0).sum()  # barrel distortion undone: the person grows
    expected = np.rint(remap(plain.load_image("cam_01", 0), coords)) * mask[..., None]
    np.testing.assert_allclose(image, expected, atol=1)


# --------------------------------------------------------------------------------------------------
# Broken input


def test_missing_params_file(copy, body):
    (copy / "params" / "2.npy").unlink()
    expect_error(copy, "params/2.npy", "missing", "0.npy to 4.npy", "drop frame 2", body=body)


def test_params_numbered_from_one(copy, body, zju):
    folder = copy / "params"
    for f in reversed(range(5)):
        (folder / f"{f}.npy").rename(folder / f"{f + 1}.npy")
    assert_same_bodies(body, load_zju_capture(zju, body), load_zju_capture(copy, body))


def test_params_with_missing_key(copy, body):
    path = copy / "params" / "0.npy"
    p = np.load(path, allow_pickle=True).item()
    del p["Th"]
    np.save(path, p)
    expect_error(copy, "0.npy", "Th", body=body)


def test_camera_list_shorter_than_image_lists(copy, body):
    doc = annots(copy)
    for key in ("K", "D", "R", "T"):
        doc["cams"][key] = doc["cams"][key][:-1]
    save_annots(copy, doc)
    expect_error(copy, "annots.npy", "ims[0] has 6 image paths", "5 cameras", body=body)


def test_camera_lists_of_different_lengths(copy, body):
    doc = annots(copy)
    doc["cams"]["D"] = doc["cams"]["D"][:-1]
    save_annots(copy, doc)
    expect_error(copy, "annots.npy", "'D': 5", "one entry per camera", body=body)


def test_image_folder_renamed(copy, body):
    (copy / "cam_01").rename(copy / "Camera_B2")
    expect_error(copy, "cam_01", "do not exist", "Camera_B2", body=body)


def test_cameras_listed_in_another_order(copy, body):
    doc = annots(copy)
    ims = doc["ims"][3]["ims"]
    ims[0], ims[1] = ims[1], ims[0]
    save_annots(copy, doc)
    expect_error(copy, "ims[3]['ims'][0]", "cam_00", "order", body=body)


def test_missing_image_and_mask_files(copy, body):
    (copy / "cam_02" / "000001.png").unlink()
    (copy / "mask" / "test_00" / "000004.png").unlink()
    expect_error(copy, "2 image/mask file(s)", "cam_02/000001.png", "mask/test_00/000004.png", body=body)


def test_T_in_metres(copy, body):
    doc = annots(copy)
    doc["cams"]["T"] = [T / 1000.0 for T in doc["cams"]["T"]]
    save_annots(copy, doc)
    expect_error(copy, "annots.npy", "median 3.4", "metres", "Multiply every cams['T'] by 1000", body=body)


def test_Th_in_millimetres(copy, body):
    for path in (copy / "params").iterdir():
        p = np.load(path, allow_pickle=True).item()
        p["Th"] = p["Th"] * 1000.0 + 900.0
        np.save(path, p)
    expect_error(copy, "params", "millimetres", "divide every Th by 1000", body=body)


def test_no_annots(copy, body):
    (copy / "annots.npy").unlink()
    expect_error(copy, "not a capture", "capture.json", "annots.npy")
    with pytest.raises(CaptureError, match="annots.npy: file is missing"):
        load_zju_capture(copy, body)


def test_not_a_capture(tmp_path, zju):
    expect_error(tmp_path / "nope", "does not exist")
    (tmp_path / "empty").mkdir()
    expect_error(tmp_path / "empty", "not a capture", "capture.json", "annots.npy")
    shutil.copytree(zju, tmp_path / "outer" / "CoreView_000")
    expect_error(tmp_path / "outer", "CoreView_000", "point at one of them")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "annots.npy").write_bytes(b"not numpy")
    expect_error(tmp_path / "bad", "annots.npy", "cannot be read")


# --------------------------------------------------------------------------------------------------
# Fitting


def test_fit_avatar_reads_the_zju_layout(zju, tmp_path):
    out = tmp_path / "avatar.pt"
    cmd = [sys.executable, str(ROOT / "train" / "fit_avatar.py"), "--capture", str(zju), "--out", str(out),
           "--quick", "--voxel", "0.02", "--test-cameras", "test_00", "--test-frames", "1"]
    subprocess.run(cmd, check=True, capture_output=True)
    assert out.is_file()
    bad = subprocess.run(cmd[:6] + ["--format", "posegen", "--quick"], capture_output=True, text=True)
    assert bad.returncode != 0 and "capture.json" in bad.stderr and "Traceback" not in bad.stderr
