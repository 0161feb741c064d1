"""Batched backgrounds on the device are the numpy reference's pictures, record for record, in order."""

import numpy as np
import pytest
import torch
from PIL import Image

from posegen_env.render.backgrounds import (
    TEXTURES,
    BackgroundError,
    Backgrounds,
    background_images,
)

SMOOTH = ("plain", "noise", "linear", "radial")
HARD_EDGED = ("stripes", "checker", "tiles")  # float rounding may flip a supersample lying on an edge


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


def records(bg: Backgrounds, style: str, n: int = 8) -> list[dict]:
    return [bg.draw(np.random.default_rng(k), style) for k in range(n)]


def reference(bg: Backgrounds, recs: list[dict], size: int) -> np.ndarray:
    return np.stack([bg.image(r, size) for r in recs])


@pytest.mark.parametrize("size", [16, 64])
@pytest.mark.parametrize("style", ("plain", *TEXTURES))
def test_each_kind_is_the_numpy_picture(style, size):
    bg = Backgrounds()
    recs = records(bg, style)
    made = background_images(recs, size, "cpu")
    assert made.shape == (8, size, size, 3) and made.dtype == torch.float32 and made.device.type == "cpu"
    got, want = made.numpy(), reference(bg, recs, size)
    assert got.min() >= 0.0 and got.max() <= 1.0
    if style in SMOOTH:
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    else:
        assert psnr(got, want) >= 40.0
        assert np.abs(got - want).mean() <= 1e-3


def test_mixed_records_come_back_in_order():
    bg = Backgrounds()
    recs = [bg.draw(np.random.default_rng(100 + k)) for k in range(40)]
    assert len({r["kind"] for r in recs}) > 3
    got, want = background_images(recs, 24, torch.device("cpu")).numpy(), reference(bg, recs, 24)
    assert psnr(got, want) >= 40.0
    for g, w, r in zip(got, want, recs, strict=True):
        if r["kind"] in SMOOTH:
            np.testing.assert_allclose(g, w, rtol=0, atol=1e-5)


@pytest.fixture
def smooth_photos(tmp_path):
    """Two PNGs of smooth colour gradients, one wide and one tall."""
    for name, (height, width) in {"a.png": (60, 80), "b.png": (90, 50)}.items():
        y, x = np.mgrid[0:height, 0:width] / np.array([height, width]).reshape(2, 1, 1)
        rgb = np.stack([x, y, 0.5 + 0.4 * np.sin(3 * x + 2 * y)], axis=-1)
        Image.fromarray(np.round(255 * rgb).astype(np.uint8)).save(tmp_path / name)
    return tmp_path


def test_photo_crops_match_pil_on_smooth_photos(smooth_photos):
    bg = Backgrounds(mix={"images": 1.0}, images=smooth_photos)
    recs = [bg.draw(np.random.default_rng(k)) for k in range(6)]
    assert {r["flip"] for r in recs} == {False, True}
    for size in (16, 64):
        got = background_images(recs, size, "cpu", bg)
        assert got.shape == (6, size, size, 3) and got.dtype == torch.float32
        assert psnr(got.numpy(), reference(bg, recs, size)) >= 40.0


def test_photo_records_need_the_image_folder(smooth_photos):
    bg = Backgrounds(mix={"images": 1.0}, images=smooth_photos)
    with pytest.raises(BackgroundError, match="image folder"):
        background_images([bg.draw(np.random.default_rng(0))], 16, "cpu")


def test_no_records_and_unknown_kinds():
    assert background_images([], 16, "cpu").shape == (0, 16, 16, 3)
    with pytest.raises(BackgroundError, match="unknown background kind"):
        background_images([{"kind": "plain", "colour": [1, 2, 3]}, {"kind": "marble"}], 16, "cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(smooth_photos):
    bg = Backgrounds(mix={"plain": 1.0, "texture": 3.0, "images": 1.0}, images=smooth_photos)
    recs = [bg.draw(np.random.default_rng(k)) for k in range(64)]
    for size in (16, 24, 64):  # 24: a supersample spacing that is no power of two
        on_cuda = background_images(recs, size, "cuda", bg)
        assert on_cuda.device.type == "cuda"
        np.testing.assert_allclose(on_cuda.cpu().numpy(), background_images(recs, size, "cpu", bg).numpy(),
                                   rtol=0, atol=1e-5)
