"""Every policy is built the same way: the shared settings are taken by all, used only where they matter."""

import numpy as np
import pytest

from agents.policies import POLICIES, make_policy
from agents.policies.anchored import Anchoring

SHARED = {"seed": 3, "anchoring": Anchoring(reach=0.1, uniform_share=0.5), "tensorboard_log": "tb"}


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_every_policy_takes_the_shared_settings(name):
    policy = make_policy(name, **SHARED)
    assert {key: getattr(policy, key) for key in SHARED} == SHARED


@pytest.mark.parametrize("name", ["random", "prior", "anchor"])
def test_fixed_policies_draw_the_same_whatever_their_seed(name):
    contexts = np.zeros((6, 8))
    draws = [make_policy(name, seed=seed).act(contexts, np.random.default_rng(1)) for seed in (0, 5)]
    np.testing.assert_array_equal(*draws)


def test_search_starts_from_means_drawn_with_its_seed():
    assert np.array_equal(make_policy("search", seed=0).mean, make_policy("search").mean)
    assert not np.array_equal(make_policy("search", seed=0).mean, make_policy("search", seed=1).mean)
