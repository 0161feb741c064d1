"""Fixtures shared across the test folders."""

import pytest
import torch

from posegen_env.render.avatar import CastSubject, load_avatar, save_cast
from posegen_env.render.avatar.checkpoint import avatar_state, build_avatar


@pytest.fixture(scope="module")
def private_cache(tmp_path_factory):
    """A module's renders in a cache of their own (``pytestmark = pytest.mark.usefixtures("private_cache")``)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("POSEGEN_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="session")
def cast_file(tmp_path_factory):
    """The default avatar in three colourings, each with its own build; person_2 is held out."""
    default = load_avatar()
    avatars = []
    for seed in range(3):
        state = avatar_state(default)
        g = torch.Generator().manual_seed(seed)
        state["field"]["colour"] = (state["field"]["colour"].float()
                                    + 0.5 * torch.randn(state["field"]["colour"].shape, generator=g)).half()
        avatars.append(build_avatar(state, default.body))
    people = [CastSubject(f"person_{k}", torch.full((10,), 0.8 * (k - 1)), heldout=k == 2) for k in range(3)]
    path = tmp_path_factory.mktemp("cast") / "cast.pt"
    save_cast(path, avatars, people)
    return path
