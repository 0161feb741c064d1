"""Evaluating an estimator on datasets and on the four test suites."""

from __future__ import annotations

from posegen_env.dataset import PoseDataset
from posegen_env.estimator import predict
from posegen_env.metrics import evaluate_poses
from posegen_env.suites import SUITES, load_suite


def evaluate_dataset(estimator, data: PoseDataset) -> dict:
    """Every metric (``metrics.evaluate_poses``) of ``estimator`` on ``data``."""
    return evaluate_poses(predict(estimator, data.load_images(range(len(data)))), data.joints3d)


def evaluate_suites(estimator, avatar, names=SUITES, num_samples: int = 500, split: str = "test") -> dict[str, dict]:
    """Metrics on each named suite of ``split`` (rendered and cached on first use)."""
    return {name: evaluate_dataset(estimator, load_suite(name, avatar, num_samples, split=split)) for name in names}
