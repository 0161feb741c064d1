"""Write a PoseGen capture in the ZJU-MoCap / EasyMocap layout: known data for the ZJU reader.

    python train/export_zju.py --capture captures/default --out captures/default_zju

Cameras go to ``annots.npy`` (T in millimetres, the capture's D), each camera's images to
``<camera>/<frame:06d>.png`` as they are (the capture's background stands in for a real one),
masks to ``mask/`` (255 wherever the person covers any part of a pixel, 0 elsewhere) and each
frame's SMPL parameters to ``params/<frame>.npy`` as EasyMocap writes them: ``poses`` with a zero
root, ``Rh``, ``Th`` (metres) and ``shapes``. The ZJU reader composites images onto black, so a
capture rendered on black (``make_capture.py --background 0 0 0``) reads back image for image.
The copy appears at ``--out`` complete, or not at all.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from posegen_env.body.body_model import BodyModel, BodyModelError, load_body_model
from posegen_env.cli import run_script
from posegen_env.data.capture import Capture, CaptureError, frame_file, load_capture, load_zju_capture
from posegen_env.data.capture.zju_convert import smpl_to_easymocap
from posegen_env.data.capture.zju_data import ANNOTS
from posegen_env.files import check_replaceable, install_directory, staging_directory

PARAMS = "params"
MASKS = "mask"


def annotations(capture: Capture) -> dict:
    """annots.npy's dict: per-camera K, D (5, 1), R, T (3, 1) in millimetres, and the image paths."""
    names = capture.camera_names
    cams = {"K": [capture.cameras[n].K for n in names],
            "D": [np.asarray(capture.distortion.get(n, np.zeros(5)), np.float64).reshape(5, 1) for n in names],
            "R": [capture.cameras[n].R for n in names],
            "T": [capture.cameras[n].t.reshape(3, 1) * 1000.0 for n in names]}
    ims = [{"ims": [f"{n}/{frame_file(f)}" for n in names]} for f in range(capture.num_frames)]
    return {"cams": cams, "ims": ims}


def write_frame(capture: Capture, frame: int, params: dict[str, np.ndarray], out: Path) -> None:
    """One frame's images, masks and EasyMocap parameters."""
    for name in capture.camera_names:
        Image.fromarray(capture.load_image(name, frame)).save(out / name / frame_file(frame))
        person = capture.load_alpha(name, frame) > 0
        Image.fromarray(person.astype(np.uint8) * 255).save(out / MASKS / name / frame_file(frame))
    np.save(out / PARAMS / f"{frame}.npy", {k: v[frame][None] for k, v in params.items()})


def export_zju(capture_dir: Path, out_dir: Path, body: BodyModel | str | None = None,
               overwrite: bool = False) -> Path:
    """Write the capture at ``capture_dir`` to ``out_dir`` in the ZJU layout; returns ``out_dir``."""
    capture = load_capture(capture_dir)
    model = body if isinstance(body, BodyModel) else load_body_model(body)
    params = smpl_to_easymocap(capture.smpl, model)
    check = lambda d: check_replaceable(d, overwrite, ANNOTS, CaptureError, "ZJU capture")  # noqa: E731
    check(out_dir)
    tmp = staging_directory(out_dir)
    try:
        for name in capture.camera_names:
            (tmp / name).mkdir()
            (tmp / MASKS / name).mkdir(parents=True)
        (tmp / PARAMS).mkdir()
        for frame in tqdm(range(capture.num_frames), desc="exporting to ZJU layout", unit="frame"):
            write_frame(capture, frame, params, tmp)
        np.save(tmp / ANNOTS, annotations(capture))
        load_zju_capture(tmp, model, check_files=False)  # never write what the reader would reject
        install_directory(tmp, out_dir, check)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--capture", type=Path, required=True, help="PoseGen capture (docs/capture_format.md)")
    parser.add_argument("--out", type=Path, required=True, help="folder to write the ZJU-layout copy to")
    parser.add_argument("--body", default=None, help="SMPL .pkl or PoseGen body .npz the capture was made with")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing ZJU capture at --out")
    args = parser.parse_args(argv)
    capture = load_capture(args.capture)
    if tuple(capture.background) != (0, 0, 0):
        print(f"note: {args.capture} has background {list(capture.background)}; the ZJU reader composites onto "
              "black, so the background and the person's anti-aliased edge will differ from the capture's")
    export_zju(args.capture, args.out, args.body, args.overwrite)
    print(f"wrote {args.out}: {len(capture.cameras)} cameras x {capture.num_frames} frames in the ZJU layout")


# What ends the script with one line instead of a traceback.
ERRORS = (CaptureError, BodyModelError)


if __name__ == "__main__":
    run_script(main, "export_zju.py", ERRORS)
