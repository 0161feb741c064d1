"""Image grids: the quickest way for a person to check renders, captures and samples."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from posegen_env.files import atomic_write


def image_grid(images: np.ndarray, columns: int, labels: list[str] | None = None, pad: int = 2) -> Image.Image:
    """Tile uint8 images (N, H, W, 3) row by row, with an optional caption under each."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"image_grid needs uint8 images of shape (N, H, W, 3), got {images.dtype} {images.shape}")
    n, h, w, _ = images.shape
    columns = max(1, min(columns, n))
    rows = -(-n // columns)
    caption = 12 if labels else 0
    canvas = Image.new("RGB", (columns * (w + pad) + pad, rows * (h + pad + caption) + pad), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for i, img in enumerate(images):
        x = pad + (i % columns) * (w + pad)
        y = pad + (i // columns) * (h + pad + caption)
        canvas.paste(Image.fromarray(img), (x, y))
        if labels:
            draw.text((x + 2, y + h), labels[i][: max(1, w // 6)], fill=(0, 0, 0))
    return canvas


def save_image_grid(path: str | os.PathLike, images: np.ndarray, columns: int, labels: list[str] | None = None) -> Path:
    """Write a grid PNG atomically (a half-written picture is never left behind)."""
    grid = image_grid(images, columns, labels)
    return atomic_write(path, lambda tmp: grid.save(tmp, format="PNG"))
