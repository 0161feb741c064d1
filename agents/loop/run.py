"""A run directory: its settings (``RoundConfig``), where each round's files live, and reading it back.

Runs are compared and merged by their settings, so this is also where it is decided which
settings a set of policies reads and therefore which runs compare fairly.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from agents.policies import ORDER, POLICIES, check_policies, policy_list
from agents.policies.anchored import REACH, UNIFORM_SHARE, Anchoring
from agents.policies.base import LEARN_PARTS, check_step_settings
from agents.policies.objectives import OBJECTIVES, Objective
from posegen_env.envs.action_space import check_choose, choose_list
from posegen_env.envs.checks import check_image_size
from posegen_env.envs.reward import RewardConfig
from posegen_env.estimation.plugins import absolute_callable
from posegen_env.estimation.training import OPTIMIZERS
from posegen_env.files import atomic_write
from posegen_env.render.backgrounds import Backgrounds, parse_backgrounds
from posegen_env.settings import (
    NO_FLAG,
    absolute_path,
    avatar_option,
    background_mix_option,
    backgrounds_option,
    check_counts,
    choose_option,
    comma_list,
    estimator_checkpoint_option,
    estimator_option,
    image_size_option,
    option,
    read_settings,
)

ANCHORING_SETTINGS = tuple(f.name for f in fields(Anchoring))  # read only by anchored policies
# read only by learned policies
LEARNING_SETTINGS = ("reward", "learn_steps", "objective", "fresh_share", "learn_part", "search_replay")
COUNTS = ("rounds", "samples", "learn_steps", "finetune_steps", "replay_samples", "val_samples", "suite_samples",
          "num_envs")  # settings that count something: at least 1
# The sizes of a tiny run (``--quick``: smoke tests of the whole loop).
QUICK = {"rounds": 1, "samples": 48, "learn_steps": 64, "finetune_steps": 8, "replay_samples": 128,
         "val_samples": 64, "suite_samples": 32, "num_envs": 16}
RUN_FORMAT = "posegen-run-v2"  # v2: learned policies are anchored (their saved states are steps, not actions)


class RunError(RuntimeError):
    """A run directory that cannot be used (another version, a broken config)."""


@dataclass
class RoundConfig:
    """A run's settings: ``run_agent.py``'s options and ``config.json`` are derived from these fields."""

    policies: list[str] = option(factory=lambda: ["anchor"], flag="policy", parse=policy_list, metavar="POLICY", help=(
        f"one of {', '.join(ORDER)}, a comma-separated list of them, or 'all'; default anchor, the best in the "
        "comparison over seeds on the held-out people (no learned sampler beats it yet)"))
    rounds: int = option(2, help="rounds of learning, collecting and fine-tuning")
    samples: int = option(2000, help="samples collected per round (fine-tuning samples, the same for every policy)")
    learn_steps: int = option(2048, help="environment steps each learned policy may spend per round")
    objective: str = option("error", choices=OBJECTIVES, help=(
        "what learned policies maximise: the estimator's error (the reward), its learnability (the error a "
        "briefly fine-tuned copy removes) or transfer (how much a step on the sample teaches "
        f"{Objective.probe_size:,} fresh anchors) (agents/policies/objectives.py); default %(default)s"))
    fresh_share: float = option(0.0, help=(
        "share of a learned policy's collected draws left at their anchor, so that the learned samples add to "
        "the anchor distribution (Prioritized Level Replay's mixture); default %(default)s"))
    learn_part: str = option("all", choices=LEARN_PARTS, help=(
        "what learned policies' steps move: all of the sample, the body only (the camera stays the anchor's, "
        "uniform over the sphere) or the view only (the anchor's natural body stays); default %(default)s"))
    search_replay: float = option(0.0, help=(
        "share of the search's samples replayed from the best draws of its learning with small edits "
        "(Prioritized Level Replay); default %(default)s"))
    finetune_steps: int = option(2400, help="optimiser steps of each round's fine-tuning")
    finetune_lr: float = option(3e-4, help="fine-tuning learning rate; default %(default)s")
    # Off: with 256 people recolouring cost OOD gain and did not spare new people (RESULTS).
    recolour: bool = option(False, before=False, help=(
        "fine-tune on recoloured crops (channel swaps, grey, saturation, blur) so the rounds learn poses, not the "
        "people they render (default: off)"))
    replay_ratio: float = option(0.85, help="share of every fine-tuning batch replayed from base data; default "
                                            "%(default)s")
    in_distribution_tolerance: float = option(0.015, help=(
        "how much worse (relative) than the pre-trained estimator the fine-tuned one may be on the validation "
        "split; default %(default)s"))
    replay_samples: int = option(24000, help="base crops to replay (rendered once, cached; fewer get memorised)")
    val_samples: int = option(1000, help="validation crops the fine-tuning guard scores")
    suite_samples: int = option(500, help="samples of each test suite")
    num_envs: int = option(64, help="batch of the vector environment")
    # The uncapped error: anchoring already keeps learned policies near natural bodies, and a cap
    # ties most draws, which leaves a ranking learner such as the CEM nothing to rank (see RESULTS.md).
    # Its options are RewardConfig's (--reward-mode, ...).
    reward: dict = option(factory=lambda: {"mode": "raw"}, flag=NO_FLAG)
    # The people space (256 training people drawn from the outfit family; the suites show 16 others)
    # and the baseline pre-trained on it; "cast" is the fitted cast, None the one shipped person.
    estimator: str | None = estimator_option("people-baseline", before=None, parse=absolute_callable)
    avatar: str | None = avatar_option("people", before=None)
    estimator_checkpoint: str | None = estimator_checkpoint_option(parse=absolute_path)
    image_size: int | None = image_size_option()
    loss: str | None = option(None, parse=absolute_callable, metavar="MODULE:CALLABLE", help=(
        "fine-tuning loss(model, batch) -> scalar tensor (default: L1 on the estimator's joints)"))
    finetune_optimizer: str = option("adamw", choices=sorted(OPTIMIZERS), help="default %(default)s")
    freeze: list[str] = option(factory=list, parse=comma_list, metavar="NAMES", help=(
        "comma-separated module names whose parameters fine-tuning keeps fixed, e.g. 'backbone'"))
    # Chosen on the validation split (benchmarks/RESULTS.md).
    background_mix: str = background_mix_option("plain=1,texture=1", before="plain")
    backgrounds: str | None = backgrounds_option()
    choose: list[str] = choose_option(parse=choose_list)
    reach: float = option(REACH, before=0.25, help=(
        "largest step of a learned policy away from its anchor body and camera, per action component (the box "
        "is [-1, 1]); default %(default)s, chosen on the suites' validation split"))
    uniform_share: float = option(UNIFORM_SHARE, before=0.0, help=(
        "share of the anchored policies' anchors drawn uniformly over the action box instead of from the base "
        "distribution; default %(default)s, chosen on the suites' validation split"))
    seed: int = option(0, help="seed of everything random in the run; default %(default)s")
    format: str = option(RUN_FORMAT, flag=NO_FLAG)

    def check(self) -> None:
        """Raise ValueError, naming the setting, for a value a run would refuse only once it runs: a
        sweep checks every grid point with it before Ray starts."""
        check_policies(self.policies)
        check_counts(self, COUNTS)
        if not 0 <= self.replay_ratio < 1:
            raise ValueError(f"replay_ratio must be in [0, 1), got {self.replay_ratio!r}")
        if not self.finetune_lr > 0:
            raise ValueError(f"finetune_lr must be positive, got {self.finetune_lr!r}")
        check_image_size(self.image_size)
        if self.finetune_optimizer not in OPTIMIZERS:
            raise ValueError(f"finetune_optimizer must be one of {', '.join(sorted(OPTIMIZERS))}, got "
                             f"{self.finetune_optimizer!r}")
        Objective(self.objective)
        check_step_settings(self.fresh_share, self.learn_part)
        if not 0 <= self.search_replay <= 1:
            raise ValueError(f"search_replay must be in [0, 1], got {self.search_replay!r}")
        if self.seed < 0:
            raise ValueError(f"seed must be a non-negative whole number, got {self.seed!r}")
        self.anchoring  # noqa: B018 -- Anchoring checks reach and uniform_share
        check_choose(self.choose)
        self.background  # noqa: B018 -- parse_backgrounds checks the mix
        RewardConfig.from_any(self.reward)

    @property
    def anchoring(self) -> Anchoring:
        return Anchoring(self.reach, self.uniform_share)

    @property
    def background(self) -> Backgrounds:
        """What every crop of the run is rendered on (as ``render_crops`` takes it)."""
        return parse_backgrounds(self.background_mix, self.backgrounds)

    @classmethod
    def read(cls, path: Path) -> RoundConfig:
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise RunError(f"{path}: unreadable run config ({err}); start a new run instead of --resume") from None
        if "learn_view" in doc and "learn_part" not in doc:  # the setting's earlier form, a yes/no
            doc["learn_part"] = "all" if doc["learn_view"] else "body"
        if doc.get("format") != RUN_FORMAT:
            raise RunError(f"{path.parent} was written by an incompatible version (format {doc.get('format')!r}, "
                           f"this version reads {RUN_FORMAT!r}); start a new run with --out")
        try:
            return read_settings(cls, doc, str(path))
        except (TypeError, ValueError) as err:
            raise RunError(f"{err}; start a new run with --out") from None

    def differences(self, other: RoundConfig, ignore: tuple[str, ...] = ()) -> list[str]:
        """The settings (field names) in which ``other`` differs, leaving out ``ignore``."""
        mine, theirs = self._settings(), other._settings()
        return [k for k in mine if k not in ignore and mine[k] != theirs[k]]

    def _settings(self) -> dict:
        """Every field, the reward spelt out in full: ``{}`` and the default values are the same reward."""
        return asdict(self) | {"reward": RewardConfig.from_any(self.reward).as_dict()}

    def write(self, path: Path) -> None:
        atomic_write(path, lambda t: t.write_text(json.dumps(asdict(self), indent=1)))


def settings_unused(policies: list[str]) -> tuple[str, ...]:
    """The run settings none of ``policies`` reads (``random`` reads neither the reward nor the reach),
    so their results do not depend on them."""
    unused = () if any(POLICIES[p].anchored for p in policies) else ANCHORING_SETTINGS
    return unused + (() if any(POLICIES[p].learns for p in policies) else LEARNING_SETTINGS)


def check_comparable(runs: list[Path], configs: list[RoundConfig], vary: tuple[str, ...], allowed: str) -> int:
    """Index of the run that reads the most settings, after checking that every run agrees with it in
    each setting both read, apart from ``vary`` (``allowed`` names those options in the error)."""
    unused = [settings_unused(c.policies) for c in configs]
    ref = min(range(len(configs)), key=lambda i: len(unused[i]))
    for run, config, skip in zip(runs, configs, unused, strict=True):
        differ = configs[ref].differences(config, ignore=vary + skip)
        if differ:
            raise RunError(f"{run} differs from {runs[ref]} in {', '.join(differ)}; only runs whose settings "
                           f"differ in {allowed} alone compare fairly")
    return ref


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold ``run_dir`` for this process: a second process writing the same run would redo its work and
    overwrite its files, so it is refused with the holder's PID. The OS releases the lock if we die.
    Filelock does not count a lock on a removed file, so removing both files before the release is safe."""
    from filelock import FileLock, Timeout

    lock, pid_file = FileLock(run_dir / ".posegen.lock"), run_dir / ".posegen.pid"
    try:
        lock.acquire(timeout=0)
    except Timeout:
        pid = pid_file.read_text().strip() if pid_file.is_file() else "unknown"
        raise RunError(f"{run_dir}: run in use by PID {pid} (another run_agent.py or sweep trial is writing it); "
                       "wait for it to end or stop it, then --resume") from None
    try:
        atomic_write(pid_file, lambda t: t.write_text(str(os.getpid())))
        yield
    finally:
        # A finished folder holds no sign of a writer: both files go while the lock is still held, so no
        # second writer gets in between; a killed run leaves them, and the next run takes the lock the OS freed.
        for path in (pid_file, run_dir / ".posegen.lock"):
            with contextlib.suppress(OSError):  # e.g. Windows, which keeps a held file; the lock still goes
                path.unlink(missing_ok=True)
        lock.release()


def round_dir(run_dir: Path, policy: str, k: int) -> Path:
    return run_dir / policy / f"round-{k}"


def read_run(run: Path) -> tuple[RoundConfig, list[dict]]:
    """A finished or interrupted run's config and result rows, refusing what is not a readable run."""
    if not (run / "config.json").is_file():
        raise RunError(f"{run}: no run there (config.json missing); pass directories written by run_agent.py")
    config = RoundConfig.read(run / "config.json")
    try:
        rows = json.loads((run / "results.json").read_text())["rows"]
    except (OSError, ValueError, KeyError) as err:
        raise RunError(f"{run}: results.json is missing or unreadable ({err}); finish it with "
                       f"`python train/run_agent.py --resume {run}` first") from None
    return config, rows


def rounds_done(rows: list[dict], policy: str) -> int:
    """The last round of ``policy`` recorded in ``rows`` (0 if none)."""
    return max((r["round"] for r in rows if r["policy"] == policy), default=0)
