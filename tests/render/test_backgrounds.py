"""Backgrounds: textures and photo crops are reproducible records; crops are composited onto them once."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from posegen_env.data.dataset import load_dataset, write_dataset
from posegen_env.distributions import UniformCameraSampler, UniformPoseSampler
from posegen_env.render.avatar import load_avatar
from posegen_env.render.backgrounds import (
    TEXTURES,
    BackgroundError,
    Backgrounds,
    ImageFolderBackgrounds,
    draw_texture,
    texture_image,
)
from posegen_env.render.camera import person_crop_box
from posegen_env.render.crops import render_crops
from posegen_env.render.step import PoseBatch


@pytest.fixture(scope="module")
def avatar():
    return load_avatar()


@pytest.fixture
def photos(tmp_path):
    """A folder with a PNG and a JPEG of different sizes."""
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, size=(60, 90, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(rng.integers(0, 256, size=(80, 50, 3), dtype=np.uint8)).save(tmp_path / "b.JPG")
    (tmp_path / "notes.txt").write_text("not an image")
    return tmp_path


class Recording:
    """An avatar that keeps what it rendered (before render_crops composites onto a texture)."""

    def __init__(self, avatar):
        self.avatar, self.renders = avatar, []

    def pose(self, *args):
        return self.avatar.pose(*args)

    def render_posed(self, bodies, cameras, background=None):
        out = self.avatar.render_posed(bodies, cameras, background=background)
        self.renders.append((out.rgb.clone(), out.alpha.clone(), np.array(background, dtype=np.float64)))
        return out


def scene(n: int, seed: int = 0) -> tuple[dict, object]:
    return (UniformPoseSampler().sample(n, np.random.default_rng(seed)),
            UniformCameraSampler().sample(n, np.random.default_rng(seed + 1)))


def rngs(n: int) -> list[np.random.Generator]:
    return [np.random.default_rng(100 + i) for i in range(n)]


@pytest.mark.parametrize("kind", TEXTURES)
def test_each_texture_is_an_image_made_again_from_its_record(kind):
    record = draw_texture(np.random.default_rng(3), kind)
    image = texture_image(record, 40)
    assert image.shape == (40, 40, 3) and image.dtype == np.float32
    assert 0.0 <= image.min() and image.max() <= 1.0 and image.std() > 0.01
    again = draw_texture(np.random.default_rng(3), kind)
    assert again == record and np.array_equal(texture_image(json.loads(json.dumps(again)), 40), image)
    other = texture_image(draw_texture(np.random.default_rng(4), kind), 40)
    assert not np.array_equal(other, image)


def test_backgrounds_spec_draws_its_mix():
    spec = Backgrounds({"plain": 1.0, "texture": 3.0})
    records = [spec.draw(np.random.default_rng(i)) for i in range(200)]
    kinds = [r["kind"] for r in records]
    assert 20 < kinds.count("plain") < 80 and set(kinds) - {"plain"} == set(TEXTURES)
    assert records == [spec.draw(np.random.default_rng(i)) for i in range(200)]
    plain = next(r for r in records if r["kind"] == "plain")
    assert np.allclose(spec.image(plain, 8), np.asarray(plain["colour"]) / 255.0)
    assert Backgrounds({"texture": 1.0}, textures=("stripes",)).draw(np.random.default_rng(0))["kind"] == "stripes"


def test_bad_specs_say_what_to_do():
    with pytest.raises(BackgroundError, match="mix"):
        Backgrounds({"sky": 1.0})
    with pytest.raises(BackgroundError, match="mix"):
        Backgrounds({"plain": -1.0})
    with pytest.raises(BackgroundError, match="image folder"):
        Backgrounds({"images": 1.0})
    with pytest.raises(BackgroundError, match="textures"):
        Backgrounds({"texture": 1.0}, textures=("marble",))


def test_image_folder_crops(photos):
    folder = ImageFolderBackgrounds(photos)
    assert folder.files == ["a.png", "b.JPG"]
    records = [folder.draw(np.random.default_rng(i)) for i in range(40)]
    assert {r["file"] for r in records} == {"a.png", "b.JPG"}
    for r in records:
        x, y, side = r["box"]
        width, height = folder.sizes[folder.files.index(r["file"])]
        assert 0 <= x and x + side <= width and 0 <= y and y + side <= height and side >= 1
    image = folder.image(records[0], 24)
    assert image.shape == (24, 24, 3) and image.dtype == np.float32 and 0 <= image.min() and image.max() <= 1
    assert np.array_equal(image, ImageFolderBackgrounds(photos).image(records[0], 24))
    spec = Backgrounds({"images": 1.0}, images=photos)
    drawn = spec.draw(np.random.default_rng(0))
    assert drawn["kind"] == "image" and drawn == spec.draw(np.random.default_rng(0))
    assert np.array_equal(spec.image(drawn, 16), folder.image(drawn, 16))
    full = {"kind": "image", "file": "a.png", "box": [0, 0, 60], "flip": True}
    expected = np.asarray(Image.open(photos / "a.png").convert("RGB"), np.float32)[:, :60][:, ::-1] / 255.0
    assert np.allclose(folder.image(full, 60), expected, atol=1e-6)


def test_empty_missing_or_unreadable_folders_are_named(tmp_path):
    with pytest.raises(BackgroundError, match=f"{tmp_path}.*no PNG or JPEG"):
        ImageFolderBackgrounds(tmp_path)
    with pytest.raises(BackgroundError, match="does not exist"):
        ImageFolderBackgrounds(tmp_path / "missing")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(BackgroundError, match="broken.png.*remove or replace"):
        ImageFolderBackgrounds(tmp_path)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any folder")
def test_unlistable_folder_is_named(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0)
    try:
        with pytest.raises(BackgroundError, match="locked"):
            ImageFolderBackgrounds(locked)
    finally:
        locked.chmod(0o755)


def test_textured_crops_are_the_avatar_over_its_texture_with_its_alpha(avatar):
    """Rendered on black, then + (1 - alpha) x texture: where the avatar's alpha is 0 the crop is
    the texture; plain crops of the spec are rendered on their colour directly."""
    n = 4
    poses, cameras = scene(n)
    spec = Backgrounds({"plain": 1.0, "texture": 1.0})
    recording = Recording(avatar)
    batch = render_crops(recording, poses, cameras, crop_size=32, background=spec, rng=rngs(n))
    (rgb, alpha, colours), = recording.renders
    records = [json.loads(r) for r in batch.background]
    assert {r["kind"] for r in records} - {"plain"} and any(r["kind"] == "plain" for r in records)
    for k, record in enumerate(records):
        if record["kind"] == "plain":
            assert np.array_equal(colours[k], record["colour"])
            assert np.array_equal(batch.images[k], (np.clip(rgb[k].numpy(), 0, 1) * 255 + 0.5).astype(np.uint8))
            continue
        assert not colours[k].any()
        texture = spec.image(record, 32)
        expected = rgb[k].numpy() + (1 - alpha[k].numpy())[..., None] * texture
        assert np.array_equal(batch.images[k], (np.clip(expected, 0, 1) * 255 + 0.5).astype(np.uint8))
        empty = alpha[k].numpy() == 0
        assert empty.sum() > 100
        assert np.array_equal(batch.images[k][empty], (texture[empty] * 255 + 0.5).astype(np.uint8))


def test_crops_with_a_spec_draw_after_their_jitter_and_keep_the_crops(avatar):
    """The spec's draws follow each crop's jitter, so the crops (cameras, labels) are those of a
    plain render with the same generators, and a crop does not depend on its batch."""
    n = 3
    poses, cameras = scene(n, seed=5)
    spec = Backgrounds({"texture": 1.0})
    textured = render_crops(avatar, poses, cameras, crop_size=24, background=spec, rng=rngs(n))
    plain = render_crops(avatar, poses, cameras, crop_size=24, background=(0, 0, 0), rng=rngs(n))
    for name in ("K", "R", "t", "joints2d", "joints3d"):
        assert np.array_equal(getattr(textured, name), getattr(plain, name)), name
    for i, record in enumerate(textured.background):
        rng = rngs(n)[i]
        person_crop_box(np.zeros((2, 2)), jitter=0.05, rng=rng)
        assert json.loads(record) == json.loads(json.dumps(spec.draw(rng)))
        one = {k: v[i:i + 1] for k, v in poses.items()}
        alone = render_crops(avatar, one, cameras[i:i + 1], crop_size=24, background=spec, rng=[rngs(n)[i]])
        assert np.array_equal(alone.images[0], textured.images[i])


def test_plain_backgrounds_are_recorded_and_unchanged(avatar):
    """"random" draws a colour from each crop's generator after its jitter, as before; a triple is
    used as given; both are recorded as plain backgrounds."""
    n = 3
    poses, cameras = scene(n, seed=8)
    recording = Recording(avatar)
    batch = render_crops(recording, poses, cameras, crop_size=24, rng=rngs(n))
    (rgb, _, colours), = recording.renders
    for i, record in enumerate(batch.background):
        rng = rngs(n)[i]
        person_crop_box(np.zeros((2, 2)), jitter=0.05, rng=rng)
        colour = rng.uniform(0.0, 255.0, size=3)
        assert np.array_equal(colours[i], colour)
        assert json.loads(record) == {"kind": "plain", "colour": colour.tolist()}
    assert np.array_equal(batch.images, (np.clip(rgb.numpy(), 0, 1) * 255 + 0.5).astype(np.uint8))
    white = render_crops(avatar, poses, cameras, crop_size=24, background=(255, 255, 255), rng=rngs(n))
    assert [json.loads(r) for r in white.background] == [{"kind": "plain", "colour": [255.0, 255.0, 255.0]}] * n


def test_pose_batches_with_and_without_backgrounds(avatar, tmp_path):
    n = 2
    poses, cameras = scene(n, seed=11)
    batch = render_crops(avatar, poses, cameras, crop_size=16, background=Backgrounds(), rng=rngs(n))
    assert batch.select([1]).background[0] == batch.background[1]
    assert list(PoseBatch.concat([batch, batch]).background) == list(batch.background) * 2
    bare = PoseBatch(*(getattr(batch, name) for name in ("images", "joints3d", "joints2d", "visible", "pose",
                                                         "betas", "K", "R", "t")))
    assert bare.background is None and bare.select([0]).background is None
    assert PoseBatch.concat([bare, batch]).background is None
    write_dataset(tmp_path / "ds", batch, meta={"source": "test"})
    assert len(load_dataset(tmp_path / "ds")) == n


def test_command_line_mixes_styles_and_cache_tags(photos):
    from posegen_env.render.backgrounds import PLAIN, as_backgrounds, background_tag, parse_backgrounds

    assert parse_backgrounds("plain") == as_backgrounds("random") == PLAIN and background_tag("random") == ""
    assert background_tag(PLAIN) == "" and background_tag((0, 0, 0)) == background_tag(as_backgrounds((0, 0, 0)))
    with pytest.raises(BackgroundError, match="plain alone"):
        Backgrounds(mix={"plain": 1, "texture": 1}, colour=(1, 2, 3))
    mix = parse_backgrounds("plain=1,texture=3")
    assert isinstance(mix, Backgrounds) and mix.mix == {"plain": 1.0, "texture": 3.0}
    assert mix.styles == ("plain", *TEXTURES)
    with_photos = parse_backgrounds("texture", photos)
    assert with_photos.mix == {"texture": 1.0, "images": 1.0} and with_photos.styles[-1] == "images"
    tags = {background_tag(b) for b in (mix, with_photos, parse_backgrounds("plain=1,texture=2"), (0, 0, 0))}
    assert len(tags) == 4 and background_tag(parse_backgrounds("texture=1,plain=1")) == background_tag(
        parse_backgrounds("plain=1,texture=1"))  # the order of the kinds does not matter
    with pytest.raises(BackgroundError, match="KIND=WEIGHT"):
        parse_backgrounds("plain=lots")
    rng = np.random.default_rng(0)
    assert mix.draw(rng, "stripes")["kind"] == "stripes" and mix.draw(rng, "plain")["kind"] == "plain"
    with pytest.raises(BackgroundError, match="not in this mix"):
        mix.draw(rng, "images")
