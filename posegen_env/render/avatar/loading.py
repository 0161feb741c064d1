"""Any renderer by name or file: the shipped avatar, cast or people, or a user's avatar or cast file."""

from __future__ import annotations

import os
from pathlib import Path

from posegen_env.files import read_checkpoint
from posegen_env.render.avatar.cast import CAST_FORMAT, DEFAULT_CAST_PATH, CastRenderer, cast_from_state
from posegen_env.render.avatar.checkpoint import (
    AVATAR_FORMAT,
    DEFAULT_AVATAR_PATH,
    AvatarError,
    avatar_from_state,
    load_avatar,
)
from posegen_env.render.avatar.people import load_people
from posegen_env.render.avatar.renderer import AvatarRenderer

SHIPPED_RENDERERS = ("avatar", "cast", "people")


def load_geometry(path: str | os.PathLike, body_model=None, device=None) -> AvatarRenderer:
    """The geometry a new subject is fitted on, from an avatar file or a cast file (as its first
    subject's avatar)."""
    renderer = load_renderer(path, body_model, device)
    if type(renderer) is not CastRenderer and isinstance(renderer, CastRenderer):
        raise AvatarError("the people are baked on the shipped avatar's geometry: fit on 'avatar' instead")
    return renderer.avatar(0) if isinstance(renderer, CastRenderer) else renderer


def load_renderer(path: str | os.PathLike | None = None, body_model=None, device=None) -> AvatarRenderer:
    """An avatar file or a cast file, whichever ``path`` holds, read once; or a shipped renderer by
    name: None or "avatar" (one person), "cast" (ten fitted people), "people" (people drawn from the
    outfit family, ``render.avatar.people``)."""
    if path is None:
        return load_avatar(None, body_model, device)
    if isinstance(path, str) and path == "people":
        return load_people(body_model=body_model, device=device)
    if isinstance(path, str) and path in ("cast", "avatar"):
        path = DEFAULT_CAST_PATH if path == "cast" else DEFAULT_AVATAR_PATH
    path = Path(path)
    state = read_checkpoint(path, (AVATAR_FORMAT, CAST_FORMAT), AvatarError,
                            "The shipped ones are named 'avatar' (one person), 'cast' (ten fitted people) and "
                            "'people' (people drawn without limit); fit your own with train/fit_avatar.py or build "
                            "a cast with train/make_cast.py")
    if state["format"] == CAST_FORMAT:
        return cast_from_state(path, state, body_model, device)
    return avatar_from_state(path, state, body_model, device)
