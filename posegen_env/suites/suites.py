"""The four fixed test suites that expose an estimator's blind spots.

They stand in for the paper's real test sets, so they are independent of every sampler: the
held-out poses (``heldout_poses``) and the camera set-ups below are read only here, and no
suite image is ever trained on.

- ``in-distribution``: new samples of the base distribution (library poses, near-frontal cameras);
- ``novel-views``: base poses from camera set-ups the base data lacks (surveillance, ground
  level, side and back views, telephoto and wide-angle lenses);
- ``novel-poses``: near-frontal cameras, held-out activity poses (sports, dance, yoga, ...);
- ``hard``: held-out poses from the novel camera set-ups.

Each suite comes in two splits drawn from the same generators with different seeds: ``test``,
which every reported figure uses, and ``validation``, on which settings (such as a learned policy's
reach) are chosen, so that choosing them never looks at the test images. Each is rendered
deterministically from its seed by the avatar and cached on disk in the dataset format
(``$POSEGEN_CACHE`` or ``~/.cache/posegen``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from posegen_env.body.pose_library import mirror_pose
from posegen_env.data.cache import cache_root, ensure_cached
from posegen_env.data.dataset import PoseDataset, load_dataset, write_dataset
from posegen_env.distributions import BaseCameraSampler, BasePoseSampler, RangeCameraSampler
from posegen_env.estimation.evaluate import evaluate_dataset
from posegen_env.estimation.spec import spec_of
from posegen_env.render.avatar.cast import CastRenderer
from posegen_env.render.backgrounds import background_tag
from posegen_env.render.camera import CameraParams
from posegen_env.render.crops import DEFAULT_CROP_SCALE, crop_tag, render_crops
from posegen_env.render.step import PoseBatch
from posegen_env.suites.heldout_people import heldout_tag, with_heldout_people
from posegen_env.suites.heldout_poses import heldout_array

SUITES = ("in-distribution", "novel-views", "novel-poses", "hard")
OUT_OF_DISTRIBUTION = SUITES[1:]
SUITE_SEEDS = {"in-distribution": 9001, "novel-views": 9002, "novel-poses": 9003, "hard": 9004}
SPLIT_SEED_OFFSETS = {"test": 0, "validation": 100}
SPLITS = tuple(SPLIT_SEED_OFFSETS)

# Camera set-ups of the novel-view suites: (azimuth, elevation, distance, roll, field of view) ranges.
NOVEL_VIEW_SETUPS = {
    "surveillance": RangeCameraSampler((0, 360), (45, 70), (4.0, 7.0), (-3, 3), (30, 45)),
    "ground-level": RangeCameraSampler((-40, 40), (-30, -12), (1.8, 3.0), (-3, 3), (50, 70)),
    "side": RangeCameraSampler((60, 120), (-5, 20), (2.5, 4.0), (-3, 3), (35, 55)),
    "back": RangeCameraSampler((150, 210), (-5, 20), (2.5, 4.0), (-3, 3), (35, 55)),
    "telephoto": RangeCameraSampler((-40, 40), (0, 20), (8.0, 12.0), (-2, 2), (10, 18)),
    "wide-close": RangeCameraSampler((-40, 40), (-10, 20), (1.5, 2.2), (-5, 5), (75, 90)),
}


def _novel_cameras(n: int, rng: np.random.Generator) -> CameraParams:
    """Equal shares of every novel set-up; half of all azimuths are mirrored (left and right sides)."""
    names = list(NOVEL_VIEW_SETUPS)
    which = np.arange(n) % len(names)
    parts = [NOVEL_VIEW_SETUPS[names[k]].sample(int((which == k).sum()), rng) for k in range(len(names))]
    fields = ("azimuth_deg", "elevation_deg", "distance", "roll_deg", "focal_px")
    merged = {f: np.concatenate([getattr(p, f) for p in parts]) for f in fields}
    merged["azimuth_deg"] = np.where(rng.random(n) < 0.5, merged["azimuth_deg"], -merged["azimuth_deg"])
    order = rng.permutation(n)
    return CameraParams(**{f: merged[f][order] for f in fields})  # type: ignore[arg-type]


def _heldout_poses(n: int, rng: np.random.Generator) -> dict:
    """Held-out poses, half mirrored, with a little per-joint noise (3 deg) and base-like body shapes."""
    go, bp = heldout_array()
    pick = rng.integers(len(bp), size=n)
    go, bp = go[pick].copy(), bp[pick].copy()
    flip = rng.random(n) < 0.5
    go[flip], bp[flip] = mirror_pose(go[flip], bp[flip])
    bp = bp + np.deg2rad(3.0) * rng.standard_normal(bp.shape)
    return {"global_orient": go, "body_pose": bp, "betas": 0.5 * rng.standard_normal((n, 10))}


def suite_seed(name: str, split: str = "test") -> int:
    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r}; choose from {', '.join(SUITES)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    return SUITE_SEEDS[name] + SPLIT_SEED_OFFSETS[split]


def build_suite(name: str, avatar, num_samples: int = 500, crop_size: int = 64, split: str = "test",
                subjects: str = "heldout", background="random", crop_scale: float = DEFAULT_CROP_SCALE) -> PoseBatch:
    """Render a suite's samples (deterministic for a given avatar and background), as ``crop_size`` px
    crops with the ``crop_scale`` margin: the estimator's own input, not a resampled one.

    With a cast, each sample shows a subject of the ``subjects`` group in that subject's build:
    the held-out people for reported figures, "train" for diagnosing what is person-specific.
    ``background`` as ``render_crops`` takes it: the run's own, so the suites test what it trains on."""
    rng = np.random.default_rng(suite_seed(name, split))
    novel_pose = name in ("novel-poses", "hard")
    poses = _heldout_poses(num_samples, rng) if novel_pose else BasePoseSampler().sample(num_samples, rng)
    cameras = _novel_cameras(num_samples, rng) if name in ("novel-views", "hard") else \
        BaseCameraSampler().sample(num_samples, rng)
    who = None
    if isinstance(avatar, CastRenderer):
        with_heldout_people(avatar)
        group = avatar.group(subjects)
        if not len(group):
            raise ValueError(f"the cast has no {subjects!r} subjects to render the {name} suite with; build it with "
                             "held-out subjects (train/make_cast.py --heldout N)")
        who, poses["betas"] = avatar.draw(group, rng, num_samples)
    with tqdm(total=num_samples, desc=f"rendering {split} suite {name}", unit="img") as bar:
        return render_crops(avatar, poses, cameras, crop_size=crop_size, crop_scale=crop_scale, rng=rng, progress=bar,
                            subjects=who, background=background)


def suite_path(name: str, avatar, num_samples: int = 500, crop_size: int = 64, split: str = "test",
               subjects: str = "heldout", background="random", crop_scale: float = DEFAULT_CROP_SCALE) -> Path:
    """Where a suite is cached: one folder per avatar, suite, split, subject group, size, crop geometry
    and background."""
    tag = getattr(avatar, "identifier", "avatar") + heldout_tag(avatar)
    split_tag = "" if split == "test" else f"-{split}"
    group_tag = "" if subjects == "heldout" or not isinstance(avatar, CastRenderer) else f"-{subjects}"
    return cache_root() / "suites" / tag / (f"{name}{split_tag}{group_tag}-n{num_samples}"
                                            f"{crop_tag(crop_size, crop_scale)}{background_tag(background)}")


def load_suite(name: str, avatar, num_samples: int = 500, crop_size: int = 64, regenerate: bool = False,
               split: str = "test", subjects: str = "heldout", background="random",
               crop_scale: float = DEFAULT_CROP_SCALE) -> PoseDataset:
    """The suite from the cache, rendering and caching it first if needed."""
    path = suite_path(name, avatar, num_samples, crop_size, split, subjects, background, crop_scale)

    def render() -> None:
        b = build_suite(name, avatar, num_samples, crop_size, split, subjects, background, crop_scale)
        write_dataset(path, b, meta={"suite": name, "split": split, "seed": suite_seed(name, split),
                                     "subjects": subjects, "avatar": getattr(avatar, "identifier", "")},
                      overwrite=True)

    ensure_cached(path, lambda p: (p / "dataset.json").is_file(), render, rebuild=regenerate)
    return load_dataset(path)


def evaluate_suites(estimator, avatar, names=SUITES, num_samples: int = 500, split: str = "test",
                    subjects: str = "heldout", background="random", image_size: int | None = None,
                    missing: bool = False) -> dict[str, dict]:
    """Metrics on each named suite of ``split`` (rendered and cached on first use); with a cast, on
    the ``subjects`` group (the held-out people unless diagnosing), on ``background``. The suites are
    rendered at the estimator's input size and crop margin (its spec), or at ``image_size``;
    ``missing`` as in ``evaluate_dataset``."""
    spec = spec_of(estimator)
    size = image_size or spec.input_size
    return {name: evaluate_dataset(estimator, load_suite(name, avatar, num_samples, size, split=split,
                                                         subjects=subjects, background=background,
                                                         crop_scale=spec.crop_scale),
                                   body=avatar.body, missing=missing)
            for name in names}
