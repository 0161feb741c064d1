"""What a learned sampling policy maximises while it learns: the rounds' *objective*.

``error`` is the task's reward: the current estimator's error (minimax). Adaptive-curriculum work
found that maximising it drifts to hard samples that training cannot fix (PAIRED, PLR, ACCEL;
PoseExaminer's "unusual" poses), and in PoseGen's rounds it ends no better than the fixed
``anchor`` distribution (benchmarks/RESULTS.md).

``learnability`` scores what fine-tuning can learn: regret against an *adapted* copy of the
estimator, the antagonist of PAIRED made by a few steps of fine-tuning. The drawn samples are
split into folds; for each fold a copy of the estimator is fine-tuned briefly on the other folds,
and each sample scores its error under the current estimator minus its error under the copy
that never saw it. A sample scores high when what the copy learnt from its neighbours *transfers*
to it: hard and learnable. Both errors are of the same image, so the draw's own difficulty
(body, view, person, background) cancels in the difference, a paired estimate far less noisy than
the raw error. The reward's penalties (joint limits, limbs through each other) are kept.

``transfer`` scores what fine-tuning on a sample does to a *broad* training-side set, the probe:
``probe_size`` fresh anchors (natural bodies from every view, a quarter uniform draws), rendered
once per learning call. A sample's score is the drop of the probe's loss that one gradient step on
it alone would give, to first order (TracIn's influence estimate,
``posegen_env/estimation/training.py:transfer_mm``). A hard sample scores high only if its lesson
carries over to natural bodies, which is also what the rounds' in-distribution guard admits. The
estimator does not change while a policy learns, so the probe's gradient is computed once and
every candidate is scored against the same one (common random numbers); a probe of 64 anchors
left the scores mostly probe noise, 1,024 make them repeatable (benchmarks/objective_signal.py).

Only the samples a policy drew (and, for ``transfer``, fresh anchors) feed an
objective: no held-out pose, person, validation or test suite reaches it (an import-linter
contract keeps ``agents.policies`` away from the suites).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from agents.policies.anchored import Anchoring
from posegen_env.envs.task import PoseGenTask
from posegen_env.estimation.targets import training_data
from posegen_env.estimation.training import adapted_copy, loss_gradient, sample_mpjpe, transfer_mm
from posegen_env.render.step import PoseBatch, Sample, StepResult

OBJECTIVES = ("error", "learnability", "transfer")


@dataclass(frozen=True)
class Probe:
    """``transfer``'s probe: the anchors drawn and the estimator's loss gradient on their renderings,
    taken once (the crops themselves are not kept)."""

    sample: Sample
    gradient: dict[str, torch.Tensor]


@dataclass(frozen=True)
class Objective:
    """One objective (``name`` in ``OBJECTIVES``) and, for ``learnability``, how its copies adapt:
    ``folds`` copies, each fine-tuned ``adapt_steps`` steps of ``adapt_batch`` samples at ``adapt_lr``
    (also ``transfer``'s step size, which only scales its scores); ``probe_size``, ``transfer``'s
    anchors."""

    name: str = "error"
    folds: int = 2
    adapt_steps: int = 32
    adapt_lr: float = 1e-3
    adapt_batch: int = 32
    probe_size: int = 1024

    def __post_init__(self) -> None:
        if self.name not in OBJECTIVES:
            raise ValueError(f"unknown objective {self.name!r}; choose one of {', '.join(OBJECTIVES)}")
        if self.folds < 2 or self.adapt_steps < 1 or self.adapt_batch < 1 or not self.adapt_lr > 0:
            raise ValueError("learnability needs folds >= 2, adapt_steps >= 1, adapt_batch >= 1 and adapt_lr > 0")
        if self.probe_size < 1:
            raise ValueError(f"transfer needs probe_size >= 1 anchors, got {self.probe_size}")

    @property
    def needs_probe(self) -> bool:
        """Whether ``score`` needs a ``Probe`` (made by ``probe``)."""
        return self.name == "transfer"

    def probe(self, task: PoseGenTask, anchoring: Anchoring, seed: int) -> Probe | None:
        """``probe_size`` anchors drawn from ``seed``, rendered (each with its own generator, so the
        environment's stream is left alone) with their loss gradient; ``None`` unless ``needs_probe``."""
        if not self.needs_probe:
            return None
        actions = anchoring.draw(self.probe_size, np.random.default_rng(seed), task.action_dim)
        result = task.evaluate(actions, [np.random.default_rng([seed, k]) for k in range(self.probe_size)])
        return Probe(result.sample, loss_gradient(task.estimator, training_data(task.spec.joint_set, result.data,
                                                                                 task.avatar.body)))

    def score(self, task: PoseGenTask, results: Sequence[StepResult], seed: int,
              probe: Probe | None = None) -> np.ndarray:
        """Each drawn sample's score (higher is what the policy seeks), over ``results`` in order.

        ``learnability`` needs at least ``folds`` samples; its folds are drawn from ``seed``.
        ``transfer`` needs a ``probe`` of the same estimator (``needs_probe``)."""
        if self.needs_probe and probe is None:
            raise ValueError("the transfer objective scores samples against a probe: pass "
                             "probe=objective.probe(task, anchoring, seed), made with the current estimator")
        rewards = np.concatenate([r.reward for r in results]).astype(np.float64)
        if self.name == "error":
            return rewards
        config = task.reward_config
        error_mm = np.concatenate([r.mpjpe_mm if config.metric == "mpjpe" else r.pa_mpjpe_mm for r in results])
        penalties = np.asarray(config.shaped_error(error_mm), np.float64) / 1000.0 - rewards  # the rest of the reward
        batch = PoseBatch.concat([r.data for r in results])
        if self.needs_probe:
            assert probe is not None  # refused above
            gain = transfer_mm(task.estimator, training_data(task.spec.joint_set, batch, task.avatar.body),
                               probe.gradient, self.adapt_lr)
            return transfer_in_error_units(gain, error_mm) / 1000.0 - penalties
        if len(rewards) < self.folds:
            raise ValueError(f"learnability needs at least {self.folds} samples per scoring, got {len(rewards)}")
        return self.learnable_mm(task, batch, seed) / 1000.0 - penalties

    def learnable_mm(self, task: PoseGenTask, batch: PoseBatch, seed: int) -> np.ndarray:
        """Per sample: MPJPE (mm) under ``task``'s estimator minus under a copy adapted on the other folds."""
        data = training_data(task.spec.joint_set, batch, task.avatar.body)
        before = sample_mpjpe(task.estimator, data)
        fold = np.random.default_rng(seed).permutation(len(data)) % self.folds
        after = np.empty_like(before)
        for f in range(self.folds):
            held = np.flatnonzero(fold == f)
            copy = adapted_copy(task.estimator, data.select(np.flatnonzero(fold != f)), self.adapt_steps,
                                self.adapt_lr, self.adapt_batch, seed=seed + f)
            after[held] = sample_mpjpe(copy, data.select(held))
        return before - after


def transfer_in_error_units(gain_mm: np.ndarray, error_mm: np.ndarray) -> np.ndarray:
    """``transfer``'s gains rescaled so that their spread over the scored draws is the error's. One
    step's first-order gain is a small fraction of a millimetre, so the reward's penalties (tens of
    mm for a limb through the body) would otherwise decide every ranking; rescaled, they weigh
    against transfer as they weigh against the error in the reward."""
    spread = float(np.std(gain_mm))
    return gain_mm * (float(np.std(error_mm)) / spread) if spread > 0 else np.zeros_like(gain_mm)


DEFAULT_OBJECTIVE = Objective()  # frozen, so one shared default is safe
