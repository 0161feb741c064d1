"""Saving and loading fitted avatars: one self-describing file, written atomically."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch

from posegen_env.body.body_model import load_body_model
from posegen_env.files import atomic_write, read_checkpoint
from posegen_env.render.avatar.field import CanonicalField
from posegen_env.render.avatar.proxy import SkinnedProxy
from posegen_env.render.avatar.renderer import AvatarRenderer

AVATAR_FORMAT = "posegen-avatar-v1"
DEFAULT_AVATAR_PATH = Path(__file__).resolve().parents[2] / "assets" / "default_avatar.pt"


class AvatarError(ValueError):
    """An avatar file that cannot be used, with what to do about it."""


def avatar_state(renderer: AvatarRenderer, meta: dict | None = None) -> dict:
    """Everything needed to rebuild ``renderer`` (large tensors in float16 to keep files small)."""
    field, proxy = renderer.field, renderer.proxy
    return {
        "format": AVATAR_FORMAT,
        "body_identifier": renderer.body.identifier,
        "field": {"voxels": field.voxels.cpu(), "origin": field.origin.cpu(), "dims": field.dims.cpu(),
                  "voxel_size": field.voxel_size, "density": field.density.detach().half().cpu(),
                  "colour": field.colour.detach().half().cpu(),
                  "mlp": {k: v.cpu() for k, v in field.mlp.state_dict().items()}},
        "proxy": {"vertex_ids": proxy.vertex_ids.cpu(), "faces": proxy.faces.cpu(), "rest": proxy.v_template.cpu(),
                  "inflate": proxy.inflate, "band": proxy.band},
        "num_samples": renderer.num_samples,
        "background": list(renderer.background),
        "meta": meta or {},
    }


def save_avatar(path: str | os.PathLike, renderer: AvatarRenderer, meta: dict | None = None,
                extra: dict | None = None) -> None:
    """Write atomically: a crash mid-write leaves the previous file intact."""
    state = avatar_state(renderer, meta) | (extra or {})
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def read_avatar_file(path: str | os.PathLike) -> dict:
    return read_checkpoint(path, AVATAR_FORMAT, AvatarError,
                           "Fit one with train/fit_avatar.py or omit the path for the shipped default avatar")


def build_avatar(state: dict, body_model, device=None) -> AvatarRenderer:
    f, p = state["field"], state["proxy"]
    field = CanonicalField(f["voxels"].numpy(), f["origin"].numpy(), f["dims"].numpy(), f["voxel_size"],
                           features=f["colour"].shape[1], hidden=f["mlp"]["0.weight"].shape[0])
    with torch.no_grad():
        field.density.copy_(f["density"].float())
        field.colour.copy_(f["colour"].float())
    field.mlp.load_state_dict(f["mlp"])
    proxy = SkinnedProxy(body_model, p["vertex_ids"].numpy(), p["faces"].numpy(), p["rest"].numpy(),
                         p["inflate"], p["band"])
    renderer = AvatarRenderer(body_model, field, proxy, state["num_samples"], tuple(state["background"]))
    return renderer.to(device or "cpu").eval()


def check_body(path: Path, state: dict, body_model, refit: str) -> None:
    """Refuse a file fitted on another body: its skinning and shape offsets would be wrong."""
    if state["body_identifier"] != body_model.identifier:
        raise AvatarError(f"{path}: fitted on body '{state['body_identifier']}', but the body model is "
                          f"'{body_model.identifier}'. Load the body it was fitted on or {refit}")


def load_avatar(path: str | os.PathLike | None = None, body_model=None, device=None) -> AvatarRenderer:
    """The shipped default avatar, or a fitted one; refuses an avatar fitted on another body."""
    path = Path(path) if path is not None else DEFAULT_AVATAR_PATH
    return avatar_from_state(path, read_avatar_file(path), body_model, device)


def avatar_from_state(path: Path, state: dict, body_model=None, device=None) -> AvatarRenderer:
    """``load_avatar`` for a file already read (``state``, from ``path``)."""
    body_model = body_model or load_body_model()
    check_body(path, state, body_model, "refit the avatar")
    renderer = build_avatar(state, body_model, device)
    # Names the exact avatar, so data rendered with it (e.g. cached test suites) can be told apart.
    renderer.identifier = f"{path.stem}-{hashlib.sha1(path.read_bytes()).hexdigest()[:10]}"
    return renderer
