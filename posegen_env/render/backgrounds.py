"""Backgrounds of person crops: plain colours, procedural textures and photos from a folder.

A crop's background is drawn from the crop's own generator as a small JSON-ready *record*
(its kind and parameters; colours are RGB in 0-255 like every background triple), and the
image is made from the record. So each crop's background can be stored with its labels and
made again exactly, and a crop does not depend on the batch it is rendered in.

Texture kinds (``TEXTURES``), each with two random colours:

- ``noise``: smooth value noise (a few octaves of a random lattice, smoothly interpolated);
- ``linear``: a linear gradient at a random angle; ``radial``: a radial gradient about a random centre;
- ``stripes``: stripes at a random angle, period and width;
- ``checker``: a checkerboard at a random angle and cell size;
- ``tiles``: square tiles with grout lines, each tile slightly lighter or darker.

Sizes are fractions of the crop side, so a record gives the same picture at any crop size.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

TEXTURES = ("noise", "linear", "radial", "stripes", "checker", "tiles")
KINDS = ("plain", "texture", "images")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_SUPERSAMPLE = 2  # hard edges (stripes, checks, grout) are averaged over 2 x 2 samples per pixel
_CACHED_IMAGES = 32


class BackgroundError(ValueError):
    """A background specification or image folder that cannot be used, with what to do about it."""


def _colour(rng: np.random.Generator) -> list[float]:
    return [float(c) for c in rng.uniform(0.0, 255.0, size=3)]


def draw_texture(rng: np.random.Generator, kind: str) -> dict[str, Any]:
    """The record of one random texture of ``kind`` (one of ``TEXTURES``)."""
    if kind not in TEXTURES:
        raise BackgroundError(f"unknown texture {kind!r}; known: {TEXTURES}")
    record: dict[str, Any] = {"kind": kind, "colours": [_colour(rng), _colour(rng)]}
    if kind == "noise":
        record |= {"cells": int(rng.integers(2, 7)), "octaves": int(rng.integers(1, 4)),
                   "seed": int(rng.integers(2**32))}
    elif kind == "linear":
        record |= {"angle": float(rng.uniform(0.0, 2 * np.pi))}
    elif kind == "radial":
        record |= {"centre": [float(c) for c in rng.uniform(0.0, 1.0, size=2)], "radius": float(rng.uniform(0.3, 1.2))}
    elif kind == "stripes":
        record |= {"angle": float(rng.uniform(0.0, np.pi)), "period": float(rng.uniform(0.05, 0.4)),
                   "duty": float(rng.uniform(0.3, 0.7)), "phase": float(rng.uniform(0.0, 1.0))}
    elif kind == "checker":
        record |= {"angle": float(rng.uniform(0.0, np.pi / 2)), "period": float(rng.uniform(0.08, 0.4)),
                   "phase": [float(c) for c in rng.uniform(0.0, 1.0, size=2)]}
    else:
        record |= {"angle": float(rng.uniform(0.0, np.pi / 2)), "period": float(rng.uniform(0.1, 0.4)),
                   "grout": float(rng.uniform(0.04, 0.12)), "variation": float(rng.uniform(0.0, 0.15)),
                   "seed": int(rng.integers(2**32))}
    return record


def texture_image(record: Mapping[str, Any], size: int) -> np.ndarray:
    """The texture a ``draw_texture`` record describes: (size, size, 3) float32 in [0, 1]."""
    n = size * _SUPERSAMPLE
    v, u = np.meshgrid((np.arange(n) + 0.5) / n, (np.arange(n) + 0.5) / n, indexing="ij")  # rows, columns
    kind = record["kind"]
    if kind == "tiles":
        rgb = _tiles(record, u, v)
    else:
        t = _TEXTURE_FIELDS[kind](record, u, v)
        c0, c1 = (np.asarray(c, np.float64) / 255.0 for c in record["colours"])
        rgb = c0 + t[..., None] * (c1 - c0)
    rgb = rgb.reshape(size, _SUPERSAMPLE, size, _SUPERSAMPLE, 3).mean(axis=(1, 3))
    return np.clip(rgb, 0.0, 1.0).astype(np.float32)


def _rotated(u: np.ndarray, v: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Crop coordinates about its centre, turned by ``angle``."""
    x, y = u - 0.5, v - 0.5
    c, s = np.cos(angle), np.sin(angle)
    return c * x + s * y, -s * x + c * y


def _value_noise(rng: np.random.Generator, cells: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """A random (cells + 1)^2 lattice, interpolated with smoothstep weights (no visible grid)."""
    lattice = rng.uniform(0.0, 1.0, size=(cells + 1, cells + 1))
    gx, gy = u * cells, v * cells
    ix, iy = np.minimum(gx.astype(int), cells - 1), np.minimum(gy.astype(int), cells - 1)
    fx, fy = gx - ix, gy - iy
    wx, wy = fx * fx * (3 - 2 * fx), fy * fy * (3 - 2 * fy)
    top = lattice[iy, ix] + wx * (lattice[iy, ix + 1] - lattice[iy, ix])
    bottom = lattice[iy + 1, ix] + wx * (lattice[iy + 1, ix + 1] - lattice[iy + 1, ix])
    return top + wy * (bottom - top)


def _noise(record: Mapping[str, Any], u: np.ndarray, v: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(record["seed"])
    octaves = [(0.5**k, _value_noise(rng, record["cells"] * 2**k, u, v)) for k in range(record["octaves"])]
    t = sum(w * n for w, n in octaves) / sum(w for w, _ in octaves)
    return np.clip(0.5 + 1.6 * (t - 0.5), 0.0, 1.0)  # averaged octaves are flat; restore the contrast


def _linear(record: Mapping[str, Any], u: np.ndarray, v: np.ndarray) -> np.ndarray:
    a, _ = _rotated(u, v, record["angle"])
    extent = abs(np.cos(record["angle"])) + abs(np.sin(record["angle"]))  # corner to corner along the gradient
    return np.clip(0.5 + a / extent, 0.0, 1.0)


def _radial(record: Mapping[str, Any], u: np.ndarray, v: np.ndarray) -> np.ndarray:
    cx, cy = record["centre"]
    return np.clip(np.hypot(u - cx, v - cy) / record["radius"], 0.0, 1.0)


def _stripes(record: Mapping[str, Any], u: np.ndarray, v: np.ndarray) -> np.ndarray:
    a, _ = _rotated(u, v, record["angle"])
    return (((a / record["period"] + record["phase"]) % 1.0) < record["duty"]).astype(np.float64)


def _checker(record: Mapping[str, Any], u: np.ndarray, v: np.ndarray) -> np.ndarray:
    a, b = _rotated(u, v, record["angle"])
    px, py = record["phase"]
    cells = np.floor(a / record["period"] + px) + np.floor(b / record["period"] + py)
    return (cells % 2).astype(np.float64)


def _tiles(record: Mapping[str, Any], u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Tiles in the first colour, each lightened or darkened a little, with grout in the second."""
    a, b = (c / record["period"] for c in _rotated(u, v, record["angle"]))
    shade = np.random.default_rng(record["seed"]).uniform(-1.0, 1.0, size=(64, 64)) * record["variation"]
    ia, ib = np.floor(a).astype(int) % 64, np.floor(b).astype(int) % 64
    half = record["grout"] / 2
    grout = (np.abs(a - np.round(a)) < half) | (np.abs(b - np.round(b)) < half)
    tile, joint = (np.asarray(c, np.float64) / 255.0 for c in record["colours"])
    rgb = tile * (1.0 + shade[ia, ib])[..., None]
    rgb[grout] = joint
    return rgb


_TEXTURE_FIELDS = {"noise": _noise, "linear": _linear, "radial": _radial, "stripes": _stripes, "checker": _checker}


class ImageFolderBackgrounds:
    """Random square crops of the PNG/JPEG photos in a folder, resized to the crop size.

    A crop covers ``min_fraction`` to all of a photo's shorter side, anywhere in it, and is
    mirrored half the time. Photos are decoded when first used and a few are kept in memory.
    """

    def __init__(self, folder: str | os.PathLike, min_fraction: float = 0.3):
        self.folder = Path(folder).expanduser()
        if not 0.0 < min_fraction <= 1.0:
            raise BackgroundError(f"min_fraction must be in (0, 1], got {min_fraction!r}")
        self.min_fraction = float(min_fraction)
        self.files = _image_files(self.folder)
        self.sizes = [_image_size(self.folder, name) for name in self.files]
        self._cache: dict[str, np.ndarray] = {}

    def __repr__(self) -> str:
        return f"ImageFolderBackgrounds({str(self.folder)!r}, {len(self.files)} images)"

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        """The record of one random crop: file (relative to the folder), box [x, y, side] in its pixels, flip."""
        k = int(rng.integers(len(self.files)))
        width, height = self.sizes[k]
        short = min(width, height)
        side = int(round(rng.uniform(self.min_fraction, 1.0) * short))
        side = min(max(side, 1), short)
        x, y = int(rng.integers(width - side + 1)), int(rng.integers(height - side + 1))
        return {"kind": "image", "file": self.files[k], "box": [x, y, side], "flip": bool(rng.random() < 0.5)}

    def image(self, record: Mapping[str, Any], size: int) -> np.ndarray:
        """The crop a ``draw`` record describes: (size, size, 3) float32 in [0, 1]."""
        from PIL import Image

        x, y, side = record["box"]
        photo = Image.fromarray(self._photo(record["file"]))
        crop = photo.resize((size, size), Image.Resampling.BILINEAR, box=(x, y, x + side, y + side),
                            reducing_gap=2.0)
        rgb = np.asarray(crop, dtype=np.float32) / 255.0
        return np.ascontiguousarray(rgb[:, ::-1]) if record["flip"] else rgb

    def _photo(self, name: str) -> np.ndarray:
        if name not in self._cache:
            if len(self._cache) >= _CACHED_IMAGES:
                self._cache.pop(next(iter(self._cache)))
            self._cache[name] = _read_image(self.folder, name)
        return self._cache[name]


def _image_files(folder: Path) -> list[str]:
    """The PNG/JPEG files in ``folder`` (sorted, so a record's draw does not depend on listing order)."""
    fix = "pass a folder of PNG or JPEG photos, or leave 'images' out of the background mix"
    if not folder.is_dir():
        raise BackgroundError(f"background image folder {folder} does not exist or is not a folder; {fix}")
    try:
        names = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    except OSError as err:
        raise BackgroundError(f"cannot list background image folder {folder} ({err}); make it readable, "
                              f"or {fix}") from err
    if not names:
        raise BackgroundError(f"background image folder {folder} holds no PNG or JPEG files "
                              f"({', '.join(IMAGE_SUFFIXES)}); add some photos, or leave 'images' out of the mix")
    return names


def _image_size(folder: Path, name: str) -> tuple[int, int]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(folder / name) as im:
            return im.size
    except (OSError, UnidentifiedImageError) as err:
        raise BackgroundError(f"background image {folder / name} cannot be read as an image ({err}); "
                              f"remove or replace it") from err


def _read_image(folder: Path, name: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(folder / name) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, UnidentifiedImageError) as err:
        raise BackgroundError(f"background image {folder / name} cannot be read as an image ({err}); "
                              f"remove or replace it") from err


def _default_mix() -> dict[str, float]:
    return {"plain": 0.5, "texture": 0.5}


@dataclass(frozen=True)
class Backgrounds:
    """How each crop's background is drawn: a kind from ``mix``, then that kind's parameters.

    ``mix`` weights the kinds (normalised): "plain" is a uniformly random colour, "texture" one
    of ``textures`` (see the module docstring) and "images" a crop of a photo from ``images``
    (an ``ImageFolderBackgrounds`` or its folder), which that kind needs.
    """

    mix: Mapping[str, float] = field(default_factory=_default_mix)
    textures: tuple[str, ...] = TEXTURES
    images: ImageFolderBackgrounds | str | os.PathLike | None = None

    def __post_init__(self) -> None:
        unknown = set(self.mix) - set(KINDS)
        weights = np.array([float(w) for w in self.mix.values()])
        if unknown or not len(weights) or not np.isfinite(weights).all() or (weights < 0).any() or weights.sum() <= 0:
            raise BackgroundError(f"background mix must weight some of {KINDS} with non-negative numbers, "
                                  f"e.g. {{'plain': 0.5, 'texture': 0.5}}; got {dict(self.mix)!r}")
        object.__setattr__(self, "mix", {k: float(w) for k, w in self.mix.items() if w > 0})
        object.__setattr__(self, "textures", tuple(self.textures))
        if "texture" in self.mix and (not self.textures or set(self.textures) - set(TEXTURES)):
            raise BackgroundError(f"textures must be some of {TEXTURES}, got {self.textures!r}")
        if isinstance(self.images, str | os.PathLike):
            object.__setattr__(self, "images", ImageFolderBackgrounds(self.images))
        if "images" in self.mix and self.images is None:
            raise BackgroundError("the background mix has 'images' but no image folder; pass images=FOLDER "
                                  "(a folder of PNG/JPEG photos) or leave 'images' out of the mix")

    @property
    def styles(self) -> tuple[str, ...]:
        """What a policy may choose between (``draw(style=...)``): "plain", each texture kind, "images"."""
        kinds = {"plain": ("plain",), "texture": self.textures, "images": ("images",)}
        return tuple(style for kind in KINDS if kind in self.mix for style in kinds[kind])

    def draw(self, rng: np.random.Generator, style: str | None = None) -> dict[str, Any]:
        """One crop's background record, drawn from that crop's generator; ``style`` (one of ``styles``)
        fixes its kind (or texture kind) instead of drawing it from the mix."""
        if style is None:
            kinds = list(self.mix)
            weights = np.array([self.mix[k] for k in kinds])
            kind = kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]
            texture = self.textures[int(rng.integers(len(self.textures)))] if kind == "texture" else None
        elif style in self.styles:
            kind, texture = ("texture", style) if style in TEXTURES else (style, None)
        else:
            raise BackgroundError(f"background style {style!r} is not in this mix; its styles are {self.styles}")
        if kind == "plain":
            return {"kind": "plain", "colour": _colour(rng)}
        if kind == "texture":
            assert texture is not None
            return draw_texture(rng, texture)
        assert isinstance(self.images, ImageFolderBackgrounds)
        return self.images.draw(rng)

    def image(self, record: Mapping[str, Any], size: int) -> np.ndarray:
        """The background a record describes: (size, size, 3) float32 in [0, 1]."""
        if record["kind"] == "plain":
            return np.broadcast_to(np.asarray(record["colour"], np.float32) / 255.0, (size, size, 3)).copy()
        if record["kind"] == "image":
            if not isinstance(self.images, ImageFolderBackgrounds):
                raise BackgroundError("an image background needs the Backgrounds' image folder (images=FOLDER)")
            return self.images.image(record, size)
        return texture_image(record, size)


def background_tag(background) -> str:
    """A short, stable suffix naming a background choice in cache folder names, with its leading "-"
    ("" for random plain colours, so caches made before backgrounds existed stay valid)."""
    if isinstance(background, str) and background == "random":
        return ""
    if isinstance(background, Backgrounds):
        images = background.images
        described = {"mix": dict(sorted(background.mix.items())), "textures": list(background.textures),
                     "images": None if not isinstance(images, ImageFolderBackgrounds) else
                     [str(images.folder.resolve()), images.files, images.min_fraction]}
        return "-bg-" + hashlib.sha1(json.dumps(described, sort_keys=True).encode()).hexdigest()[:8]
    return "-bg-" + "-".join(str(int(round(float(c)))) for c in background)


def parse_backgrounds(mix: str, images: str | os.PathLike | None = None) -> str | Backgrounds:
    """A background choice from a command line: ``mix`` is "plain" (a random plain colour per crop) or
    weights such as "plain=1,texture=1,images=1"; ``images`` is a folder of photos (adds "images=1" to
    the mix when the mix leaves it out)."""
    if mix == "plain" and images is None:
        return "random"
    weights: dict[str, float] = {}
    for part in (p.strip() for p in mix.split(",") if p.strip()):
        kind, _, weight = part.partition("=")
        try:
            weights[kind.strip()] = float(weight) if weight else 1.0
        except ValueError:
            raise BackgroundError(f"background mix entry {part!r} is not KIND=WEIGHT; write e.g. "
                                  f"'plain=1,texture=1' with kinds from {KINDS}") from None
    if images is not None:
        weights.setdefault("images", 1.0)
    return Backgrounds(mix=weights, images=images)
