"""PoseGen's alternating rounds: learn a sampling policy, collect its samples, fine-tune, re-evaluate.

Each round of each policy lives in ``RUN/<policy>/round-<k>/``: the policy's state, the collected
dataset (project dataset format), the fine-tuned estimator, a grid of the hardest samples and the
learning curve. ``RUN/results.json`` lists finished rounds; a round is recorded only after all of
its files are written, so an interrupted run resumes at the first unfinished round.

``RoundRunner`` holds what a run's rounds share and takes a round's steps; ``run_rounds`` puts
them in the order of the loop.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from agents.loop.collect import Collected
from agents.loop.collect import collect as collect_samples
from agents.loop.report import BASELINE, ood_mean, plot_rewards, plot_sample_space, plot_suites, write_tables
from agents.loop.run import RoundConfig, RunError, round_dir, rounds_done, run_lock
from agents.policies import SamplingPolicy, make_policy
from agents.policies.objectives import Objective
from posegen_env.data.base_splits import base_split
from posegen_env.data.dataset import DatasetError, PoseData, load_dataset, write_dataset
from posegen_env.data.image_grid import save_image_grid
from posegen_env.envs.action_space import ROOT_SLICE, ROOT_TILT_DEG, decode
from posegen_env.envs.task import PoseGenTask
from posegen_env.envs.vector_env import PoseGenVectorEnv
from posegen_env.estimation.baseline import BaselineEstimator
from posegen_env.estimation.checkpoints import load_estimator, save_estimator, warn_if_untrained
from posegen_env.estimation.plugins import build_from
from posegen_env.estimation.spec import EstimatorError
from posegen_env.estimation.targets import training_data
from posegen_env.estimation.training import Training, check_loss, make_optimizer, validation_mpjpe
from posegen_env.estimation.training import finetune as finetune_estimator
from posegen_env.files import atomic_write
from posegen_env.render.step import PoseBatch
from posegen_env.suites.suites import evaluate_suites

Say = Callable[[str], None]  # where a run reports what it does, e.g. print


def _trainable(estimator) -> torch.nn.Module:
    if not isinstance(estimator, torch.nn.Module) or not any(p.requires_grad for p in estimator.parameters()):
        kind = type(getattr(estimator, "fn", estimator)).__name__
        raise EstimatorError(f"the alternating rounds fine-tune the estimator, so it must be a trainable torch "
                             f"module; this one is a {kind}. Examine it instead -- which poses, views and people it "
                             "fails on, without fine-tuning: python train/run_agent.py --examine (or "
                             "train/examine.py) with the same --estimator")
    return estimator


def _user_loss(spec: str | None):
    """The run's custom loss (``RoundConfig.loss``), or None for the default."""
    if spec is None:
        return None
    loss = build_from(spec, "loss") if ":" in spec else None
    if not callable(loss):
        raise EstimatorError(f"loss {spec!r} must name a callable loss(model, batch) -> scalar tensor as "
                             "'package.module:function'")
    return loss


def _round_problem(run: RoundRunner, name: str, k: int) -> str | None:
    """What makes round ``k`` of ``name`` unusable (an output that no longer reads), or None.

    A round is a unit: the next round starts from its estimator and policy state and re-trains on its
    dataset, so any of its outputs being damaged means redoing it."""
    out = round_dir(run.run_dir, name, k)
    try:
        load_estimator(out / "estimator.pt", device="cpu")
        load_dataset(out / "dataset")
    except (EstimatorError, DatasetError) as err:
        return str(err)
    try:
        json.loads((out / "learning.json").read_text())["curve"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        return f"{out / 'learning.json'}: unreadable ({type(err).__name__}: {err})"
    return run.policy_state_problem(name, k)


def _good_rounds(run: RoundRunner, rows: list[dict]) -> list[dict]:
    """Rows whose round outputs all still read; from a policy's first damaged round on, its rows are
    dropped (and the fallback noted for the redone round's row)."""
    kept: list[dict] = []
    bad_from: dict[str, int] = {}
    order = {name: i for i, name in enumerate([BASELINE, *run.config.policies])}  # as a fresh run lists them
    for r in sorted(rows, key=lambda r: (order.get(r["policy"], len(order)), r["policy"], r["round"])):
        if r["policy"] == BASELINE:
            kept.append(r)
            continue
        if r["round"] >= bad_from.get(r["policy"], 1 << 30):
            continue
        problem = _round_problem(run, r["policy"], r["round"])
        if problem is None:
            kept.append(r)
            continue
        run.fallback(r["policy"], r["round"], f"round {r['round']} redone from round {r['round'] - 1}: {problem}")
        bad_from[r["policy"]] = r["round"]
    return kept


def run_rounds(run_dir: Path, config: RoundConfig, resume: bool = False, say: Say = print,
               device=None, on_round: Callable[[dict], None] | None = None) -> list[dict]:
    """Run (or finish) every policy's rounds; returns the result rows (also written to ``run_dir``).

    ``device`` (rendering, estimator, fine-tuning) is not part of the config: a run may be resumed
    on another machine; each round records the one it used. ``on_round`` is handed each finished
    round's row once it is recorded (a sweep reports it to its scheduler). The config is written only
    once the run has started (its estimator, avatar and data load), so a failed start leaves no run."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with run_lock(run_dir):
        run = RoundRunner(run_dir, config, say, device)
        try:
            rows = _good_rounds(run, _rows_to_resume(run_dir, say)) if resume else []
            config.write(run_dir / "config.json")
            _run_all(run, rows, on_round)
        finally:
            run.close()
    return rows


def _run_all(run: RoundRunner, rows: list[dict], on_round: Callable[[dict], None] | None) -> None:
    config, say = run.config, run.say
    if not any(r["policy"] == BASELINE for r in rows):
        say("evaluating the pre-trained estimator on the test suites")
        run.record(rows, {"policy": BASELINE, "round": 0, "suites": run.evaluate(run.pretrained)})
    for name in config.policies:
        todo = range(rounds_done(rows, name) + 1, config.rounds + 1)
        if todo:
            run.task.set_estimator(run.estimator_after(name, todo.start - 1))
        for k in todo:
            started = time.time()
            env = PoseGenVectorEnv(config.num_envs, task=run.task)
            policy = run.policy(name, k)
            curve = run.learn(policy, env, k)  # (1) against the task's current estimator
            got = run.collect(policy, env, k)  # (2)
            estimator, history = run.finetune(name, k, got, curve)  # (3) with replay of base data
            run.task.set_estimator(estimator)  # (4) the next round learns and collects against it
            suites = run.evaluate(estimator)  # (5)
            row = run.result_row(policy, k, got, history, suites, seconds=time.time() - started)
            run.record(rows, row)
            if on_round is not None:
                on_round(row)
            say(f"{name} round {k}: OOD mean {ood_mean(row):.1f} mm, in-distribution "
                f"{row['suites']['in-distribution']['eval14']['mpjpe_mm']:.1f} mm")
    final_plots(run.run_dir, config)


def _rows_to_resume(run_dir: Path, say: Say) -> list[dict]:
    """The finished rounds an interrupted run recorded (all of them redone if results.json is unreadable)."""
    path = run_dir / "results.json"
    if not path.is_file():
        return []
    try:
        return json.loads(path.read_text())["rows"]
    except (OSError, ValueError, KeyError) as err:
        say(f"{path} is unreadable ({err}); redoing every round")
        return []


class RoundRunner:
    """What every round of a run shares, and the steps a round takes.

    The task (renderer, reward and the estimator the policies face), the pre-trained estimator
    every policy's round 1 starts from, the base splits that fine-tuning replays and is guarded
    on, and the run's TensorBoard log are made once per run, so every round and every policy
    works with the same ones.
    """

    def __init__(self, run_dir: Path, config: RoundConfig, say: Say = print, device=None) -> None:
        self.run_dir, self.config, self.say = run_dir, config, say
        torch.manual_seed(config.seed)  # whatever building the task draws from torch repeats with the seed
        self.loss = _user_loss(config.loss)
        estimator = load_estimator(config.estimator, device, checkpoint=config.estimator_checkpoint)
        warn_if_untrained(config.estimator, config.estimator_checkpoint, estimator)
        self.task = PoseGenTask(avatar=config.avatar, estimator=_trainable(estimator), reward=config.reward,
                                device=device, background=config.background, choose=config.choose,
                                image_size=config.image_size)
        self.pretrained = self.task.estimator  # never trained itself: fine-tuning works on copies
        make_optimizer(self.pretrained, config.finetune_optimizer, config.finetune_lr, 0.0, config.freeze)  # checks
        self.replay = self._base("train", config.replay_samples)
        if self.loss is not None:
            check_loss(self.pretrained, self.loss, self.replay, self.task.device, f"loss {config.loss!r}")
        self.val = self._base("val", config.val_samples)
        self.reference = validation_mpjpe(self.pretrained, self.val)  # what the in-distribution guard keeps to
        self.tb = SummaryWriter(str(run_dir / "tensorboard"))
        self.fallbacks: dict[tuple[str, int], list[str]] = {}  # what each (policy, round) redid or restarted

    def _base(self, split: str, num_samples: int) -> PoseData:
        """A base split at the estimator's crop size and margin, with targets in its joint set."""
        task = self.task
        batch = base_split(task.avatar, split, num_samples, crop_size=task.image_size, background=task.background,
                           crop_scale=task.spec.crop_scale)
        return training_data(task.spec.joint_set, batch, task.avatar.body)

    def estimator_after(self, name: str, k: int) -> torch.nn.Module:
        """The estimator round ``k`` of ``name`` ended with; after round 0, the pre-trained one."""
        if k == 0:
            return self.pretrained
        return _trainable(load_estimator(round_dir(self.run_dir, name, k) / "estimator.pt", self.task.device))

    def _new_policy(self, name: str) -> SamplingPolicy:
        extra = {"replay_share": self.config.search_replay} if name == "search" else {}
        return make_policy(name, **extra, seed=self.config.seed, anchoring=self.config.anchoring,
                           action_dim=self.task.action_dim, tensorboard_log=str(self.run_dir / "tensorboard"),
                           objective=Objective(self.config.objective), fresh_share=self.config.fresh_share,
                           learn_part=self.config.learn_part)

    def policy(self, name: str, k: int) -> SamplingPolicy:
        """A ``name`` policy in the state round ``k - 1`` left it; a fresh one (noted in the round's
        results) when that state is unreadable."""
        policy = self._new_policy(name)
        if k > 1 and policy.learns:
            problem = self.policy_state_problem(name, k - 1, policy)
            if problem is not None:
                self.fallback(name, k, f"fresh policy: round {k - 1}'s policy state is unreadable ({problem})")
        return policy

    def policy_state_problem(self, name: str, k: int, policy: SamplingPolicy | None = None) -> str | None:
        """Load the policy state round ``k`` saved into ``policy`` (a new one if None); why it failed, or None."""
        policy = policy or self._new_policy(name)
        if not policy.learns:
            return None
        try:
            policy.load(round_dir(self.run_dir, name, k))
        except Exception as err:  # damaged files raise many types (zip, pickle, numpy, torch)
            where = round_dir(self.run_dir, name, k) / (policy.state_file or "")
            return f"{where}: {name} policy state unreadable ({type(err).__name__}: {err})"
        return None

    def fallback(self, name: str, k: int, what: str) -> None:
        """Say and keep what round ``k`` of ``name`` had to redo or start afresh (its results row shows it)."""
        self.say(f"{name}: {what}")
        self.fallbacks.setdefault((name, k), []).append(what)

    def learn(self, policy: SamplingPolicy, env: PoseGenVectorEnv, k: int) -> list[tuple[int, float]]:
        """Step (1): a learned ``policy`` improves against ``env``'s estimator and is saved with the round.

        Returns its learning curve, (steps so far, mean reward) pairs; empty for a fixed policy."""
        curve: list[tuple[int, float]] = []
        if not policy.learns:
            return curve
        steps = self.config.learn_steps
        env.reset(seed=self.config.seed + 7919 * k)
        with tqdm(total=steps, desc=f"{policy.name} round {k}: learning", unit="step") as bar:
            def progress(done: int, rewards: np.ndarray) -> None:
                curve.append((done, float(np.mean(rewards))))
                self.tb.add_scalar(f"{policy.name}/learn_reward", curve[-1][1], (k - 1) * steps + done)
                bar.update(done - bar.n)
                bar.set_postfix(reward=f"{curve[-1][1]:.3f}")
            policy.learn(env, steps, progress)
        policy.save(round_dir(self.run_dir, policy.name, k))
        return curve

    def collect(self, policy: SamplingPolicy, env: PoseGenVectorEnv, k: int) -> Collected:
        """Step (2): the round's samples of ``policy``, written as its dataset beside a grid of the hardest."""
        got = collect_samples(policy, env, self.config.samples, seed=self.config.seed + 104729 * k,
                              desc=f"{policy.name} round {k}: collecting")
        if len(got) < 2:
            raise RunError(f"{policy.name} produced {len(got)} usable samples in round {k} ({got.implausible} "
                           f"implausible, {got.duplicates} duplicates); it has collapsed -- try more learning steps "
                           "or another policy")
        self._write_samples(policy.name, k, got)
        return got

    def finetune(self, name: str, k: int, got: Collected,
                 curve: list[tuple[int, float]]) -> tuple[torch.nn.Module, dict]:
        """Step (3): a copy of the task's estimator fine-tuned on all that ``name`` has collected so far.

        Base data is replayed, and the result is blended back towards the pre-trained weights as far
        as the in-distribution guard needs. The estimator is saved with the round's learning log
        (the policy's ``curve`` and the fine-tuning history); returns it and that history."""
        c = self.config
        estimator = copy.deepcopy(self.task.estimator)
        batch = _collected_so_far(self.run_dir, name, k, got.data)
        new = training_data(self.task.spec.joint_set, batch, self.task.avatar.body)
        training = Training(steps=c.finetune_steps, lr=c.finetune_lr, eval_every=max(1, c.finetune_steps // 8),
                            seed=c.seed + k, optimizer=c.finetune_optimizer, freeze=tuple(c.freeze),
                            recolour=c.recolour, loss=self.loss)
        history = finetune_estimator(estimator, new, self.replay, self.val, training, replay_ratio=c.replay_ratio,
                                     tolerance=c.in_distribution_tolerance, reference_mpjpe=self.reference,
                                     anchor=self.pretrained.state_dict())
        self._save_finetuned(name, k, estimator, curve, history)
        return estimator, history

    def evaluate(self, estimator: torch.nn.Module) -> dict[str, dict]:
        """Step (5): ``estimator``'s metrics on every test suite."""
        return evaluate_suites(estimator, self.task.avatar, num_samples=self.config.suite_samples,
                               background=self.task.background, image_size=self.task.image_size)

    def record(self, rows: list[dict], row: dict) -> None:
        """Put ``row`` into ``rows`` (replacing the same round's) and rewrite the run's tables and plots.

        Called only once every file of the round is written, so a recorded round is a finished one."""
        rows[:] = [r for r in rows if (r["policy"], r["round"]) != (row["policy"], row["round"])] + [row]
        write_tables(self.run_dir, rows)
        plot_suites(self.run_dir, rows)
        for suite, metrics in row["suites"].items():
            self.tb.add_scalar(f"{row['policy']}/mpjpe_{suite}", metrics["eval14"]["mpjpe_mm"], row["round"])

    def result_row(self, policy: SamplingPolicy, k: int, got: Collected, history: dict, suites: dict,
                   seconds: float) -> dict:
        """Round ``k`` of ``policy`` as a line of results.json."""
        return {"policy": policy.name, "round": k, "samples": len(got),
                "learn_steps": self.config.learn_steps if policy.learns else 0,
                "drawn": got.drawn, "implausible": got.implausible, "duplicates": got.duplicates,
                "collected_mpjpe_mm": round(float(got.mpjpe_mm.mean()), 2),
                "finetune_best_step": history["best_step"], "blend_alpha": history["alpha"],
                "seconds": round(seconds, 1), "runtime": _runtime(self.task), "suites": suites,
                **({"fallbacks": self.fallbacks[policy.name, k]} if (policy.name, k) in self.fallbacks else {})}

    def close(self) -> None:
        self.tb.close()

    def _write_samples(self, name: str, k: int, got: Collected) -> None:
        """The round's dataset (with each sample's error and action) and a grid of its hardest samples."""
        out = round_dir(self.run_dir, name, k)
        write_dataset(out / "dataset", got.data, extras={"mpjpe_mm": got.mpjpe_mm, "action": got.actions},
                      meta={"policy": name, "round": k, "drawn": got.drawn, "implausible": got.implausible,
                            "duplicates": got.duplicates}, overwrite=True)
        hardest = np.argsort(got.mpjpe_mm)[::-1][:32]
        save_image_grid(out / "hardest.png", got.data.images[hardest], columns=8,
                        labels=[f"{got.mpjpe_mm[i]:.0f}mm" for i in hardest])

    def _save_finetuned(self, name: str, k: int, estimator: torch.nn.Module, curve: list[tuple[int, float]],
                        history: dict) -> None:
        """The fine-tuned estimator (rebuilt from the run's factory on resume) and the round's learning
        log: the policy's curve and the fine-tuning."""
        out = round_dir(self.run_dir, name, k)
        factory = None if isinstance(estimator, BaselineEstimator) else self.config.estimator
        save_estimator(out / "estimator.pt", estimator, meta={"policy": name, "round": k}, factory=factory)
        finetuning = {key: value for key, value in history.items() if key != "in_distribution_limit"}
        atomic_write(out / "learning.json",
                     lambda t: t.write_text(json.dumps({"curve": curve, "finetune": finetuning}, default=float)))


def _runtime(task) -> dict:
    """What a round's numbers depend on beyond the config: results repeat bit for bit only with the
    same torch build, device and thread count (the thread count changes float summation order)."""
    return {"torch": torch.__version__, "device": str(task.device), "torch_threads": torch.get_num_threads()}


def _collected_so_far(run_dir: Path, name: str, k: int, current: PoseBatch) -> PoseBatch:
    """This round's samples plus those of the policy's earlier rounds: the generated dataset grows
    round by round, so a round's fine-tuning does not forget the failure modes found before."""
    earlier = [load_dataset(round_dir(run_dir, name, j) / "dataset").to_batch() for j in range(1, k)]
    parts = [PoseBatch(**{f: getattr(b, f) for f in ("images", "joints3d", "joints2d", "visible", "pose", "betas",
                                                     "K", "R", "t")}) for b in earlier + [current]]
    return PoseBatch.concat(parts)


def final_plots(run_dir: Path, config: RoundConfig) -> None:
    """The run's reward curves (with round boundaries) and where each policy's last round sampled."""
    curves, samples = {}, {}
    round_starts: dict[int, int] = {}  # round -> its first step on the reward plot's axis
    for name in config.policies:
        offset, pts = 0, []
        for k in range(1, config.rounds + 1):
            path = round_dir(run_dir, name, k)
            if (path / "learning.json").is_file():
                curve = json.loads((path / "learning.json").read_text())["curve"]
                if curve and k > 1:
                    round_starts.setdefault(k, offset)
                pts += [(offset + s, r) for s, r in curve]
                offset += config.learn_steps
            if (path / "dataset" / "dataset.json").is_file():
                data = load_dataset(path / "dataset", check_images=False)
                actions = data.extras["action"].astype(np.float64)
                cams, tilt = decode(actions, config.choose).cameras, actions[:, ROOT_SLICE] * ROOT_TILT_DEG
                samples[name] = {"azimuth_deg": cams.azimuth_deg, "elevation_deg": cams.elevation_deg,
                                 "pitch_deg": tilt[:, 0], "roll_deg": tilt[:, 1], "mpjpe_mm": data.extras["mpjpe_mm"],
                                 "round": k}
        if pts:
            curves[name] = pts
    plot_rewards(run_dir, curves, round_starts)
    plot_sample_space(run_dir, samples)
