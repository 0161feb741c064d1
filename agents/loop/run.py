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
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from agents.policies import POLICIES
from agents.policies.anchored import REACH, UNIFORM_SHARE, Anchoring
from agents.policies.objectives import Objective
from posegen_env.envs.action_space import check_choose
from posegen_env.envs.checks import MAX_IMAGE_SIZE
from posegen_env.envs.reward import RewardConfig
from posegen_env.estimation.training import OPTIMIZERS
from posegen_env.files import atomic_write
from posegen_env.render.backgrounds import Backgrounds, parse_backgrounds

ANCHORING_SETTINGS = tuple(f.name for f in fields(Anchoring))  # read only by anchored policies
# read only by learned policies
LEARNING_SETTINGS = ("reward", "learn_steps", "objective", "fresh_share", "learn_view", "search_replay")
COUNTS = ("rounds", "samples", "learn_steps", "finetune_steps", "replay_samples", "val_samples", "suite_samples",
          "num_envs")  # settings that count something: at least 1
RUN_FORMAT = "posegen-run-v2"  # v2: learned policies are anchored (their saved states are steps, not actions)


class RunError(RuntimeError):
    """A run directory that cannot be used (another version, a broken config)."""


@dataclass
class RoundConfig:
    policies: list[str] = field(default_factory=lambda: ["search"])  # the best learned policy in the comparison
    rounds: int = 2
    samples: int = 2000  # collected (fine-tuning) samples per round: the same for every policy
    learn_steps: int = 2048  # environment steps each learned policy may spend per round
    objective: str = "error"  # what learned policies maximise (agents/policies/objectives.py)
    fresh_share: float = 0.0  # share of a learned policy's collected draws left at their anchor
    learn_view: bool = True  # False: learned policies step the body only; the view stays the anchor's
    search_replay: float = 0.0  # share of the search's samples replayed from its best learning draws
    finetune_steps: int = 2400
    finetune_lr: float = 3e-4
    # True: fine-tuning also swaps colour channels, greys, desaturates and blurs crops (estimation.
    # training). Off: with 256 people it cost OOD gain and did not spare new people (RESULTS).
    recolour: bool = False
    replay_ratio: float = 0.85
    in_distribution_tolerance: float = 0.015  # against the pre-trained model, on the validation split
    replay_samples: int = 24000  # base crops replayed while fine-tuning: fewer get memorised
    val_samples: int = 1000
    suite_samples: int = 500
    num_envs: int = 64
    # The uncapped error: anchoring already keeps learned policies near natural bodies, and a cap
    # ties most draws, which leaves a ranking learner such as the CEM nothing to rank (see RESULTS.md).
    reward: dict = field(default_factory=lambda: {"mode": "raw"})
    # The people space (256 training people drawn from the outfit family; the suites show 16 others)
    # and the baseline pre-trained on it; "cast" is the fitted cast, None the one shipped person.
    estimator: str | None = "people-baseline"
    avatar: str | None = "people"
    # A user's estimator: weights for the torch module ``estimator`` ("module:callable") builds, the
    # crop size when not the one it declares, and how its rounds fine-tune it.
    estimator_checkpoint: str | None = None
    image_size: int | None = None
    loss: str | None = None  # "module:callable" of loss(model, batch) -> scalar; None: L1 on its joints
    finetune_optimizer: str = "adamw"
    freeze: list[str] = field(default_factory=list)  # module names whose parameters stay fixed
    # Backgrounds of every rendered crop (render.backgrounds.parse_backgrounds): plain colours and
    # textures, chosen on the validation split (benchmarks/RESULTS.md).
    background_mix: str = "plain=1,texture=1"
    backgrounds: str | None = None  # a folder of background photos in the mix
    choose: list[str] = field(default_factory=list)  # what actions choose (envs.action_space.CHOICES)
    reach: float = REACH  # how far a learned policy may step from its anchors (agents/policies/anchored.py)
    uniform_share: float = UNIFORM_SHARE  # share of anchors drawn uniformly over the action box
    seed: int = 0
    format: str = RUN_FORMAT

    def check(self) -> None:
        """Raise ValueError, naming the setting, for a value a run would refuse only once it runs: a
        sweep checks every grid point with it before Ray starts."""
        for name in COUNTS:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive whole number, got {getattr(self, name)!r}")
        if not 0 <= self.replay_ratio < 1:
            raise ValueError(f"replay_ratio must be in [0, 1), got {self.replay_ratio!r}")
        if not self.finetune_lr > 0:
            raise ValueError(f"finetune_lr must be positive, got {self.finetune_lr!r}")
        if self.image_size is not None and not 16 <= self.image_size <= MAX_IMAGE_SIZE:
            raise ValueError(f"image_size must be a crop side in pixels, 16 to {MAX_IMAGE_SIZE}, "
                             f"got {self.image_size!r}")
        if self.finetune_optimizer not in OPTIMIZERS:
            raise ValueError(f"finetune_optimizer must be one of {', '.join(sorted(OPTIMIZERS))}, got "
                             f"{self.finetune_optimizer!r}")
        Objective(self.objective)
        if not 0 <= self.fresh_share < 1:
            raise ValueError(f"fresh_share must be in [0, 1), got {self.fresh_share!r}")
        if not 0 <= self.search_replay <= 1:
            raise ValueError(f"search_replay must be in [0, 1], got {self.search_replay!r}")
        self.anchoring  # noqa: B018 -- Anchoring checks reach and uniform_share
        check_choose(self.choose)
        self.background  # noqa: B018 -- parse_backgrounds checks the mix
        RewardConfig.from_any(self.reward)

    @property
    def anchoring(self) -> Anchoring:
        return Anchoring(self.reach, self.uniform_share)

    @property
    def background(self) -> str | Backgrounds:
        """What every crop of the run is rendered on (as ``render_crops`` takes it)."""
        return parse_backgrounds(self.background_mix, self.backgrounds)

    @classmethod
    def read(cls, path: Path) -> RoundConfig:
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise RunError(f"{path}: unreadable run config ({err}); start a new run instead of --resume") from None
        if doc.get("format") != RUN_FORMAT:
            raise RunError(f"{path.parent} was written by an incompatible version (format {doc.get('format')!r}, "
                           f"this version reads {RUN_FORMAT!r}); start a new run with --out")
        doc.setdefault("reach", 0.25)  # the fixed reach of runs written before it was a setting
        doc.setdefault("uniform_share", 0.0)  # those runs drew every anchor from the base distribution
        doc.setdefault("background_mix", "plain")  # runs before backgrounds: a random plain colour per crop
        doc.setdefault("avatar", None)  # and before the cast: the one shipped person and its baseline
        doc.setdefault("estimator", None)
        doc.setdefault("recolour", False)  # runs before the people space fine-tuned on crops as rendered
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in doc.items() if k in known})

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
