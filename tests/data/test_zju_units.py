"""A ZJU-MoCap capture's cameras are refused in its own terms: annots.npy, whose T is in millimetres,
never a capture.json it does not have nor "T must be in metres"."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from export_zju import export_zju

from posegen_env.body.body_model import load_body_model
from posegen_env.data.capture import CaptureError, CaptureWriter, load_zju_capture
from posegen_env.render.avatar.fit import FitError, build_ray_bank, check_fittable, new_avatar
from posegen_env.render.camera import Camera, orbit_camera
from posegen_env.render.mesh.renderer import MeshRenderer

SIZE = 24
NAMES = ("cam_00", "cam_01")


@pytest.fixture(scope="module")
def body():
    return load_body_model()


@pytest.fixture(scope="module")
def zju(body, tmp_path_factory) -> Path:
    """The smallest fittable capture (2 cameras x 2 frames of 24 x 24 pixels), exported to the ZJU layout."""
    cameras = {n: orbit_camera(az, 10.0, 3.4, target=body.rest_joints()[0], fov_deg=40, width=SIZE)
               for n, az in zip(NAMES, (0.0, 120.0), strict=True)}
    renderer = MeshRenderer(body, background=(0, 0, 0), supersample=1)
    splits = {"train_cameras": list(NAMES), "test_cameras": [], "train_frames": [0, 1], "test_frames": []}
    native = tmp_path_factory.mktemp("zju_units") / "native"
    with CaptureWriter(native, cameras, (SIZE, SIZE), (0, 0, 0), body.identifier, splits) as w:
        for f in range(2):
            orient = np.array([0.0, 0.8 * f, 0.0])
            rgb, alpha = renderer.render(orient, np.zeros(69), None, None, list(cameras.values()))
            w.add_frame(f, {"global_orient": orient, "body_pose": np.zeros(69), "betas": np.zeros(10),
                            "transl": np.zeros(3)}, dict(zip(NAMES, rgb, strict=True)),
                        {n: (a * 255 + 0.5).astype(np.uint8) for n, a in zip(NAMES, alpha, strict=True)})
    return export_zju(native, native.parent / "zju", body)


@pytest.fixture
def copy(zju, tmp_path) -> Path:
    return Path(shutil.copytree(zju, tmp_path / "capture"))


def edit_cams(root: Path, edit) -> None:
    doc = np.load(root / "annots.npy", allow_pickle=True).item()
    edit(doc["cams"])
    np.save(root / "annots.npy", doc)


def in_zju_terms(message: str) -> None:
    assert "annots.npy" in message and "millimetres" in message, message
    assert "capture.json" not in message and "must be in metres" not in message, message


def test_millimetres_still_too_far_are_refused_at_load_naming_annots(copy, body):
    edit_cams(copy, lambda cams: cams.update(T=[1000 * t for t in cams["T"]]))  # mm, but 1000x too far
    with pytest.raises(CaptureError) as err:
        load_zju_capture(copy, body)
    message = str(err.value)
    in_zju_terms(message)
    for words in ("'cam_00' (cams[0]), 'cam_01' (cams[1])", "e+03 m from the body", "divide each listed camera's T"):
        assert words in message, message


def test_fitting_checks_name_annots_and_millimetres(copy, body):
    capture = load_zju_capture(copy, body)
    train = capture.splits["train_frames"]
    # A camera turned away: it does not see the body.
    cam = capture.cameras["cam_01"]
    flip = np.diag([-1.0, 1.0, -1.0])
    turned = dataclasses.replace(capture, cameras={**capture.cameras, "cam_01": Camera(
        cam.K, flip @ cam.R, flip @ cam.t, SIZE, SIZE)})
    with pytest.raises(FitError) as err:
        check_fittable(body, turned, train, list(NAMES))
    in_zju_terms(str(err.value))
    assert "'cam_01' do not see the body" in str(err.value) and "T in millimetres" in str(err.value)
    # Cameras 1000x too far that slipped past the loader (a capture built in code): the hint is in mm too.
    cam = capture.cameras["cam_00"]
    far = dataclasses.replace(capture, cameras={"cam_00": Camera(cam.K, cam.R, cam.t * 1000, SIZE, SIZE)})
    with pytest.raises(FitError) as err:
        check_fittable(body, far, train, ["cam_00"])
    in_zju_terms(str(err.value))
    assert "would see it with T / 1000" in str(err.value) and "divide it by 1000" in str(err.value)


def test_no_training_rays_names_annots_and_millimetres(copy, body):
    capture = load_zju_capture(copy, body)
    avatar = new_avatar(body, voxel_size=0.05, proxy_faces=500, background=capture.background)
    cast = avatar.cast

    def blind(*args):  # every ray misses the body
        bodies, hits, cams, index = cast(*args)
        return bodies, [h.select(torch.zeros(0, dtype=torch.long)) for h in hits], cams, index

    avatar.cast = blind
    with pytest.raises(FitError) as err:
        build_ray_bank(avatar, capture, capture.splits["train_frames"], capture.splits["train_cameras"])
    in_zju_terms(str(err.value))
    assert "K, R, T in millimetres" in str(err.value)
