"""Argument checks the environments share, so each constructor reports bad input the same way."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def check_int(name: str, value, minimum: int = 1, meaning: str = "", maximum: int | None = None) -> int:
    """``value`` as an int if it is an integer (not a bool) of at least ``minimum`` (and at most
    ``maximum``), else a ValueError.

    ``meaning`` (e.g. "crop side in pixels") is added to the message to say what the number counts.
    """
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum or (
            maximum is not None and value > maximum):
        need = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        need = need if maximum is None else f"an int from {minimum} to {maximum}"
        detail = f" ({meaning})" if meaning else ""
        raise ValueError(f"{name} must be {need}{detail}, got {value!r}")
    return int(value)


MAX_IMAGE_SIZE = 2048  # px: a crop side beyond this is a mistake (a 2048 px batch of 64 is already 3 GB of floats)


def check_image_size(image_size: int | None) -> None:
    """Refuse a settings file's or command line's crop side outside 16 to ``MAX_IMAGE_SIZE`` (None: the
    estimator's own size)."""
    if image_size is not None and not 16 <= image_size <= MAX_IMAGE_SIZE:
        raise ValueError(f"image_size must be a crop side in pixels, 16 to {MAX_IMAGE_SIZE}, got {image_size!r}")


def check_render_mode(render_mode: str | None, modes: Sequence[str] = ("rgb_array",)) -> str | None:
    """``render_mode`` if it is None or one of ``modes``, else a ValueError naming the choices."""
    if render_mode is not None and render_mode not in modes:
        choices = " or ".join(repr(m) for m in modes)
        raise ValueError(f"render_mode must be None or {choices}, got {render_mode!r}")
    return render_mode
