"""What one environment step does, for a whole batch at once: action -> sample -> NeRF crop -> estimate -> reward.

The single and the vector environment and every agent's data collection share this one code
path, so a sample scores the same however it was produced.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from posegen_env.body.body_model import load_body_model
from posegen_env.body.joints import EVAL_JOINTS, NUM_JOINTS
from posegen_env.body.plausibility import penetration_depth
from posegen_env.device import resolve_device
from posegen_env.envs.action_space import Sample, decode
from posegen_env.envs.reward import RewardConfig
from posegen_env.estimation.estimator import EstimatorError, load_estimator, predict
from posegen_env.estimation.metrics import mpjpe, pa_mpjpe
from posegen_env.render.avatar import load_avatar
from posegen_env.render.crops import PoseBatch, render_crops


@dataclass
class StepResult:
    """Everything about N evaluated samples: rendered data, the estimator's output and the reward."""

    sample: Sample
    data: PoseBatch  # images and exact labels (see render_data.PoseBatch)
    predicted: np.ndarray  # (N, 24, 3) root-relative camera-frame metres
    mpjpe_mm: np.ndarray  # (N,) on the 14 evaluation joints
    pa_mpjpe_mm: np.ndarray
    penetration_m: np.ndarray
    plausible: np.ndarray  # (N,) bool: limbs interpenetrate no deeper than the reward tolerates
    reward: np.ndarray

    def __len__(self) -> int:
        return len(self.reward)

    def info(self, i: int) -> dict:
        """The whole i-th sample as plain arrays and floats, ready to be saved (the env's ``info``)."""
        cam = self.sample.cameras[i]
        return {
            "global_orient": self.sample.global_orient[i], "body_pose": self.sample.body_pose[i],
            "betas": self.sample.betas[i],
            "camera": {k: float(v[0]) for k, v in cam.as_dict().items()} | {"fov_deg": float(cam.fov_deg[0])},
            "K": self.data.K[i], "R": self.data.R[i], "t": self.data.t[i],
            "joints3d": self.data.joints3d[i], "joints2d": self.data.joints2d[i],
            "predicted_joints3d": self.predicted[i],
            "mpjpe_mm": float(self.mpjpe_mm[i]), "pa_mpjpe_mm": float(self.pa_mpjpe_mm[i]),
            "limit_violation": float(self.sample.limit_violation[i]), "penetration_m": float(self.penetration_m[i]),
        }


class PoseGenTask:
    """The avatar, the estimator under test and the reward: evaluates batches of actions.

    Arguments accept what users have: ``avatar`` an AvatarRenderer or a file (None: the shipped
    one), ``body_model`` a BodyModel or file (the avatar's own body by default), ``estimator`` an
    object, checkpoint path or ``"module:callable"`` (None: the shipped baseline).
    """

    def __init__(self, avatar=None, body_model=None, estimator=None, image_size: int = 64, reward=None,
                 device=None, render_batch: int = 64):
        if isinstance(image_size, bool) or not isinstance(image_size, int | np.integer) or image_size < 16:
            raise ValueError(f"image_size must be an int >= 16 (crop side in pixels), got {image_size!r}")
        self.device = resolve_device(device)
        if avatar is None or isinstance(avatar, str) or hasattr(avatar, "__fspath__"):
            body = body_model if hasattr(body_model, "identifier") else load_body_model(body_model)
            avatar = load_avatar(avatar, body_model=body, device=self.device)
        elif body_model is not None and getattr(body_model, "identifier", None) != avatar.body.identifier:
            raise ValueError("body_model differs from the body the avatar was fitted on; pass the avatar's body "
                             "or leave body_model out")
        self.avatar = avatar
        self.image_size = int(image_size)
        self.reward_config = RewardConfig.from_any(reward)
        self.render_batch = render_batch
        self.set_estimator(estimator)

    def set_estimator(self, estimator) -> None:
        """Point the task at another estimator (e.g. the freshly fine-tuned one); checked on a dummy crop.

        A torch estimator is moved to the task's device, where the crops are rendered."""
        estimator = load_estimator(estimator, device=self.device)
        probe = np.zeros((1, self.image_size, self.image_size, 3), np.uint8)
        out = predict(estimator, probe)
        if out.shape != (1, NUM_JOINTS, 3):
            raise EstimatorError(f"estimator returned shape {out.shape} for one crop; it must return (B, {NUM_JOINTS}, "
                                 "3) root-relative camera-frame joints in metres")
        self.estimator = estimator

    def evaluate(self, actions, rngs) -> StepResult:
        """Render and score N actions. ``rngs``: one Generator per action (crop jitter, background)."""
        sample = decode(actions)
        rngs = list(rngs)
        data = render_crops(self.avatar, sample.poses(), sample.cameras, crop_size=self.image_size, rng=rngs,
                            batch=self.render_batch)
        predicted = predict(self.estimator, data.images)
        err = mpjpe(predicted, data.joints3d, joints=EVAL_JOINTS)
        pa = pa_mpjpe(predicted, data.joints3d, joints=EVAL_JOINTS)
        depth = penetration_depth(data.joints3d)  # a rigid motion away from the world pose: same depth
        error = err if self.reward_config.metric == "mpjpe" else pa
        reward = self.reward_config(error, sample.limit_violation, depth)
        plausible = depth <= self.reward_config.penetration_tolerance_m
        return StepResult(sample, data, predicted, err, pa, depth, plausible, reward)
