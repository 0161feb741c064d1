"""Body shapes of a cast of subjects.

The shipped body's betas are a PCA over Anny's phenotypes (sex, age, weight, height,
proportions) scaled so ``betas ~ N(0, 1)``; a real SMPL model's are distributed alike. A
subject's build is therefore a draw from that normal, kept inside the range where the linear
shape space still gives plausible people.
"""

from __future__ import annotations

import numpy as np

BETAS_LIMIT = 2.0


def subject_betas(rng: int | np.random.Generator, num_betas: int = 10, spread: float = 1.0,
                  limit: float = BETAS_LIMIT) -> np.ndarray:
    """One subject's betas (num_betas,) float32: N(0, spread^2) per component, clipped to +-``limit``.

    ``spread`` < 1 keeps the cast near the mean shape; 0 is the mean shape itself.
    """
    if spread < 0 or limit < 0:
        raise ValueError(f"spread and limit must be >= 0, got spread={spread!r}, limit={limit!r}")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    return np.clip(rng.standard_normal(num_betas) * spread, -limit, limit).astype(np.float32)
