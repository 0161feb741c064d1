"""Splits of the base distribution (PoseGen's stand-in for a public dataset), rendered once and cached.

Pre-training draws its training and validation crops here; the alternating rounds replay the
training split and guard in-distribution accuracy with the validation split. Both come from the
base samplers with fixed seeds, never from the test suites.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from posegen_env.data.cache import cache_root, ensure_cached
from posegen_env.data.dataset import load_dataset, write_dataset
from posegen_env.distributions import BaseCameraSampler, BasePoseSampler
from posegen_env.render.avatar.cast import CastRenderer
from posegen_env.render.backgrounds import background_tag
from posegen_env.render.crops import DEFAULT_CROP_SCALE, crop_tag, render_crops
from posegen_env.render.step import PoseBatch

SPLIT_SEEDS = {"train": 1, "val": 2}


def split_people(avatar: CastRenderer, split: str) -> np.ndarray:
    """Whom a base split shows: the training people, and for "val" the validation people where the
    renderer has them (so the in-distribution guard watches people fine-tuning never sees)."""
    validation = avatar.group("validation")
    return validation if split == "val" and len(validation) else avatar.group("train")


def base_split(avatar, split: str, num_samples: int, data_dir: str | Path | None = None,
               crop_size: int = 64, background="random", crop_scale: float = DEFAULT_CROP_SCALE) -> PoseBatch:
    """``num_samples`` base crops of ``split`` ("train" or "val"), ``crop_size`` pixels square with the
    ``crop_scale`` margin, on ``background`` (as ``render_crops`` takes it), with every label; cached
    in the dataset format under ``data_dir`` (default: the avatar's folder in the PoseGen cache)."""
    if split not in SPLIT_SEEDS:
        raise ValueError(f"split must be one of {sorted(SPLIT_SEEDS)}, got {split!r}")
    data_dir = Path(data_dir) if data_dir is not None else cache_root() / "base" / avatar.identifier
    path = data_dir / f"{split}-n{num_samples}{crop_tag(crop_size, crop_scale)}{background_tag(background)}"

    def render() -> None:
        rng = np.random.default_rng(SPLIT_SEEDS[split])
        poses, cams = BasePoseSampler().sample(num_samples, rng), BaseCameraSampler().sample(num_samples, rng)
        who = None
        if isinstance(avatar, CastRenderer):  # never the suites' held-out people
            who, poses["betas"] = avatar.draw(split_people(avatar, split), rng, num_samples)
        with tqdm(total=num_samples, desc=f"rendering base {split} split", unit="img") as bar:
            b = render_crops(avatar, poses, cams, crop_size=crop_size, crop_scale=crop_scale, rng=rng, progress=bar,
                             subjects=who, background=background)
        write_dataset(path, b, meta={"split": split, "seed": SPLIT_SEEDS[split], "distribution": "base"},
                      overwrite=True)

    ensure_cached(path, lambda p: (p / "dataset.json").is_file(), render)
    return load_dataset(path).to_batch()
