"""Captures that pass validation but cannot be fitted are refused with the camera, the problem and the fix:
T in millimetres, cameras that miss the body, distortion, no training frames, empty masks, no rays, and a
stale fit checkpoint of another capture or other settings."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import fit_avatar
import numpy as np
import pytest
import torch
from PIL import Image

from posegen_env.body.body_model import load_body_model
from posegen_env.data.capture import CaptureError, CaptureWriter, load_capture
from posegen_env.render.avatar.checkpoint import AvatarError
from posegen_env.render.avatar.fit import FitError, build_ray_bank, check_fittable, new_avatar
from posegen_env.render.camera import Camera, orbit_camera
from posegen_env.render.mesh.renderer import MeshRenderer

SIZE = 24
NAMES = ("cam_00", "cam_01")
FRAMES = 2


@pytest.fixture(scope="module")
def body():
    return load_body_model()


@pytest.fixture(scope="module")
def base(body, tmp_path_factory) -> Path:
    """The smallest fittable capture: 2 cameras x 2 frames of 24 x 24 pixels, all training."""
    cameras = {n: orbit_camera(az, 10.0, 3.4, target=body.rest_joints()[0], fov_deg=40, width=SIZE)
               for n, az in zip(NAMES, (0.0, 120.0), strict=True)}
    renderer = MeshRenderer(body, background=(255, 255, 255), supersample=1)
    splits = {"train_cameras": list(NAMES), "test_cameras": [], "train_frames": list(range(FRAMES)),
              "test_frames": []}
    out = tmp_path_factory.mktemp("fitting_checks") / "capture"
    with CaptureWriter(out, cameras, (SIZE, SIZE), (255, 255, 255), body.identifier, splits) as w:
        for f in range(FRAMES):
            orient = np.array([0.0, 0.8 * f, 0.0])
            rgb, alpha = renderer.render(orient, np.zeros(69), None, None, list(cameras.values()))
            params = {"global_orient": orient, "body_pose": np.zeros(69), "betas": np.zeros(10),
                      "transl": np.zeros(3)}
            w.add_frame(f, params, dict(zip(NAMES, rgb, strict=True)),
                        {n: (a * 255 + 0.5).astype(np.uint8) for n, a in zip(NAMES, alpha, strict=True)})
    return out


@pytest.fixture
def cap(base, tmp_path) -> Path:
    """A copy of the base capture that a test may break."""
    return Path(shutil.copytree(base, tmp_path / "capture"))


def edit_json(root: Path, edit) -> None:
    path = root / "capture.json"
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))


def clear_mask(root: Path, cam: str, frame: int) -> None:
    Image.fromarray(np.zeros((SIZE, SIZE), np.uint8)).save(root / "masks" / cam / f"{frame:06d}.png")


def refused(call, *words: str, error: type[Exception] | tuple = (CaptureError, FitError)) -> str:
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} not in: {message}"
    return message


def bank(body, root: Path):
    capture = load_capture(root)
    avatar = new_avatar(body, voxel_size=0.05, proxy_faces=500, background=capture.background)
    return avatar, capture, lambda: build_ray_bank(avatar, capture, capture.splits["train_frames"],
                                                   capture.splits["train_cameras"])


# --------------------------------------------------------------------------------------------------
# 1. Cameras that see no body: T in millimetres, a camera turned away, and no rays at all


def test_millimetre_T_is_refused_at_load(cap):
    edit_json(cap, lambda doc: [c.update(T=[1000 * t for t in c["T"]]) for c in doc["cameras"]])
    refused(lambda: load_capture(cap), "capture.json", "'cam_00', 'cam_01'", "e+03 m from the body",
            "millimetres", "divide each listed camera's T by 1000")


def test_camera_that_misses_the_body_is_refused_before_fitting(cap, body):
    flip = np.diag([-1.0, 1.0, -1.0])  # same centre, looking the other way: the body is behind it
    edit_json(cap, lambda doc: doc["cameras"][1].update(R=(flip @ np.array(doc["cameras"][1]["R"])).tolist(),
                                                        T=(flip @ np.array(doc["cameras"][1]["T"])).tolist()))
    capture = load_capture(cap)  # a valid capture
    message = refused(lambda: check_fittable(body, capture, [0, 1], list(NAMES)), "capture.json",
                      "training camera(s) 'cam_01' do not see the body", "check their K, R and T")
    assert "cam_00" not in message and "millimetres" not in message
    # Millimetres that slipped past the loader (e.g. a capture built in code) are named as such.
    cam = capture.cameras["cam_00"]
    far = dataclasses.replace(capture, cameras={"cam_00": Camera(cam.K, cam.R, cam.t * 1000, SIZE, SIZE)})
    refused(lambda: check_fittable(body, far, [0], ["cam_00"]), "'cam_00' do not see the body", "under 2 pixels across",
            "would see it with T / 1000", "millimetres", "divide it by 1000")


def test_no_training_rays_is_an_error_not_a_traceback(cap, body):
    avatar, _, build = bank(body, cap)
    cast = avatar.cast

    def blind(*args):  # every ray misses the body
        bodies, hits, cams, index = cast(*args)
        return bodies, [h.select(torch.zeros(0, dtype=torch.long)) for h in hits], cams, index

    avatar.cast = blind
    refused(build, "0 training rays", "check the cameras (K, R, T in metres)")


# --------------------------------------------------------------------------------------------------
# 2. Distortion


def test_non_zero_distortion_is_refused(cap, body):
    edit_json(cap, lambda doc: doc["cameras"][1].update(D=[-0.2, 0.05, 0.0, 0.0, 0.0]))
    capture = load_capture(cap)  # D is recorded, as the format says
    refused(lambda: check_fittable(body, capture, [0, 1], list(NAMES)), "capture.json",
            "'cam_01' (D = [-0.2, 0.05, 0.0, 0.0, 0.0]) have non-zero distortion", "cv2.undistort",
            "set their D to zeros")


# --------------------------------------------------------------------------------------------------
# 3. No training frames, empty masks


@pytest.mark.parametrize("key", ["train_frames", "train_cameras"])
def test_empty_training_split_is_refused(cap, body, key):
    edit_json(cap, lambda doc: doc["splits"].update({key: []}))
    refused(bank(body, cap)[2], "capture.json", f"splits.{key} is empty", "nothing to fit on")


def test_all_empty_masks_are_refused(cap, body):
    for name in NAMES:
        for frame in range(FRAMES):
            clear_mask(cap, name, frame)
    refused(bank(body, cap)[2], "all 4 training masks", "are empty", "255 on the person")


def test_camera_with_only_empty_masks_is_refused(cap, body):
    for frame in range(FRAMES):
        clear_mask(cap, "cam_01", frame)
    refused(bank(body, cap)[2], "training camera(s) cam_01 have an empty mask", "in every training frame",
            "splits.train_cameras")


def test_a_single_empty_mask_warns_naming_it(cap, body):
    clear_mask(cap, "cam_01", 1)
    with pytest.warns(UserWarning, match=r"1 training mask\(s\) are empty .*masks/cam_01/000001.png"):
        assert len(bank(body, cap)[2]()) > 0


# --------------------------------------------------------------------------------------------------
# 4. A stale fit checkpoint


class Interrupted(Exception):
    pass


def test_stale_checkpoint_is_refused_and_a_matching_one_resumed(cap, tmp_path, monkeypatch, capsys):
    out = tmp_path / "avatar.pt"
    ckpt = out.with_name(out.name + ".ckpt")
    argv = ["--capture", str(cap), "--out", str(out), "--device", "cpu", "--steps", "3", "--ckpt-every", "1",
            "--batch-rays", "64", "--voxel", "0.05", "--proxy-faces", "500", "--samples", "4"]
    save = fit_avatar.save_avatar

    def save_then_stop(path, *args, **kwargs):  # the run dies right after its first checkpoint
        save(path, *args, **kwargs)
        raise Interrupted

    monkeypatch.setattr(fit_avatar, "save_avatar", save_then_stop)
    with pytest.raises(Interrupted):
        fit_avatar.main(argv)
    monkeypatch.setattr(fit_avatar, "save_avatar", save)
    assert ckpt.is_file()
    refused(lambda: fit_avatar.main([*argv, "--voxel", "0.04"]), str(ckpt), "voxel: 0.05 in the checkpoint, 0.04 now",
            f"Delete {ckpt}", "another --out", error=AvatarError)
    other = Path(shutil.copytree(cap, tmp_path / "other"))
    edit_json(other, lambda doc: doc.update(meta={"take": 2}))
    message = refused(lambda: fit_avatar.main([*argv[:1], str(other), *argv[2:]]), "capture: ",
                      "capture_fingerprint: ", error=AvatarError)
    assert "voxel" not in message
    fit_avatar.main(argv)  # the same fit resumes and finishes
    assert "at step 1" in capsys.readouterr().out and out.is_file() and not ckpt.exists()
