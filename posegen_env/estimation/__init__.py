"""The estimation layer: the estimator interface, the baseline CNN, its training and the metrics.

Any estimator -- the shipped baseline, a checkpoint, or a user's ``module:callable`` -- is loaded
and called here, scored with the standard metrics, and (if it is a torch module) fine-tuned.
"""

from posegen_env.estimation.baseline import INPUT_SIZE, BaselineEstimator
from posegen_env.estimation.checkpoints import load_estimator, save_estimator
from posegen_env.estimation.evaluate import evaluate_dataset
from posegen_env.estimation.metrics import evaluate_poses, format_table, mpjpe, pa_mpjpe, pck3d
from posegen_env.estimation.prediction import predict
from posegen_env.estimation.spec import EstimatorError, PoseEstimator
from posegen_env.estimation.training import finetune, train_estimator, validation_mpjpe

__all__ = [
    "BaselineEstimator",
    "EstimatorError",
    "INPUT_SIZE",
    "PoseEstimator",
    "evaluate_dataset",
    "evaluate_poses",
    "finetune",
    "format_table",
    "load_estimator",
    "mpjpe",
    "pa_mpjpe",
    "pck3d",
    "predict",
    "save_estimator",
    "train_estimator",
    "validation_mpjpe",
]
