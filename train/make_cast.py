"""Build a cast: subjects in their own clothes and builds who share one avatar geometry, in one file.

For subject k (seed s = --seed + k): train/make_capture.py renders a synthetic capture of the body
in outfit s with build s (--outfit-seed s --betas-seed s); train/fit_avatar.py fits its colour on
the shared geometry (--geometry, by default the shipped avatar) with the density frozen; its PSNR
on the capture's held-out cameras is measured. The cast file (posegen_env/render/avatar/cast.py)
gets every subject, the last --heldout of them flagged as held out.

    python train/make_cast.py --out runs/cast.pt            # 8 training + 2 held-out subjects
    python train/make_cast.py --out runs/cast.pt --quick --subjects 2 --heldout 1   # smoke test

Work goes to --work (default: OUT with the suffix .work): per subject a capture folder, a fitted
avatar and a result file, each written atomically. A rerun skips what is there, so an interrupted
build resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import fit_avatar
import numpy as np
import torch

from posegen_env.body.body_model import BodyModelError, load_body_model
from posegen_env.cli import run_script
from posegen_env.data.capture import CaptureError, load_capture
from posegen_env.files import atomic_write
from posegen_env.render.avatar import DEFAULT_AVATAR_PATH, AvatarError, CastSubject, load_avatar, save_cast
from posegen_env.render.avatar.fit import FitError, evaluate
from posegen_env.settings import add_device_option

MAKE_CAPTURE = Path(__file__).resolve().parent / "make_capture.py"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="cast file to write (.pt)")
    parser.add_argument("--geometry", type=Path, default=DEFAULT_AVATAR_PATH,
                        help="avatar or cast file whose geometry (density) every subject shares")
    parser.add_argument("--subjects", type=int, default=10, help="subjects in all, held-out ones included")
    parser.add_argument("--heldout", type=int, default=2, help="how many of them (the last) are held out")
    parser.add_argument("--seed", type=int, default=0, help="subject k has outfit and betas seed SEED + k")
    parser.add_argument("--steps", type=int, default=500, help="colour-fitting steps per subject")
    parser.add_argument("--work", type=Path, default=None, help="folder of the per-subject work (resumable)")
    add_device_option(parser)
    parser.add_argument("--quick", action="store_true", help="tiny captures and fits (smoke tests)")
    args = parser.parse_args(argv)
    if args.subjects < 1 or not 0 <= args.heldout <= args.subjects or args.steps < 1:
        parser.error("--subjects and --steps must be positive and --heldout between 0 and --subjects")
    args.work = args.work or args.out.with_suffix(".work")
    return args


def subject_plan(args: argparse.Namespace) -> list[dict]:
    """Name, seeds and held-out flag of every subject."""
    first_heldout = args.subjects - args.heldout
    return [{"name": f"subject_{k:02d}", "outfit_seed": args.seed + k, "betas_seed": args.seed + k,
             "heldout": k >= first_heldout} for k in range(args.subjects)]


def render_capture(out: Path, subject: dict, quick: bool) -> None:
    """The subject's synthetic capture, by train/make_capture.py (it installs the folder only when complete)."""
    cmd = [sys.executable, str(MAKE_CAPTURE), "--out", str(out), "--outfit-seed", str(subject["outfit_seed"]),
           "--betas-seed", str(subject["betas_seed"])] + (["--quick"] if quick else [])
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"make_cast.py: error: rendering the capture of {subject['name']} failed "
                         f"({' '.join(cmd[1:])}):\n{done.stderr.strip()[-2000:]}")


def fit_colour(capture: Path, out: Path, args: argparse.Namespace, seed: int) -> None:
    """The subject's colour on the shared geometry, by train/fit_avatar.py (which resumes from OUT.ckpt)."""
    fit_avatar.main(["--capture", str(capture), "--geometry", str(args.geometry), "--out", str(out),
                     "--steps", str(args.steps), "--device", str(args.device), "--seed", str(seed)]
                    + (["--quick"] if args.quick else []))


def heldout_view_psnr(avatar, capture) -> float:
    """Whole-image PSNR on the held-out cameras, every 4th training pose."""
    s = capture.splits
    return evaluate(avatar, capture, s["train_frames"][::4], s["test_cameras"] or s["train_cameras"])


def build_subject(subject: dict, args: argparse.Namespace, body) -> dict:
    """Capture, fit and measure one subject, skipping each step already done; its result record."""
    folder = args.work / subject["name"]
    result_path = folder / "result.json"
    if result_path.is_file():
        return json.loads(result_path.read_text())
    start = time.time()
    capture_dir, avatar_path = folder / "capture", folder / "avatar.pt"
    if not capture_dir.is_dir():
        render_capture(capture_dir, subject, args.quick)
    if not avatar_path.is_file():
        fit_colour(capture_dir, avatar_path, args, subject["outfit_seed"])
    capture = load_capture(capture_dir)
    avatar = load_avatar(avatar_path, body, args.device)
    result = subject | {
        "betas": np.asarray(capture.frame_params(0)["betas"], dtype=float).tolist(),
        "outfit": capture.meta.get("outfit", {"outfit_seed": subject["outfit_seed"]}),
        "psnr": heldout_view_psnr(avatar, capture),
        "seconds": round(time.time() - start, 1),
    }
    atomic_write(result_path, lambda tmp: tmp.write_text(json.dumps(result, indent=1)))
    return result


def main(argv=None) -> None:
    args = parse_args(argv)
    start = time.time()
    body = load_body_model()
    results = []
    for subject in subject_plan(args):
        result = build_subject(subject, args, body)
        results.append(result)
        print(f"{result['name']}: held-out-view PSNR {result['psnr']:.2f} dB"
              + (" (held out)" if result["heldout"] else ""), flush=True)
    avatars = [load_avatar(args.work / r["name"] / "avatar.pt", body) for r in results]
    subjects = [CastSubject(r["name"], torch.tensor(r["betas"]), r["heldout"], r["outfit"], r["psnr"])
                for r in results]
    meta = {"generator": "train/make_cast.py", "geometry": str(args.geometry), "seed": args.seed,
            "steps": args.steps, "quick": args.quick}
    save_cast(args.out, avatars, subjects, meta=meta)
    size = args.out.stat().st_size
    print(f"wrote {args.out}: {len(results)} subjects ({args.heldout} held out), {size / 1e6:.1f} MB, "
          f"in {time.time() - start:.0f} s")


# What ends the script with one line instead of a traceback.
ERRORS = (CaptureError, BodyModelError, AvatarError, FitError)


if __name__ == "__main__":
    run_script(main, "make_cast.py", ERRORS)
