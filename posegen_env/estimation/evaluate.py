"""Scoring an estimator on a dataset in PoseGen's format."""

from __future__ import annotations

from posegen_env.data.dataset import PoseDataset
from posegen_env.estimation.estimator import predict
from posegen_env.estimation.metrics import evaluate_poses


def evaluate_dataset(estimator, data: PoseDataset) -> dict:
    """Every metric (``metrics.evaluate_poses``) of ``estimator`` on ``data``."""
    return evaluate_poses(predict(estimator, data.load_images(range(len(data)))), data.joints3d)
