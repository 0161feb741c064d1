"""Fixtures shared across the test folders."""

import pytest
import torch

from posegen_env.render.avatar import CastSubject, load_avatar, save_cast
from posegen_env.render.avatar.checkpoint import avatar_state, build_avatar

# The test modules that run scripts or the whole loop end to end (marked e2e); the rest are unit tests.
E2E_MODULES = {
    "test_run_agent.py", "test_examine.py", "test_sweep.py", "test_resume_reliability.py",
    "test_reports_and_run_folders.py", "test_own_estimator.py", "test_bad_input_battery.py", "test_cli.py",
    "test_make_capture.py", "test_fit_avatar_out.py", "test_zju.py", "test_capture_fitting_checks.py",
    "test_evaluate.py",
}


def pytest_collection_modifyitems(items):
    for item in items:
        if item.path.name in E2E_MODULES:
            item.add_marker(pytest.mark.e2e)


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
