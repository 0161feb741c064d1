"""Fit an animatable human NeRF (PoseGen avatar) to a multi-view capture.

    python train/fit_avatar.py --capture captures/default --out runs/avatar.pt

Trains on the capture's training cameras and frames, reports whole-image PSNR on its held-out
cameras (training poses) and held-out poses, checkpoints periodically (atomically) to ``OUT.ckpt``
and resumes from it. Uses CUDA when available. The capture is in PoseGen's layout or
ZJU-MoCap / EasyMocap's, told apart by its files (``--format``; docs/capture_format.md).

Resuming: ``OUT.ckpt`` records the capture (resolved path and a fingerprint of its cameras,
splits and SMPL parameters) and the settings that change the fit (--steps, --batch-rays, --lr,
--seed, the body, and --voxel, --shell, --samples, --proxy-faces, --inflate or --geometry). A
checkpoint that differs is refused with what differs: delete it to start over, or use another --out.

An existing ``OUT`` fitted from another capture (its cameras, splits or SMPL parameters differ), or
not readable as an avatar, is refused before anything is fitted, so a wrong --out never loses a fit:
pass another --out, or ``--overwrite`` to replace an avatar. Refitting the same capture replaces it.

Before fitting, what validation cannot see is refused: no training frames or cameras, non-zero
distortion D (undistort first), training cameras that see none of the body (T in millimetres?),
masks empty for a whole camera or frame, no training rays. A few empty masks only warn.

A new subject on a shared geometry (a cast, docs/avatar.md) fits only its colour, with the
geometry's density frozen:

    python train/fit_avatar.py --capture captures/subject --geometry posegen_env/assets/default_avatar.pt \
        --out runs/subject.pt
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from posegen_env.body.body_model import BodyModelError, load_body_model
from posegen_env.cli import run_script
from posegen_env.data.capture import FORMATS, CaptureError, load_any_capture
from posegen_env.render.avatar.checkpoint import (
    AvatarError,
    build_avatar,
    check_body,
    check_resumable,
    read_avatar_file,
    save_avatar,
)
from posegen_env.render.avatar.fit import (
    FitError,
    build_ray_bank,
    evaluate,
    fitted_parameters,
    freeze_geometry,
    new_avatar,
    new_subject,
    photometric_loss,
)
from posegen_env.render.avatar.loading import load_geometry
from posegen_env.settings import add_device_option


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--capture", type=Path, required=True, help="capture folder (docs/capture_format.md)")
    parser.add_argument("--out", type=Path, required=True,
                        help="fitted avatar file (.pt); its checkpoint OUT.ckpt is resumed only by the same fit")
    parser.add_argument("--format", choices=FORMATS, default="auto",
                        help="capture layout: posegen (capture.json), zju (annots.npy) or auto (by the files)")
    parser.add_argument("--test-cameras", nargs="+", default=None, metavar="NAME",
                        help="ZJU layout: held-out cameras by image folder (default: every 4th, from the 4th)")
    parser.add_argument("--test-frames", type=int, default=None, metavar="N",
                        help="ZJU layout: hold out the last N frames (default: the last 10%%)")
    parser.add_argument("--body", default=None, help="SMPL .pkl or PoseGen body .npz the capture was made with")
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--batch-rays", type=int, default=4096)
    parser.add_argument("--lr", type=float, default=0.05, help="learning rate of the voxel values")
    parser.add_argument("--voxel", type=float, default=0.01, help="voxel size (m)")
    parser.add_argument("--shell", type=float, default=0.03, help="voxels within this distance of the body (m)")
    parser.add_argument("--samples", type=int, default=12, help="samples per ray band")
    parser.add_argument("--proxy-faces", type=int, default=3000, help="triangles of the ray-casting proxy")
    parser.add_argument("--inflate", type=float, default=0.01,
                        help="proxy inflation (m): raise it for loose clothing or imprecise SMPL fits")
    parser.add_argument("--geometry", type=Path, default=None,
                        help="avatar or cast file whose density is shared and kept frozen: fit only the colour of "
                             "a new subject (the geometry fixes --voxel, --shell, --samples, --proxy-faces, --inflate)")
    parser.add_argument("--eval-every", type=int, default=1000)
    parser.add_argument("--ckpt-every", type=int, default=500)
    parser.add_argument("--eval-images", type=int, default=8, help="held-out images per PSNR evaluation")
    add_device_option(parser)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing avatar at --out that was fitted from another capture")
    parser.add_argument("--quick", action="store_true", help="a few seconds of fitting (smoke tests)")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.batch_rays, args.eval_every, args.ckpt_every, args.eval_images = 60, 1024, 60, 30, 2
    if args.steps < 1 or args.batch_rays < 1 or args.samples < 1:
        parser.error("--steps, --batch-rays and --samples must be positive")
    return args


def held_out(capture, count: int, rng: np.random.Generator) -> dict[str, tuple[list[int], list[str]]]:
    """A fixed subset of held-out images: novel cameras of training poses, and novel poses."""
    s = capture.splits
    pick = lambda xs, n: sorted(rng.choice(xs, size=min(n, len(xs)), replace=False).tolist())  # noqa: E731
    half = max(1, count // 2)
    sets = {}
    if s["test_cameras"]:
        sets["novel_view"] = (pick(s["train_frames"], half), pick(s["test_cameras"], 1))
    if s["test_frames"]:
        sets["novel_pose"] = (pick(s["test_frames"], half), pick(s["train_cameras"] + s["test_cameras"], 1))
    return sets


def fit_record(args: argparse.Namespace, capture, body) -> dict:
    """What a checkpoint must share with this run to be resumed: the capture and every setting that
    changes the result (not --eval-*, --ckpt-every or --device)."""
    record = {"capture": str(args.capture.resolve()), "capture_fingerprint": capture.fingerprint(),
              "body": body.identifier, "steps": args.steps, "batch_rays": args.batch_rays, "lr": args.lr,
              "seed": args.seed}
    if args.geometry:  # it fixes the field's layout
        return record | {"geometry": str(args.geometry.resolve()),
                         "geometry_sha1": hashlib.sha1(args.geometry.read_bytes()).hexdigest()[:16]}
    return record | {"voxel": args.voxel, "shell": args.shell, "samples": args.samples,
                     "proxy_faces": args.proxy_faces, "inflate": args.inflate}


def check_out(out: Path, capture, overwrite: bool) -> None:
    """Refuse to replace ``out`` unless it is an avatar fitted from ``capture`` (or ``overwrite``): another
    capture's avatar would be lost. A file that is not an avatar at all is refused even with ``overwrite``,
    as make_capture.py and export_zju.py refuse to replace what is not theirs."""
    if not (out.exists() or out.is_symlink()):
        return
    if out.is_dir():
        raise AvatarError(f"--out {out} is a folder; pass the avatar file to write, e.g. {out / 'avatar.pt'}")
    try:
        meta = read_avatar_file(out).get("meta")
    except AvatarError as err:
        raise AvatarError(f"--out {out} already exists and is not an avatar PoseGen can read ({err}); refusing to "
                          "replace it: pass another --out, or remove it yourself") from None
    meta = meta if isinstance(meta, dict) else {}
    if meta.get("capture_fingerprint") == capture.fingerprint() or overwrite:
        return
    source = meta.get("capture", "an unrecorded capture")
    why = ("fitted from another capture (its cameras, splits or SMPL parameters differ from those of "
           f"{capture.root})" if "capture_fingerprint" in meta else
           "that records no capture fingerprint, so it cannot be told to be of this capture")
    raise AvatarError(f"--out {out} already holds an avatar of {source}, {why}; fitting would replace it. Pass "
                      "another --out, or --overwrite to replace it")


def main(argv=None) -> None:
    args = parse_args(argv)
    device = args.device
    torch.manual_seed(args.seed)
    start = time.time()
    body = load_body_model(args.body, device=device)
    capture = load_any_capture(args.capture, args.format, body=body, test_cameras=args.test_cameras,
                               test_frames=args.test_frames)
    frames, cams = capture.splits["train_frames"], capture.splits["train_cameras"]
    ckpt_path = args.out.with_name(args.out.name + ".ckpt")
    record = fit_record(args, capture, body)
    state = read_avatar_file(ckpt_path) if ckpt_path.exists() else None
    checked = False
    if state is not None:
        check_body(ckpt_path, state, body, f"delete {ckpt_path} to start over")
        checked = check_resumable(ckpt_path, state, record)
    if not checked:  # a checkpoint that records this fit got past this check when it started: it goes on
        check_out(args.out, capture, args.overwrite)
    if state is not None:
        avatar = build_avatar(state, body, device).train()
        step = state["step"]
        print(f"resuming from {ckpt_path} at step {step}" + ("" if checked else
              " (an older checkpoint that records no capture or settings: they are not checked; delete it to "
              "start over)"))
        if args.geometry:
            freeze_geometry(avatar)
    elif args.geometry:
        avatar, state, step = new_subject(load_geometry(args.geometry, body, device), capture.background), None, 0
    else:
        avatar = new_avatar(body, voxel_size=args.voxel, shell=args.shell, num_samples=args.samples,
                            proxy_faces=args.proxy_faces, inflate=args.inflate,
                            background=capture.background).to(device)
        state, step = None, 0
    field = avatar.field
    voxel_params, mlp_params = fitted_parameters(field)
    optimizer = torch.optim.Adam([{"params": voxel_params, "lr": args.lr}, {"params": mlp_params, "lr": 1e-2}])
    if state is not None and "optimizer" in state:
        optimizer.load_state_dict(state["optimizer"])

    with tqdm(total=len(frames), desc="casting training rays", unit="frame") as bar:
        bank = build_ray_bank(avatar, capture, frames, cams, progress=bar)
    print(f"{len(bank):,} training rays from {len(frames)} frames x {len(cams)} cameras; "
          f"foreground pixels missed by the proxy: {bank.missed_foreground}")
    evals = held_out(capture, args.eval_images, np.random.default_rng(args.seed))
    background = torch.as_tensor(capture.background, dtype=torch.float32, device=device) / 255.0
    generator = torch.Generator(device=device).manual_seed(args.seed + step)
    sched = lambda s: 0.1 ** (s / args.steps)  # noqa: E731  exponential decay to 10% of the learning rate
    history = []
    with tqdm(total=args.steps, initial=step, desc="fitting avatar", unit="step") as bar:
        while step < args.steps:
            for group, base in zip(optimizer.param_groups, (args.lr, 1e-2), strict=True):
                group["lr"] = base * sched(step)
            index = torch.randint(len(bank), (args.batch_rays,), generator=generator, device=device)
            rays, rgb, alpha = bank.batch(index)
            loss = photometric_loss(field, rays, rgb, alpha, background, avatar.num_samples, generator)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.5f}")
            if step % args.eval_every == 0 or step == args.steps:
                avatar.eval()
                scores = {k: evaluate(avatar, capture, f, c) for k, (f, c) in evals.items()}
                avatar.train()
                history.append({"step": step, "loss": loss.item(), **scores})
                bar.write(f"step {step}: " + ", ".join(f"{k} PSNR {v:.2f} dB" for k, v in scores.items()))
            if step % args.ckpt_every == 0 and step < args.steps:
                save_avatar(ckpt_path, avatar, extra={"step": step, "optimizer": optimizer.state_dict(), "fit": record})
    meta = {"capture": str(args.capture), "capture_fingerprint": capture.fingerprint(), "steps": step,
            "seconds": round(time.time() - start, 1), "rays": len(bank), "history": history}
    meta |= {"geometry": str(args.geometry)} if args.geometry else {}
    save_avatar(args.out, avatar, meta=meta)
    ckpt_path.unlink(missing_ok=True)
    print(json.dumps({k: v for k, v in meta.items() if k != "history"} | (history[-1] if history else {})))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB) in {time.time() - start:.0f} s")


# What ends the script with one line instead of a traceback.
ERRORS = (CaptureError, BodyModelError, AvatarError, FitError)


if __name__ == "__main__":
    run_script(main, "fit_avatar.py", ERRORS)
