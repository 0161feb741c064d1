"""The outfit family: the default is the shipped look, random outfits are reproducible, varied and
tell front from back and left from right; subjects' betas stay in the plausible range."""

import dataclasses
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from posegen_env.body.body_model import load_body_model
from posegen_env.body.joints import JOINT_INDEX, MIRROR_JOINTS
from posegen_env.body.subjects import subject_betas
from posegen_env.data.capture import load_capture
from posegen_env.render.camera import orbit_camera
from posegen_env.render.mesh.appearance import Outfit, ProceduralAppearance
from posegen_env.render.mesh.renderer import MeshRenderer

ROOT = Path(__file__).resolve().parents[2]
# Digests of the shipped look's colours (the appearance before outfits existed) on the default body.
DEFAULT_ALBEDO_SHA1 = "cdd37353f6324b7598bc16015f4bb14050bee948"
DEFAULT_COLOUR_SHA1 = "5355b76e4da44394f2b9fe1c7a66ccb252fedf55"


@pytest.fixture(scope="module")
def body():
    return load_body_model()


@pytest.fixture(scope="module")
def vertices(body):
    """Rest vertices and the part each belongs to."""
    return body.rest_vertices(), body.lbs_weights.numpy().argmax(axis=1)


def sha1(array: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(array).tobytes()).hexdigest()


@pytest.mark.parametrize("outfit", [None, Outfit.default()])
def test_default_outfit_is_todays_look_bit_for_bit(body, vertices, outfit):
    appearance = ProceduralAppearance.for_body(body, outfit)
    assert sha1(appearance.albedo(*vertices)) == DEFAULT_ALBEDO_SHA1
    rng = np.random.default_rng(0)
    faces = rng.integers(len(body.faces), size=20000)
    bary = rng.dirichlet([1, 1, 1], size=20000)
    assert sha1(np.round(appearance.colour(faces, bary), 9)) == DEFAULT_COLOUR_SHA1


def test_random_outfits_are_deterministic_and_differ():
    assert Outfit.random(7) == Outfit.random(7) == Outfit.random(np.random.default_rng(7))
    outfits = [Outfit.random(seed) for seed in range(30)]
    assert len(set(outfits)) == 30
    assert Outfit.default() not in outfits
    for name in ("top", "bottom", "pattern", "hair_length"):
        assert len({getattr(o, name) for o in outfits}) >= 3, name
    skins = np.array([o.skin for o in outfits]).mean(axis=1)
    assert skins.min() < 0.35 and skins.max() > 0.7  # very dark to very light


def test_outfits_round_trip_through_json():
    for outfit in [Outfit.default()] + [Outfit.random(seed) for seed in range(10)]:
        assert Outfit.from_dict(json.loads(json.dumps(outfit.as_dict()))) == outfit
    data = Outfit.default().as_dict()
    with pytest.raises(ValueError, match="missing"):
        Outfit.from_dict({k: v for k, v in data.items() if k != "skin"})
    with pytest.raises(ValueError, match="top"):
        Outfit.from_dict(data | {"top": "cape"})
    with pytest.raises(ValueError, match="skirt"):
        Outfit.from_dict(data | {"top": "dress"})
    with pytest.raises(ValueError, match="RGB"):
        Outfit.from_dict(data | {"skin": [1.5, 0.0, 0.0]})


@pytest.mark.parametrize("seed", range(12))
def test_random_outfits_tell_left_from_right_and_front_from_back(body, vertices, seed):
    """Mirrored parts differ in mean colour somewhere (the watch at least), and the chest's front
    differs from its back (the logo and the back mark at least)."""
    v, part = vertices
    albedo = ProceduralAppearance.for_body(body, Outfit.random(seed)).albedo(v, part)
    sides = [np.abs(albedo[part == i].mean(axis=0) - albedo[part == m].mean(axis=0)).max()
             for i, m in enumerate(MIRROR_JOINTS) if i != m]
    assert max(sides) > 0.02
    chest = part == JOINT_INDEX["spine3"]
    front = chest & (v[:, 2] > body.rest_joints()[JOINT_INDEX["spine3"], 2])
    assert np.abs(albedo[front].mean(axis=0) - albedo[chest & ~front].mean(axis=0)).max() > 0.02


def test_each_garment_changes_the_picture(body, vertices):
    """Every choice paints something: switching it changes some colours."""
    base = Outfit.random(3)
    before = ProceduralAppearance.for_body(body, base).albedo(*vertices)
    changes = {"top": "long" if base.top != "long" else "short", "jacket": (0.1, 0.1, 0.1),
               "hair_length": "long" if base.hair_length != "long" else "short",
               "pattern": "checks" if base.pattern != "checks" else "stripes",
               "back_mark_shape": "band" if base.back_mark_shape != "band" else "square"}
    if base.top != "dress":
        changes["bottom"] = "shorts" if base.bottom != "shorts" else "trousers"
    for name, value in changes.items():
        after = ProceduralAppearance.for_body(body, dataclasses.replace(base, **{name: value})).albedo(*vertices)
        assert (after != before).any(axis=1).sum() > 20, name


def test_mesh_renderer_renders_an_outfit(body):
    cam = orbit_camera(0, 0, 3.0, width=48)
    images = [MeshRenderer(body, background=(0, 0, 0), supersample=1,
                           appearance=ProceduralAppearance.for_body(body, outfit)).render(
        np.zeros(3), np.zeros(69), None, None, [cam])[0][0] for outfit in (None, Outfit.random(1))]
    assert np.abs(images[0].astype(int) - images[1]).mean() > 5


def test_subject_betas():
    betas = subject_betas(np.random.default_rng(0), 10)
    assert betas.shape == (10,) and betas.dtype == np.float32
    assert np.array_equal(betas, subject_betas(0, 10))
    assert not np.array_equal(betas, subject_betas(1, 10))
    wide = np.stack([subject_betas(s, 10, spread=3.0) for s in range(20)])
    assert np.abs(wide).max() <= 2.0 and (np.abs(wide) == 2.0).any()
    assert not subject_betas(0, 10, spread=0.0).any()
    with pytest.raises(ValueError, match="spread"):
        subject_betas(0, spread=-1.0)


def test_capture_of_a_random_subject_records_it(tmp_path):
    out = tmp_path / "subject"
    subprocess.run([sys.executable, str(ROOT / "train" / "make_capture.py"), "--quick", "--out", str(out),
                    "--outfit-seed", "2", "--betas-seed", "2"], check=True, capture_output=True)
    capture = load_capture(out)
    assert Outfit.from_dict(capture.meta["outfit"]) == Outfit.random(2)
    assert np.allclose(capture.meta["betas"], subject_betas(2, 10))
    assert np.allclose(capture.frame_params(0)["betas"], subject_betas(2, 10))


def test_cast_picture_script(tmp_path):
    out = tmp_path / "cast.png"
    subprocess.run([sys.executable, str(ROOT / "train" / "render_outfits.py"), "--out", str(out), "--subjects", "2",
                    "--size", "32"], check=True, capture_output=True)
    assert out.is_file()
