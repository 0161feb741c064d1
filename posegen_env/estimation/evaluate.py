"""Scoring an estimator on a dataset in PoseGen's format, in the estimator's own joint set."""

from __future__ import annotations

import numpy as np

from posegen_env.data.dataset import PoseDataset
from posegen_env.estimation.metrics import evaluate_poses
from posegen_env.estimation.prediction import predict
from posegen_env.estimation.spec import spec_of
from posegen_env.estimation.targets import targets


def evaluate_dataset(estimator, data: PoseDataset, body=None, missing: bool = False) -> dict:
    """Every metric (``metrics.evaluate_poses``) of ``estimator`` on ``data``, on the joints of its set;
    ``body``: the body the data were rendered with, for sets other than SMPL-24. With ``missing``, samples
    the estimator finds no person in (NaN output) are counted in ``no_detection`` and left out of the
    metrics, instead of failing."""
    joint_set = spec_of(estimator).joint_set
    batch = data.to_batch()
    pred = predict(estimator, batch.images, missing=missing)
    found = np.isfinite(pred).all(axis=(1, 2))
    if not found.any():
        return {"num_samples": 0, "joint_set": joint_set.name, "no_detection": int(len(found))}
    gt = targets(joint_set, batch.select(found), body)
    return evaluate_poses(pred[found], gt, joint_set) | {"no_detection": int((~found).sum())}
