"""With a cast, the suites show only the held-out people and the base splits only the training people."""

import numpy as np
import pytest

from posegen_env.data.base_splits import base_split
from posegen_env.data.dataset import load_dataset
from posegen_env.render.avatar.loading import load_renderer
from posegen_env.suites.suites import build_suite, load_suite, suite_path

pytestmark = pytest.mark.usefixtures("private_cache")  # renders go to a cache of their own


def test_suites_render_the_heldout_subjects_and_a_training_variant_on_request(cast_file):
    cast = load_renderer(cast_file)
    heldout = build_suite("novel-views", cast, num_samples=12, crop_size=32)
    assert set(heldout.subject.tolist()) == {2}
    np.testing.assert_allclose(heldout.betas, np.full((12, 10), 0.8), atol=1e-6)
    train = build_suite("novel-views", cast, num_samples=12, crop_size=32, subjects="train")
    assert set(train.subject.tolist()) <= {0, 1}
    assert suite_path("hard", cast, 12, 32) != suite_path("hard", cast, 12, 32, subjects="train")
    data = load_suite("in-distribution", cast, num_samples=8, crop_size=32)
    assert set(data.extras["subject"].tolist()) == {2}


def test_base_splits_render_only_training_subjects(cast_file, tmp_path):
    cast = load_renderer(cast_file)
    base_split(cast, "val", 16, data_dir=tmp_path, crop_size=32)
    written = load_dataset(next(tmp_path.glob("val-*")))
    assert set(written.extras["subject"].tolist()) <= {0, 1} and len(written) == 16
