"""Saving and loading fitted avatars: one self-describing file, written atomically."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def reading(path: Path, kind: str, fix: str) -> Iterator[None]:
    """Checking and building an avatar or cast from ``path``: what a malformed file raises on the way
    (a missing key, a tensor of the wrong shape, ...) becomes one AvatarError naming the file."""
    try:
        yield
    except AvatarError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as err:
        detail = " ".join(str(err).split())
        raise AvatarError(f"{path}: malformed {kind} file ({type(err).__name__}: {detail}); {fix}") from err


def check_field(path: Path, state: dict, refit: str) -> None:
    """Refuse a field that loads but cannot render: non-finite numbers (density, colour, colour MLP) or no
    samples per ray."""
    f = state["field"]
    tensors = {"density": f["density"], "colour": f["colour"], **{f"mlp {k}": v for k, v in f["mlp"].items()}}
    bad = [name for name, t in tensors.items() if not torch.isfinite(t.float()).all()]
    if bad:
        raise AvatarError(f"{path}: NaN or infinite values in the avatar's {', '.join(bad)}: the file is damaged "
                          f"or a fit diverged; {refit}")
    n = state["num_samples"]
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise AvatarError(f"{path}: num_samples is {n!r}, but rendering needs a positive number of samples per "
                          f"ray (12 by default); {refit}")


def check_body(path: Path, state: dict, body_model, refit: str) -> None:
    """Refuse a file fitted on another body: its skinning and shape offsets would be wrong."""
    if state["body_identifier"] != body_model.identifier:
        raise AvatarError(f"{path}: fitted on body '{state['body_identifier']}', but the body model is "
                          f"'{body_model.identifier}'. Load the body it was fitted on or {refit}")


def check_resumable(path: Path, state: dict, fit: dict) -> bool:
    """Whether the periodic fit checkpoint ``state`` (read from ``path``) may be resumed by a fit of ``fit``
    (the capture and the settings that change the result, as ``train/fit_avatar.py`` records them).

    A checkpoint of another capture or other settings is refused, listing what differs: resuming it
    would silently keep the old capture's colours or the old voxel grid. One that records nothing
    (written before checkpoints recorded their fit) cannot be checked: False, the caller says so."""
    saved = state.get("fit")
    if saved is None:
        return False
    differ = [f"{key}: {saved.get(key, 'unrecorded')!r} in the checkpoint, {fit.get(key, 'unset')!r} now"
              for key in sorted(saved.keys() | fit.keys()) if saved.get(key) != fit.get(key)]
    if differ:
        raise AvatarError(f"{path}: this checkpoint of an interrupted fit was made for another capture or other "
                          f"settings ({'; '.join(differ)}); resuming would mix the two fits. Delete {path} to "
                          "start this fit over, rerun with the checkpoint's capture and settings to finish it, or "
                          "write this fit elsewhere with another --out")
    return True


def load_avatar(path: str | os.PathLike | None = None, body_model=None, device=None) -> AvatarRenderer:
    """The shipped default avatar, or a fitted one; refuses an avatar fitted on another body."""
    path = Path(path) if path is not None else DEFAULT_AVATAR_PATH
    return avatar_from_state(path, read_avatar_file(path), body_model, device)


def avatar_from_state(path: Path, state: dict, body_model=None, device=None) -> AvatarRenderer:
    """``load_avatar`` for a file already read (``state``, from ``path``)."""
    body_model = body_model or load_body_model()
    with reading(path, "avatar", "fit it again with train/fit_avatar.py"):
        check_body(path, state, body_model, "refit the avatar")
        check_field(path, state, "refit the avatar")
        renderer = build_avatar(state, body_model, device)
    # Names the exact avatar, so data rendered with it (e.g. cached test suites) can be told apart.
    renderer.identifier = f"{path.stem}-{hashlib.sha1(path.read_bytes()).hexdigest()[:10]}"
    return renderer
