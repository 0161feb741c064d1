"""train/fit_avatar.py never silently replaces an avatar fitted from another capture: --out is checked
before anything is fitted (fitting itself is stubbed out here), --overwrite replaces such an avatar,
and refitting or resuming the same capture goes on as before."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import fit_avatar
import numpy as np
import pytest

from posegen_env.body.body_model import load_body_model
from posegen_env.data.capture import CaptureWriter, load_capture
from posegen_env.render.avatar.checkpoint import AvatarError, save_avatar
from posegen_env.render.avatar.fit import new_avatar
from posegen_env.render.camera import orbit_camera
from posegen_env.render.mesh.renderer import MeshRenderer

ROOT = Path(__file__).resolve().parents[2]
SIZE = 16
NAMES = ("cam_00", "cam_01")
SMALL = ["--quick", "--voxel", "0.05", "--proxy-faces", "500"]


class Fitting(Exception):
    """Raised where fitting would begin: --out got past its check."""


@pytest.fixture(scope="module")
def body():
    return load_body_model()


def make_capture(body, out: Path, turn: float) -> Path:
    """Two cameras x two frames of 16 x 16 pixels; ``turn`` makes the SMPL parameters another capture's."""
    cameras = {n: orbit_camera(az, 10.0, 3.4, target=body.rest_joints()[0], fov_deg=40, width=SIZE)
               for n, az in zip(NAMES, (0.0, 120.0), strict=True)}
    renderer = MeshRenderer(body, background=(255, 255, 255), supersample=1)
    splits = {"train_cameras": list(NAMES), "test_cameras": [], "train_frames": [0, 1], "test_frames": []}
    with CaptureWriter(out, cameras, (SIZE, SIZE), (255, 255, 255), body.identifier, splits) as w:
        for f in range(2):
            orient = np.array([0.0, turn + 0.8 * f, 0.0])
            rgb, alpha = renderer.render(orient, np.zeros(69), None, None, list(cameras.values()))
            w.add_frame(f, {"global_orient": orient, "body_pose": np.zeros(69), "betas": np.zeros(10),
                            "transl": np.zeros(3)}, dict(zip(NAMES, rgb, strict=True)),
                        {n: (a * 255 + 0.5).astype(np.uint8) for n, a in zip(NAMES, alpha, strict=True)})
    return out


@pytest.fixture(scope="module")
def captures(body, tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("fit_out")
    return make_capture(body, root / "mine", 0.0), make_capture(body, root / "other", 1.5)


@pytest.fixture(scope="module")
def tiny(body):
    return new_avatar(body, voxel_size=0.05, proxy_faces=500)


@pytest.fixture(autouse=True)
def no_fitting(monkeypatch):
    def stop(*args, **kwargs):
        raise Fitting

    monkeypatch.setattr(fit_avatar, "build_ray_bank", stop)


def avatar_of(path: Path, tiny, capture: Path | None, **extra) -> bytes:
    """An avatar file at ``path`` fitted from ``capture`` (None: one that records no fingerprint)."""
    meta = {"capture": str(capture)} | ({"capture_fingerprint": load_capture(capture).fingerprint()} if capture else {})
    save_avatar(path, tiny, meta=meta, extra=extra or None)
    return path.read_bytes()


def fit(capture: Path, out: Path, *more: str) -> None:
    fit_avatar.main(["--capture", str(capture), "--out", str(out), *SMALL, *more])


def test_an_avatar_of_another_capture_is_refused_before_fitting_and_kept(captures, tiny, tmp_path):
    mine, other = captures
    out = tmp_path / "A.pt"
    before = avatar_of(out, tiny, other)
    with pytest.raises(AvatarError, match=rf"--out {out} already holds an avatar of {other}, fitted from another "
                                          r"capture .*Pass another --out, or --overwrite to replace it"):
        fit(mine, out)
    assert out.read_bytes() == before and not out.with_name("A.pt.ckpt").exists()
    with pytest.raises(Fitting):  # --overwrite lets the fit go on
        fit(mine, out, "--overwrite")


def test_an_avatar_that_records_no_capture_is_refused(captures, tiny, tmp_path):
    out = tmp_path / "A.pt"
    before = avatar_of(out, tiny, None)
    with pytest.raises(AvatarError, match="records no capture fingerprint.*--overwrite"):
        fit(captures[0], out)
    assert out.read_bytes() == before


def test_refitting_the_same_capture_goes_on(captures, tiny, tmp_path):
    out = tmp_path / "A.pt"
    avatar_of(out, tiny, captures[0])
    with pytest.raises(Fitting):
        fit(captures[0], out)


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_a_file_that_is_not_an_avatar_is_never_replaced(captures, tmp_path, overwrite):
    out = tmp_path / "notes.pt"
    out.write_text("my notes, not an avatar\n")
    with pytest.raises(AvatarError, match="already exists and is not an avatar PoseGen can read .*pass another --out"):
        fit(captures[0], out, *overwrite)
    assert out.read_text() == "my notes, not an avatar\n"
    folder = tmp_path / "folder"
    folder.mkdir()
    with pytest.raises(AvatarError, match="is a folder; pass the avatar file to write"):
        fit(captures[0], folder, *overwrite)


def test_resuming_a_fit_started_with_overwrite_needs_no_flag(captures, tiny, body, tmp_path, capsys):
    mine, other = captures
    out = tmp_path / "A.pt"
    avatar_of(out, tiny, other)
    record = fit_avatar.fit_record(fit_avatar.parse_args(["--capture", str(mine), "--out", str(out), *SMALL]),
                                   load_capture(mine), body)
    avatar_of(out.with_name("A.pt.ckpt"), tiny, mine, step=5, fit=record)  # the interrupted fit's checkpoint
    with pytest.raises(Fitting):
        fit(mine, out)
    assert "resuming from" in capsys.readouterr().out


def test_the_script_ends_with_one_line(captures, tiny, tmp_path):
    out = tmp_path / "A.pt"
    avatar_of(out, tiny, captures[1])
    done = subprocess.run([sys.executable, str(ROOT / "train" / "fit_avatar.py"), "--capture", str(captures[0]),
                           "--out", str(out), *SMALL], capture_output=True, text=True)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1 and lines[0].startswith("fit_avatar.py: error: --out "), done.stderr
