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

``Backgrounds.image`` makes one record's image with numpy; it is the reference. ``background_images``
makes a batch's images on the device (torch, one computation per kind) with the same pictures, so
rendering on a GPU does not wait on a per-crop CPU loop.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

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


# The batched twins of the texture fields above: the same float64 arithmetic in the same order, on
# (records, rows, columns) tensors, so each sample is the one numpy computes (up to the last bit of
# libm/CUDA functions such as hypot, and a sample exactly on a hard edge). Per-record parameters are
# (records, 1, 1) tensors; u is (1, 1, columns) and v (1, rows, 1), broadcast together.


def _per_record(values: Sequence[float] | np.ndarray, like: torch.Tensor) -> torch.Tensor:
    """One float64 value per record, shaped to broadcast over rows and columns."""
    return torch.as_tensor(np.asarray(values, np.float64), device=like.device).view(-1, 1, 1)


def _rotated_batch(records: Sequence[Mapping[str, Any]], u: torch.Tensor,
                   v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    # cos and sin are taken by numpy, one record at a time as in _rotated, so they are the same numbers
    c = _per_record([np.cos(r["angle"]) for r in records], u)
    s = _per_record([np.sin(r["angle"]) for r in records], u)
    x, y = u - 0.5, v - 0.5
    return c * x + s * y, -s * x + c * y


def _noise_batch(records: Sequence[Mapping[str, Any]], u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    octaves = [int(r["octaves"]) for r in records]
    cells = [int(r["cells"]) for r in records]
    side = max(c * 2 ** (k - 1) for c, k in zip(cells, octaves, strict=True)) + 1
    lattices = np.zeros((len(records), max(octaves), side, side))  # zero-padded; unused octaves weigh 0
    for i, record in enumerate(records):  # the same generator calls as _noise, in the same order
        rng = np.random.default_rng(record["seed"])
        for k in range(octaves[i]):
            n = cells[i] * 2**k + 1
            lattices[i, k, :n, :n] = rng.uniform(0.0, 1.0, size=(n, n))
    lattice = torch.as_tensor(lattices, device=u.device)
    t = torch.zeros((), dtype=torch.float64, device=u.device)
    for k in range(lattice.shape[1]):
        present = np.array(octaves) > k
        cells_k = np.where(present, np.array(cells) * 2**k, 1)  # 1: any valid lattice for absent octaves
        t = t + _per_record(np.where(present, 0.5**k, 0.0), u) * _value_noise_batch(
            lattice[:, k], _per_record(cells_k, u), u, v)
    total = _per_record([sum(0.5**k for k in range(n)) for n in octaves], u)
    t = t / total
    return torch.clamp(0.5 + 1.6 * (t - 0.5), 0.0, 1.0)


def _value_noise_batch(lattice: torch.Tensor, cells: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``_value_noise`` of each record's (side, side) lattice. Each lattice row is first interpolated across
    the columns, then rows are picked for each sample: the same sums as ``_value_noise``, sample for
    sample, but gathered from (records, side, columns) arrays rather than four lattice values per sample."""
    gx, gy = u * cells, v * cells
    last = cells.long() - 1
    ix, iy = torch.minimum(gx.long(), last), torch.minimum(gy.long(), last)
    fx, fy = gx - ix, gy - iy
    wx, wy = fx * fx * (3 - 2 * fx), fy * fy * (3 - 2 * fy)
    left = torch.gather(lattice, 2, ix.expand(-1, lattice.shape[1], -1))  # lattice[b, j, ix[c]]
    right = torch.gather(lattice, 2, (ix + 1).expand(-1, lattice.shape[1], -1))
    across = left + wx * (right - left)
    top = torch.gather(across, 1, iy.expand(-1, -1, across.shape[2]))  # across[b, iy[r], c]
    bottom = torch.gather(across, 1, (iy + 1).expand(-1, -1, across.shape[2]))
    return top + wy * (bottom - top)


def _linear_batch(records: Sequence[Mapping[str, Any]], u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    a, _ = _rotated_batch(records, u, v)
    extent = _per_record([abs(np.cos(r["angle"])) + abs(np.sin(r["angle"])) for r in records], u)
    return torch.clamp(0.5 + a / extent, 0.0, 1.0)


def _radial_batch(records: Sequence[Mapping[str, Any]], u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    cx, cy = (_per_record([r["centre"][i] for r in records], u) for i in range(2))
    return torch.clamp(torch.hypot(u - cx, v - cy) / _per_record([r["radius"] for r in records], u), 0.0, 1.0)


def _stripes_batch(records: Sequence[Mapping[str, Any]], u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    a, _ = _rotated_batch(records, u, v)
    period, phase, duty = (_per_record([r[key] for r in records], u) for key in ("period", "phase", "duty"))
    return (torch.remainder(a / period + phase, 1.0) < duty).double()


def _checker_batch(records: Sequence[Mapping[str, Any]], u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    a, b = _rotated_batch(records, u, v)
    period = _per_record([r["period"] for r in records], u)
    px, py = (_per_record([r["phase"][i] for r in records], u) for i in range(2))
    cells = torch.floor(a / period + px) + torch.floor(b / period + py)
    return torch.remainder(cells, 2)


def _tiles_batch(records: Sequence[Mapping[str, Any]], u: torch.Tensor, v: torch.Tensor,
                 tile: torch.Tensor, joint: torch.Tensor) -> torch.Tensor:
    """``_tiles`` of each record, channels first; ``tile`` and ``joint`` are (records, 3, 1, 1) colours."""
    period = _per_record([r["period"] for r in records], u)
    a, b = (c / period for c in _rotated_batch(records, u, v))
    shades = np.stack([np.random.default_rng(r["seed"]).uniform(-1.0, 1.0, size=(64, 64)) * r["variation"]
                       for r in records])  # as in _tiles
    shade = torch.as_tensor(shades.reshape(len(records), 64 * 64), device=u.device)
    ia, ib = torch.remainder(torch.floor(a).long(), 64), torch.remainder(torch.floor(b).long(), 64)
    shade_of_tile = torch.gather(shade, 1, (ia * 64 + ib).view(len(records), -1)).view(a.shape)
    half = _per_record([r["grout"] for r in records], u) / 2
    grout = (torch.abs(a - torch.round(a)) < half) | (torch.abs(b - torch.round(b)) < half)
    rgb = tile * (1.0 + shade_of_tile)[:, None]
    return torch.where(grout[:, None], joint, rgb)


_BatchedField = Callable[[Sequence[Mapping[str, Any]], torch.Tensor, torch.Tensor], torch.Tensor]
_TEXTURE_FIELDS_BATCHED: dict[str, _BatchedField] = {
    "noise": _noise_batch, "linear": _linear_batch, "radial": _radial_batch, "stripes": _stripes_batch,
    "checker": _checker_batch}


def _texture_images(records: Sequence[Mapping[str, Any]], size: int, device: torch.device) -> torch.Tensor:
    """Textures of one kind, made together: ``texture_image`` of each record, stacked, as float32."""
    n = size * _SUPERSAMPLE
    # by numpy, as in texture_image: CUDA divides by a scalar as times its reciprocal, which can miss by a bit
    samples = torch.as_tensor((np.arange(n) + 0.5) / n, device=device)
    u, v = samples.view(1, 1, n), samples.view(1, n, 1)  # columns, rows
    colours = torch.as_tensor(np.array([r["colours"] for r in records], np.float64) / 255.0, device=device)
    first, second = colours[:, 0].view(-1, 3, 1, 1), colours[:, 1].view(-1, 3, 1, 1)
    kind = records[0]["kind"]
    if kind == "tiles":
        rgb = _tiles_batch(records, u, v, first, second)
    else:
        t = _TEXTURE_FIELDS_BATCHED[kind](records, u, v)
        rgb = first + t[:, None] * (second - first)
    # channels first (records, 3, rows, columns): rows of samples stay contiguous, so this runs fast on a CPU too
    rgb = F.avg_pool2d(rgb, _SUPERSAMPLE)
    return torch.clamp(rgb, 0.0, 1.0).float().permute(0, 2, 3, 1)


def background_images(records: Sequence[Mapping[str, Any]], size: int, device: torch.device | str,
                      backgrounds: Backgrounds | None = None) -> torch.Tensor:
    """The backgrounds the records describe, made on ``device``: (len(records), size, size, 3) float32 in [0, 1].

    The same pictures as ``Backgrounds.image`` of each record (photo crops to within resampling), but
    each kind is made in one batched computation, so a batch's backgrounds cost a few device calls
    rather than a numpy loop. ``backgrounds`` (its image folder) is needed only for "image" records.
    """
    device = torch.device(device)
    indices_by_kind: dict[str, list[int]] = {}
    for i, record in enumerate(records):
        indices_by_kind.setdefault(record["kind"], []).append(i)
    unknown = set(indices_by_kind) - {"plain", "image", *TEXTURES}
    if unknown:
        raise BackgroundError(f"unknown background kinds {sorted(unknown)}; records are made by Backgrounds.draw "
                              f"(kinds 'plain', 'image' and {TEXTURES})")
    images = backgrounds.images if backgrounds is not None else None
    if "image" in indices_by_kind and not isinstance(images, ImageFolderBackgrounds):
        raise BackgroundError("an image background needs the Backgrounds' image folder (images=FOLDER)")
    out = torch.empty((len(records), size, size, 3), dtype=torch.float32, device=device)
    for kind, indices in indices_by_kind.items():
        group = [records[i] for i in indices]
        if kind == "plain":
            # divided by numpy, as in Backgrounds.image: CUDA divides by a scalar as times its reciprocal
            colours = torch.as_tensor(np.array([r["colour"] for r in group], np.float32) / 255.0, device=device)
            made = colours.view(-1, 1, 1, 3).expand(-1, size, size, 3)
        elif kind == "image":
            assert isinstance(images, ImageFolderBackgrounds)
            made = images.crops(group, size, device)
        else:
            made = _texture_images(group, size, device)
        out[torch.as_tensor(indices, device=device)] = made
    return out


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
        self._device_cache: dict[torch.device, dict[str, torch.Tensor]] = {}

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

    def crops(self, records: Sequence[Mapping[str, Any]], size: int, device: torch.device | str) -> torch.Tensor:
        """The crops ``draw`` records describe, made on ``device``: (len(records), size, size, 3) float32 in [0, 1].

        Antialiased bilinear resampling in float, where ``image`` uses PIL's (8-bit, and a box reduction
        first for 4x and more): both average the photo under a small filter, so on smooth photos they
        agree to well within a grey level (>= 40 dB PSNR); on fine detail the filters blur differently.
        """
        device = torch.device(device)
        out = torch.empty((len(records), size, size, 3), dtype=torch.float32, device=device)
        for i, record in enumerate(records):
            x, y, side = record["box"]
            patch = self._device_photo(record["file"], device)[y:y + side, x:x + side]
            patch = patch.permute(2, 0, 1)[None].float()
            crop = F.interpolate(patch, size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]
            crop = torch.clamp(crop / 255.0, 0.0, 1.0)
            out[i] = (crop.flip(-1) if record["flip"] else crop).permute(1, 2, 0)
        return out

    def _device_photo(self, name: str, device: torch.device) -> torch.Tensor:
        """A photo as an (height, width, 3) uint8 tensor kept on ``device``, so it is decoded and uploaded once."""
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())  # "cuda" and "cuda:0" share a cache
        cache = self._device_cache.setdefault(device, {})
        if name not in cache:
            if len(cache) >= _CACHED_IMAGES:
                cache.pop(next(iter(cache)))
            photo = self._cache[name] if name in self._cache else _read_image(self.folder, name)
            cache[name] = torch.tensor(photo, dtype=torch.uint8, device=device)
        return cache[name]

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
    (an ``ImageFolderBackgrounds`` or its folder), which that kind needs. ``colour`` (RGB in 0-255)
    makes every plain crop that one colour. Plain colours alone (``PLAIN``) draw no kind, so they
    draw exactly what "random" drew before it was a mix.
    """

    mix: Mapping[str, float] = field(default_factory=_default_mix)
    textures: tuple[str, ...] = TEXTURES
    images: ImageFolderBackgrounds | str | os.PathLike | None = None
    colour: tuple[float, float, float] | None = None

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
        if self.colour is not None:
            object.__setattr__(self, "colour", _rgb(self.colour))
            if set(self.mix) != {"plain"}:
                raise BackgroundError(f"a fixed colour is a plain background; its mix must be plain alone, got "
                                      f"{dict(self.mix)!r}")

    @functools.cached_property
    def _kind_cdf(self) -> list[float]:
        """The mix's cumulative weights as ``Generator.choice(p=...)`` forms them: a bisection of one
        ``random()`` draw picks the kind it picks, from the same stream, several times faster."""
        weights = np.array([self.mix[k] for k in self.mix])
        cdf = (weights / weights.sum()).cumsum()
        return (cdf / cdf[-1]).tolist()

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
            kind = "plain" if kinds == ["plain"] else kinds[bisect.bisect_right(self._kind_cdf, rng.random())]
            texture = self.textures[int(rng.integers(len(self.textures)))] if kind == "texture" else None
        elif style in self.styles:
            kind, texture = ("texture", style) if style in TEXTURES else (style, None)
        else:
            raise BackgroundError(f"background style {style!r} is not in this mix; its styles are {self.styles}")
        if kind == "plain":
            return {"kind": "plain", "colour": list(self.colour) if self.colour is not None else _colour(rng)}
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


PLAIN = Backgrounds(mix={"plain": 1.0})  # a random plain colour per crop ("random")


def as_backgrounds(background) -> Backgrounds:
    """The one background type the renderers take, from what users pass: a ``Backgrounds`` spec,
    "random" (a random plain colour per crop) or one RGB triple in 0-255."""
    if isinstance(background, Backgrounds):
        return background
    if isinstance(background, str) and background == "random":
        return PLAIN
    if isinstance(background, str):
        raise BackgroundError(f'background must be an RGB triple in 0-255, "random" or a Backgrounds spec, got '
                              f"{background!r}")
    return Backgrounds(mix={"plain": 1.0}, colour=background)


def _rgb(colour) -> tuple[float, float, float]:
    """``colour`` as three floats in 0-255 (one outside that range would be clipped without a word)."""
    try:
        rgb = np.asarray(colour, dtype=np.float64)
    except (TypeError, ValueError):
        rgb = np.zeros(0)
    if rgb.shape != (3,) or not np.isfinite(rgb).all() or (rgb < 0).any() or (rgb > 255).any():
        raise BackgroundError(f'background must be an RGB triple in 0-255, "random" or a Backgrounds spec, got '
                              f"{colour!r}")
    return (float(rgb[0]), float(rgb[1]), float(rgb[2]))


def background_tag(background) -> str:
    """A short, stable suffix naming a background choice in cache folder names, with its leading "-"
    ("" for random plain colours, so caches made before backgrounds existed stay valid)."""
    background = as_backgrounds(background)
    if background.colour is not None:
        return "-bg-" + "-".join(str(int(round(c))) for c in background.colour)
    if set(background.mix) == {"plain"}:
        return ""
    images = background.images
    described = {"mix": dict(sorted(background.mix.items())), "textures": list(background.textures),
                 "images": None if not isinstance(images, ImageFolderBackgrounds) else
                 [str(images.folder.resolve()), images.files, images.min_fraction]}
    return "-bg-" + hashlib.sha1(json.dumps(described, sort_keys=True).encode()).hexdigest()[:8]


def parse_backgrounds(mix: str, images: str | os.PathLike | None = None) -> Backgrounds:
    """A background choice from a command line: ``mix`` is "plain" (a random plain colour per crop) or
    weights such as "plain=1,texture=1,images=1"; ``images`` is a folder of photos (adds "images=1" to
    the mix when the mix leaves it out)."""
    if mix == "plain" and images is None:
        return PLAIN
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
