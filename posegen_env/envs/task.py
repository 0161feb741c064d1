"""What one environment step does, for a whole batch at once: action -> sample -> NeRF crop -> estimate -> reward.

The single and the vector environment and every agent's data collection share this one code
path, so a sample scores the same however it was produced.
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import torch

from posegen_env.body.body_model import load_body_model
from posegen_env.body.plausibility import penetration_depth
from posegen_env.device import default_render_batch, resolve_device
from posegen_env.envs.action_space import action_dim, check_choose, choice_action, choice_index, decode
from posegen_env.envs.checks import MAX_IMAGE_SIZE, check_int
from posegen_env.envs.reward import RewardConfig
from posegen_env.estimation.checkpoints import load_estimator
from posegen_env.estimation.metrics import mpjpe, pa_mpjpe
from posegen_env.estimation.prediction import predict, predict_tensor
from posegen_env.estimation.spec import spec_of
from posegen_env.estimation.targets import targets
from posegen_env.files import listing
from posegen_env.profiling import stage
from posegen_env.render.avatar.cast import CastRenderer
from posegen_env.render.avatar.loading import load_renderer
from posegen_env.render.backgrounds import as_backgrounds
from posegen_env.render.crops import render_crop_tensors
from posegen_env.render.step import PoseTensors, Sample, StepResult


class PoseGenTask:
    """The avatar, the estimator under test and the reward: evaluates batches of actions.

    Arguments accept what users have: ``avatar`` an AvatarRenderer, a CastRenderer or a file of
    either (None: the shipped avatar), ``body_model`` a BodyModel or file (the avatar's own body by
    default), ``estimator`` an object, checkpoint path or ``"module:callable"`` (None: the shipped
    baseline). With a cast, each sample shows a subject drawn uniformly (from the sample's own
    generator) from ``subjects``: "train" (the training subjects), "heldout", "all", or names /
    indices; held-out subjects are only for the test and validation suites, so asking for one
    needs ``allow_heldout=True``. The subject's betas replace the action's. ``background`` is
    a ``Backgrounds`` spec, or "random" plain colours or an RGB triple (``as_backgrounds``).
    ``choose`` ("subject", "background" or both) lets the action pick them instead
    (``envs.action_space``: trailing components; ``action_dim`` is the action's length).
    Crops are rendered as the estimator declares (``estimation.spec``: its input size and crop
    margin) unless ``image_size`` overrides the size. ``no_detection_mm``: for examining detectors,
    a sample the estimator returns NaN for ("no person found") scores this error instead of failing.
    """

    def __init__(self, avatar=None, body_model=None, estimator=None, image_size: int | None = None, reward=None,
                 device=None, render_batch: int | None = None, subjects="train", background="random",
                 allow_heldout: bool = False, choose=(), no_detection_mm: float | None = None):
        if image_size is not None:
            image_size = check_int("image_size", image_size, minimum=16, meaning="crop side in pixels",
                                   maximum=MAX_IMAGE_SIZE)
        if no_detection_mm is not None and not (np.isfinite(no_detection_mm) and no_detection_mm > 0):
            raise ValueError(f"no_detection_mm must be a positive number of mm, got {no_detection_mm!r}")
        self.no_detection_mm = no_detection_mm
        self.device = resolve_device(device)
        if avatar is None or isinstance(avatar, str) or hasattr(avatar, "__fspath__"):
            body = body_model if hasattr(body_model, "identifier") else load_body_model(body_model)
            avatar = load_renderer(avatar, body_model=body, device=self.device)
        elif body_model is not None and getattr(body_model, "identifier", None) != avatar.body.identifier:
            raise ValueError("body_model differs from the body the avatar was fitted on; pass the avatar's body "
                             "or leave body_model out")
        self.avatar = avatar
        self.requested_size = image_size
        self.reward_config = RewardConfig.from_any(reward)
        self.render_batch = default_render_batch(self.device) if render_batch is None else check_int(
            "render_batch", render_batch, meaning="crops rendered at once")
        self.background = as_backgrounds(background)
        self.subject_pool = self._subject_pool(subjects, allow_heldout)
        self.choose = check_choose(choose)
        if "subject" in self.choose and self.subject_pool is None:
            raise ValueError("choose='subject' needs a cast to choose from; this avatar is one person (load a cast "
                             "file made by train/make_cast.py)")
        if "background" in self.choose and len(self.background.styles) < 2:
            raise ValueError("choose='background' needs a Backgrounds mix to choose from (e.g. Backgrounds() for "
                             f"plain colours and textures), got background={background!r}")
        self.action_dim = action_dim(self.choose)
        self.set_estimator(estimator)

    def _subject_pool(self, subjects, allow_heldout: bool) -> np.ndarray | None:
        """The subject indices samples are drawn from (None: a single-person avatar)."""
        if not isinstance(self.avatar, CastRenderer):
            if subjects not in (None, "train"):
                raise ValueError(f"subjects={subjects!r} needs a cast; this avatar is one person (load a cast file "
                                 "made by train/make_cast.py)")
            return None
        cast = self.avatar.subjects
        if subjects is None or (isinstance(subjects, str) and subjects in ("train", "validation", "heldout", "all")):
            pool = self.avatar.group(subjects or "train").tolist()
        else:
            pool = sorted(set(self.avatar.subject_index(subjects).tolist()))
        heldout = [cast[k].name for k in pool if cast[k].heldout or cast[k].validation]
        if heldout and not allow_heldout:
            raise ValueError(f"subject(s) {listing(heldout)} are held out: only the test suites and the "
                             "in-distribution guard render them; draw from the training subjects (subjects='train'), "
                             "or pass allow_heldout=True to diagnose")
        if not pool:
            raise ValueError(f"subjects={subjects!r} leaves no subject of the cast ({', '.join(self.avatar.names)}) "
                             "to draw from")
        return np.asarray(pool, np.int64)

    def subject_action(self, subject) -> float:
        """The ``subject`` choice component that picks ``subject`` (a name or cast index) from the pool."""
        if self.subject_pool is None:
            raise ValueError("this task renders one person; there is no subject to choose")
        index = int(self.avatar.subject_index(subject)[0])
        where = np.flatnonzero(self.subject_pool == index)
        if not len(where):
            names = ", ".join(self.avatar.names[k] for k in self.subject_pool)
            raise ValueError(f"subject {subject!r} is not one this task draws from ({names}); choose one of "
                             "them, or make the task with subjects= including it")
        return float(choice_action(where[0], len(self.subject_pool)))

    def background_action(self, style: str) -> float:
        """The ``background`` choice component that picks ``style`` (one of the mix's ``styles``)."""
        styles = self.background.styles
        if style not in styles:
            raise ValueError(f"background style {style!r} is not in this task's mix; its styles are {styles}")
        return float(choice_action(styles.index(style), len(styles)))

    def set_estimator(self, estimator) -> None:
        """Point the task at another estimator (e.g. the freshly fine-tuned one); the crops follow its spec.

        A torch estimator is moved to the task's device, where the crops are rendered, and checked on
        a black crop at once (no side effects: it runs in evaluation mode without gradients); any
        other callable gets crops on the device it declares (``CallableEstimator``: the CPU by
        default) and is checked on its first real batch, since a black crop would count as a
        failure in a detector's own statistics."""
        estimator = load_estimator(estimator)
        spec = spec_of(estimator)
        size = self.requested_size or spec.input_size
        if isinstance(estimator, torch.nn.Module):
            estimator = estimator.to(self.device)
            predict(estimator, np.zeros((1, size, size, 3), np.uint8), missing=self.no_detection_mm is not None,
                    units_check=False)
        self.estimator, self.spec, self.image_size = estimator, spec, size

    def evaluate(self, actions, rngs) -> StepResult:
        """Render and score N actions. ``rngs``: one Generator per action (crop jitter, background).

        Everything between the decoded action and the reward runs as tensors on the task's device;
        the result is converted to numpy once, at the end (the environment's boundary)."""
        sample = decode(actions, self.choose)
        rngs = list(rngs)
        subjects = styles = None
        if self.subject_pool is not None:
            if "subject" in sample.choices:
                subjects = self.subject_pool[choice_index(sample.choices["subject"], len(self.subject_pool))]
                betas = self.avatar.betas_of(subjects)
            else:
                subjects, betas = self.avatar.draw(self.subject_pool, rngs)
            sample = replace(sample, betas=betas)
        if "background" in sample.choices:
            options = self.background.styles
            styles = [options[k] for k in choice_index(sample.choices["background"], len(options))]
        data = self._render(sample, rngs, subjects, styles)
        with stage("estimator"):
            predicted = predict_tensor(self.estimator, data.images, batch_size=self.render_batch,
                                       missing=self.no_detection_mm is not None)
        with stage("reward"):
            return self._score(sample, data, predicted)

    def _score(self, sample: Sample, data: PoseTensors, predicted: torch.Tensor) -> StepResult:
        """Errors, penetration and reward of the rendered samples, then the step's result in numpy."""
        detected = torch.isfinite(predicted).all(dim=2).all(dim=1)
        err = torch.full((len(data),), float(self.no_detection_mm or 0.0), dtype=torch.float64, device=self.device)
        pa = err.clone()
        found = torch.nonzero(detected)[:, 0]
        if len(found):
            joint_set = self.spec.joint_set
            truth = targets(joint_set, data, self.avatar.body)[found.to(data.joints3d.device)]
            guess = predicted[found].to(truth.device)
            err[found] = mpjpe(guess, truth, joints=joint_set.eval_index, root=None).to(err)
            pa[found] = pa_mpjpe(guess, truth, joints=joint_set.eval_index).to(err)
        depth = penetration_depth(data.joints3d)  # a rigid motion away from the world pose: same depth
        error = err if self.reward_config.metric == "mpjpe" else pa
        violation = torch.as_tensor(sample.limit_violation, device=self.device)
        reward = self.reward_config(error, violation, depth)
        plausible = depth <= self.reward_config.penetration_tolerance_m
        with stage("boundary"):  # the one copy to the host: numpy for info dicts and datasets
            numpy = [x.cpu().numpy() for x in (predicted, err, pa, depth, plausible, reward, detected)]
            return StepResult(sample, data, *numpy)

    def _render(self, sample: Sample, rngs: list, subjects: np.ndarray | None,
                styles: list[str] | None) -> PoseTensors:
        """The sample's crops on the device; a batch too large for the GPU's memory is rendered in
        smaller parts (each crop's randomness is its own generator's, so the parts render the same)."""
        while True:
            states = [r.bit_generator.state for r in rngs]
            try:
                return render_crop_tensors(self.avatar, sample.poses(), sample.cameras, crop_size=self.image_size,
                                           crop_scale=self.spec.crop_scale, rng=rngs, batch=self.render_batch,
                                           background=self.background, subjects=subjects, styles=styles)
            except torch.cuda.OutOfMemoryError:
                if self.render_batch <= 1:
                    raise MemoryError(f"one {self.image_size} px crop does not fit in {self.device}'s free memory; "
                                      "free the GPU, or use a smaller image_size or device='cpu'") from None
                self.render_batch = max(1, self.render_batch // 2)
                warnings.warn(f"the GPU ran out of memory; rendering {self.render_batch} crops at a time "
                              "(render_batch) from now on", stacklevel=3)
                for r, state in zip(rngs, states, strict=True):
                    r.bit_generator.state = state
                torch.cuda.empty_cache()
