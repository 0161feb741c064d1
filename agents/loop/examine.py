"""Examine mode: where a model that cannot be fine-tuned fails, learned at equal budgets.

Exported and closed models (ONNX, TFLite, a remote service) can be *examined*: each policy learns
against the estimator as in the rounds, then collects the same number of plausible,
de-duplicated samples; nothing is fine-tuned. A learned policy also collects from its untrained
start, so what learning adds is measured against what its starting distribution already finds,
and every policy against ``random`` (mostly contorted bodies) and ``anchor`` (natural bodies from
every view). A sample the estimator returns no pose for (NaN: a detector that found no person)
is a failure: it scores ``no_detection_mm`` and is counted. Each collection is written as a
dataset in the project format; the report (``agents/loop/examine_report.py``) shows where the
estimator fails.

    RUN/<policy>/seed-<s>/dataset      the collected samples (extras: mpjpe_mm, action, detected)
    RUN/<policy>/seed-<s>/hardest.png  its hardest 32 samples
    RUN/comparison.{md,json}, error_maps.png, per_joint.png
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from agents.loop.collect import Collected, collect
from agents.loop.examine_report import write_report
from agents.policies import ORDER, check_policies, make_policy, policy_list
from agents.policies.anchored import REACH, UNIFORM_SHARE, Anchoring
from posegen_env.data.dataset import write_dataset
from posegen_env.data.image_grid import save_image_grid
from posegen_env.envs.action_space import check_choose, choose_list
from posegen_env.envs.checks import check_image_size
from posegen_env.envs.reward import RewardConfig, reward_pairs
from posegen_env.envs.task import PoseGenTask
from posegen_env.envs.vector_env import PoseGenVectorEnv
from posegen_env.estimation.targets import targets
from posegen_env.files import atomic_write
from posegen_env.render.backgrounds import parse_backgrounds
from posegen_env.settings import (
    avatar_option,
    background_mix_option,
    backgrounds_option,
    check_counts,
    choose_option,
    comma_ints,
    image_size_option,
    option,
)

UNTRAINED = " (untrained)"  # the suffix of a learned policy's row before it learns


EXAMINE_REWARD = {"mode": "raw"}  # the rounds' reward: the uncapped error


@dataclass
class ExamineConfig:
    """Examine mode's settings: ``examine.py``'s options are derived from these fields."""

    policies: list[str] = option(factory=lambda: ["search", "random", "anchor"], flag="policy", parse=policy_list,
                                 metavar="POLICY", help=f"comma-separated, of {', '.join(ORDER)}, or 'all'")
    # Run-to-run spread needs three seeds or more.
    seeds: list[int] = option(factory=lambda: [0, 1, 2], parse=comma_ints, help="comma-separated seeds")
    learn_steps: int = option(2048, help="environment steps each learned policy may spend (the rounds' budget)")
    samples: int = option(512, help="collected per policy and seed")
    num_envs: int = option(64, help="batch of the vector environment")
    avatar: str | None = avatar_option("people")
    background_mix: str = background_mix_option("plain=1,texture=1")
    backgrounds: str | None = backgrounds_option()
    choose: list[str] = choose_option(parse=choose_list)
    image_size: int | None = image_size_option()
    no_detection_mm: float = option(500.0, help=(
        "error a sample scores when the estimator returns no pose (NaN); default %(default)s"))
    reward: dict = option(factory=lambda: dict(EXAMINE_REWARD), parse=lambda text: EXAMINE_REWARD | reward_pairs(text),
                          metavar="KEY=VALUE,...", help=(
        "reward settings (posegen_env/envs/reward.py RewardConfig), e.g. 'penetration_weight=10'; default: the "
        "rounds' (mode=raw)"))
    reach: float = option(REACH, help="largest step of a learned policy away from its anchor; default %(default)s")
    uniform_share: float = option(UNIFORM_SHARE, help=(
        "share of the anchors drawn uniformly over the action box; default %(default)s"))
    # The search as 4 agents (32 small updates in 2,048 steps instead of the rounds' 8) that collect by
    # replaying the best draws of their learning with small edits: one draw's error varies far more than
    # the agents' means, so the best draws hold what learning found (benchmarks/RESULTS.md).
    search_agents: int = option(4, help="agents of the search policy (the rounds use 16); default %(default)s")
    search_draws: int = option(16, help="draws per search agent and iteration; default %(default)s")
    search_replay: float = option(1.0, help=(
        "share of the search's samples replayed from the best draws of its learning, with small edits "
        "(0: draw from its agents); default %(default)s"))

    def __post_init__(self):
        check_policies(self.policies)
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds {self.seeds}: give one or more distinct seeds (three or more to see the spread)")
        check_counts(self, ("learn_steps", "samples", "num_envs", "search_agents", "search_draws"))
        if not self.no_detection_mm > 0:
            raise ValueError(f"no_detection_mm must be positive, got {self.no_detection_mm}")
        check_image_size(self.image_size)
        check_choose(self.choose)
        RewardConfig.from_any(self.reward)
        Anchoring(self.reach, self.uniform_share)
        make_policy("search", **self.search)  # its settings fail here, before any file is written

    @property
    def search(self) -> dict:
        """The search policy's settings."""
        return {"num_agents": self.search_agents, "population_per_agent": self.search_draws,
                "replay_share": self.search_replay}


def examine(out_dir: Path, estimator, config: ExamineConfig, device=None,
            say: Callable[[str], None] = print) -> dict:
    """Learn and collect against ``estimator`` (anything ``load_estimator`` takes) for every policy and
    seed of ``config``; write the datasets and the report to ``out_dir`` and return the comparison."""
    # The task checks the estimator and every setting first: a failed start leaves the folder as it was.
    task = PoseGenTask(avatar=config.avatar, estimator=estimator, reward=config.reward, device=device,
                       background=parse_backgrounds(config.background_mix, config.backgrounds), choose=config.choose,
                       image_size=config.image_size, no_detection_mm=config.no_detection_mm)
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(out_dir / "config.json", lambda t: t.write_text(json.dumps(asdict(config), indent=1)))
    try:
        return _examine_all(out_dir, task, config, say)
    except BaseException:
        if not any(p.name != "config.json" for p in out_dir.iterdir()):  # failed before any result: leave no trace
            (out_dir / "config.json").unlink(missing_ok=True)
            if created:
                out_dir.rmdir()
        raise


def _examine_all(out_dir: Path, task: PoseGenTask, config: ExamineConfig, say: Callable[[str], None]) -> dict:
    """Every policy and seed of ``config``: learn, collect, record; then the report."""
    say(f"examining {getattr(task.estimator, 'name', type(task.estimator).__name__)}: {task.spec.describe()}")
    records: list[dict] = []
    for seed in config.seeds:
        for name in config.policies:
            torch.manual_seed(seed)
            env = PoseGenVectorEnv(config.num_envs, task=task)
            kwargs = config.search if name == "search" else {}
            policy = make_policy(name, seed=seed, anchoring=Anchoring(config.reach, config.uniform_share),
                                 action_dim=task.action_dim, **kwargs)
            policy.prepare(env)  # an SB3 agent's untrained start is its initial network
            rounds = [(name + UNTRAINED, False), (name, True)] if policy.learns else [(name, False)]
            for label, learn in rounds:
                curve: list[tuple[int, float]] = []
                if learn:
                    curve = _learn(policy, env, config.learn_steps, seed, label)
                # the same collection seed for every policy: the same contexts and anchors, a paired comparison
                got = collect(policy, env, config.samples, seed=seed * 7919 + 1,
                              desc=f"{label} seed {seed}: collecting")
                records.append(_record(task, label, seed, got, curve, out_dir))
                say(f"{label} seed {seed}: mean error {records[-1]['mean_error_mm']:.1f} mm, "
                    f"{records[-1]['no_detection_pct']:.1f} % no detection")
    return write_report(out_dir, records, config.policies, task.spec.joint_set.joints)


def _learn(policy, env: PoseGenVectorEnv, steps: int, seed: int, label: str) -> list[tuple[int, float]]:
    curve: list[tuple[int, float]] = []
    env.reset(seed=seed + 7919)
    with tqdm(total=steps, desc=f"{label} seed {seed}: learning", unit="step") as bar:
        def progress(done: int, rewards: np.ndarray) -> None:
            curve.append((done, float(np.mean(rewards))))
            bar.update(done - bar.n)
        policy.learn(env, steps, progress)
    return curve


def _record(task: PoseGenTask, label: str, seed: int, got: Collected, curve: list, out_dir: Path) -> dict:
    """One collection, written as a dataset with its hardest samples, summarised for the report."""
    where = out_dir / label.replace(UNTRAINED, "-untrained") / f"seed-{seed}"
    write_dataset(where / "dataset", got.data, extras={"mpjpe_mm": got.mpjpe_mm, "action": got.actions,
                                                      "detected": got.detected.astype(np.uint8)},
                  meta={"policy": label, "seed": seed, "drawn": got.drawn, "implausible": got.implausible},
                  overwrite=True)
    hardest = np.argsort(got.mpjpe_mm)[::-1][:32]
    save_image_grid(where / "hardest.png", got.data.images[hardest], columns=8,
                    labels=[f"{got.mpjpe_mm[i]:.0f}mm" if got.detected[i] else "no det" for i in hardest])
    found = got.detected
    per_joint = np.full(len(task.spec.joint_set), np.nan)
    if found.any():
        truth = targets(task.spec.joint_set, got.data.select(found), task.avatar.body)
        per_joint = np.linalg.norm(got.predicted[found] - truth, axis=-1).mean(axis=0) * 1000.0
    return {"policy": label, "seed": seed, "samples": len(got), "drawn": got.drawn,
            "mean_error_mm": float(got.mpjpe_mm.mean()),
            "no_detection_pct": float(100 * (~found).mean()) if len(got) else 0.0,
            "implausible_pct": float(100 * got.implausible / max(got.drawn, 1)),
            "per_joint_mm": per_joint.tolist(), "curve": curve,
            "actions": got.actions, "errors": got.mpjpe_mm,
            "subjects": None if got.data.subject is None else [task.avatar.names[s] for s in got.data.subject],
            "backgrounds": got.data.background, "choose": list(task.choose)}
