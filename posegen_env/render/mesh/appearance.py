"""Procedural clothing and skin for the ground-truth renderer: a family of outfits.

Colour is a function of a surface point's *canonical* position (the mean-shape T-pose) and
of the body part it belongs to (its dominant skinning joint), so it moves with the body like
a texture and works on any SMPL-topology or PoseGen body without UV maps.

An ``Outfit`` describes one subject's look: skin tone, hair colour and length, a top
(sleeveless, short or long sleeves, or a dress) with a pattern, an optional open jacket,
a bottom (shorts, knee length, trousers or a skirt) and shoes. ``Outfit.default()`` is the
shipped subject: a striped shirt with differently coloured sleeves, jeans with a patch on the
right knee and a back pocket on the left. ``Outfit.random(seed)`` draws another from realistic
clothing palettes. Every outfit keeps a chest logo on the left, a mark on the back and a watch
on the left wrist, so front/back and left/right differ in every view.

Shading is baked in canonical space (a fixed light in the body's frame): a surface point
always has the same colour, whatever the pose or view. That keeps the captures consistent
across views, which is what a human NeRF assumes when it is fitted on them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from posegen_env.body.joints import JOINT_INDEX

SKIN = np.array([0.87, 0.67, 0.54])
HAIR = np.array([0.23, 0.15, 0.09])
SHIRT = np.array([0.80, 0.20, 0.18])
SHIRT_STRIPE = np.array([0.95, 0.93, 0.88])
LEFT_SLEEVE = np.array([0.20, 0.45, 0.75])
RIGHT_SLEEVE = np.array([0.95, 0.78, 0.20])
LOGO = np.array([0.10, 0.55, 0.30])
BACK_MARK = np.array([0.12, 0.12, 0.15])
JEANS = np.array([0.16, 0.25, 0.48])
POCKET = np.array([0.75, 0.55, 0.25])
KNEE_PATCH = np.array([0.45, 0.35, 0.25])
BELT = np.array([0.30, 0.18, 0.10])
SHOE = np.array([0.15, 0.15, 0.17])
SOLE = np.array([0.92, 0.92, 0.92])
WATCH = np.array([0.05, 0.05, 0.05])
EYE = np.array([0.10, 0.08, 0.08])
LIPS = np.array([0.70, 0.30, 0.30])

_LIGHT = np.array([0.35, 0.55, 0.75]) / np.linalg.norm([0.35, 0.55, 0.75])  # front, above, slightly left

Colour = tuple[float, float, float]

TOPS = ("sleeveless", "short", "long", "dress")
BOTTOMS = ("shorts", "knee", "trousers", "mini_skirt", "skirt", "long_skirt")
SKIRTS = ("mini_skirt", "skirt", "long_skirt")
PATTERNS = ("solid", "stripes", "checks", "logo")
BACK_MARKS = ("cross", "band", "square")
HAIR_LENGTHS = ("short", "medium", "long")

# Albedos from very light to very dark skin (a Fitzpatrick-like range); a tone is drawn between them.
SKIN_TONES = np.array([
    [0.96, 0.84, 0.76], [0.93, 0.77, 0.66], [0.87, 0.67, 0.54], [0.78, 0.58, 0.44],
    [0.67, 0.48, 0.34], [0.55, 0.37, 0.25], [0.42, 0.27, 0.18], [0.30, 0.19, 0.13], [0.20, 0.13, 0.09],
])
HAIR_COLOURS = {  # name: (albedo, how common)
    "black": ((0.06, 0.05, 0.05), 0.32), "dark_brown": ((0.16, 0.10, 0.06), 0.24),
    "brown": ((0.30, 0.19, 0.11), 0.14), "light_brown": ((0.48, 0.34, 0.21), 0.09),
    "blond": ((0.78, 0.64, 0.40), 0.09), "red": ((0.55, 0.24, 0.11), 0.05), "grey": ((0.62, 0.61, 0.60), 0.07),
}
# Clothing palettes: the colours garments are commonly made in.
TOP_PALETTE = (
    (0.95, 0.95, 0.93), (0.90, 0.87, 0.80), (0.08, 0.08, 0.09), (0.55, 0.56, 0.58), (0.30, 0.31, 0.33),
    (0.12, 0.16, 0.32), (0.55, 0.68, 0.85), (0.20, 0.35, 0.70), (0.75, 0.15, 0.16), (0.45, 0.10, 0.16),
    (0.33, 0.37, 0.20), (0.15, 0.35, 0.22), (0.10, 0.45, 0.45), (0.85, 0.65, 0.15), (0.90, 0.45, 0.15),
    (0.92, 0.62, 0.68), (0.65, 0.55, 0.80), (0.40, 0.20, 0.45), (0.95, 0.85, 0.35), (0.45, 0.75, 0.60),
)
BOTTOM_PALETTE = (
    (0.16, 0.25, 0.48), (0.30, 0.42, 0.62), (0.10, 0.14, 0.26), (0.07, 0.07, 0.08), (0.30, 0.30, 0.32),
    (0.55, 0.55, 0.56), (0.72, 0.62, 0.45), (0.85, 0.80, 0.68), (0.35, 0.36, 0.22), (0.35, 0.23, 0.15),
    (0.92, 0.91, 0.88), (0.45, 0.12, 0.15),
)
JACKET_PALETTE = (
    (0.07, 0.07, 0.08), (0.12, 0.16, 0.30), (0.32, 0.45, 0.65), (0.35, 0.36, 0.22), (0.50, 0.35, 0.22),
    (0.72, 0.62, 0.45), (0.40, 0.40, 0.42), (0.55, 0.12, 0.14), (0.85, 0.82, 0.75), (0.18, 0.30, 0.22),
)
SHOE_PALETTE = ((0.08, 0.08, 0.09), (0.92, 0.92, 0.92), (0.30, 0.18, 0.10), (0.45, 0.45, 0.47),
                (0.12, 0.16, 0.32), (0.65, 0.12, 0.14))
SOLE_PALETTE = ((0.92, 0.92, 0.92), (0.08, 0.08, 0.08), (0.62, 0.45, 0.25))
BELT_PALETTE = ((0.30, 0.18, 0.10), (0.06, 0.06, 0.06), (0.55, 0.38, 0.22))
WATCH_PALETTE = ((0.05, 0.05, 0.05), (0.75, 0.75, 0.78), (0.80, 0.65, 0.30), (0.35, 0.22, 0.12))
EYE_COLOURS = ((0.10, 0.08, 0.08), (0.16, 0.10, 0.06), (0.20, 0.25, 0.30))


@dataclass(frozen=True)
class Outfit:
    """One subject's look. Colours are RGB albedos in [0, 1]; ``None`` leaves a detail out.

    ``pattern`` is painted on the top (or dress) in ``pattern_colour`` at period
    ``pattern_scale`` (metres); a sleeve in the top's own colour carries it too. A dress is one
    garment from the chest down to its skirt, so it takes a skirt as ``bottom``. The watch is a
    band just before the left wrist joint: on the forearm (over a sleeve) with
    ``watch_on_forearm``, else only on the hand's part of the mesh, where a body whose forearm
    reaches the wrist shows none.
    """

    skin: Colour
    hair: Colour
    hair_length: str
    top: str
    top_colour: Colour
    pattern: str
    pattern_colour: Colour
    pattern_scale: float
    left_sleeve: Colour
    right_sleeve: Colour
    jacket: Colour | None
    bottom: str
    bottom_colour: Colour
    belt: Colour | None
    pocket: Colour | None
    knee_patch: Colour | None
    logo: Colour
    back_mark: Colour
    back_mark_shape: str
    shoes: Colour
    soles: Colour
    watch: Colour
    watch_on_forearm: bool
    eyes: Colour
    lips: Colour

    def __post_init__(self) -> None:
        for name, allowed in (("hair_length", HAIR_LENGTHS), ("top", TOPS), ("pattern", PATTERNS),
                              ("bottom", BOTTOMS), ("back_mark_shape", BACK_MARKS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"Outfit.{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.top == "dress" and self.bottom not in SKIRTS:
            raise ValueError(f"a dress goes down to a skirt: bottom must be one of {SKIRTS}, got {self.bottom!r}")
        if not self.pattern_scale > 0:
            raise ValueError(f"Outfit.pattern_scale must be positive (metres), got {self.pattern_scale!r}")
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name not in _CHOICES and f.name not in ("pattern_scale", "watch_on_forearm") and value is not None:
                _check_colour(f.name, value)

    @classmethod
    def default(cls) -> Outfit:
        """The shipped subject, whom the default capture and avatar show."""
        c = _as_colour
        return cls(skin=c(SKIN), hair=c(HAIR), hair_length="short", top="short", top_colour=c(SHIRT),
                   pattern="stripes", pattern_colour=c(SHIRT_STRIPE), pattern_scale=0.045,
                   left_sleeve=c(LEFT_SLEEVE), right_sleeve=c(RIGHT_SLEEVE), jacket=None, bottom="trousers",
                   bottom_colour=c(JEANS), belt=c(BELT), pocket=c(POCKET), knee_patch=c(KNEE_PATCH), logo=c(LOGO),
                   back_mark=c(BACK_MARK), back_mark_shape="cross", shoes=c(SHOE), soles=c(SOLE), watch=c(WATCH),
                   watch_on_forearm=False, eyes=c(EYE), lips=c(LIPS))

    @classmethod
    def random(cls, seed_or_rng: int | np.random.Generator) -> Outfit:
        """A subject drawn from the clothing palettes; the same seed gives the same outfit."""
        rng = seed_or_rng if isinstance(seed_or_rng, np.random.Generator) else np.random.default_rng(seed_or_rng)
        skin = _skin_tone(rng)
        top = str(rng.choice(TOPS, p=[0.15, 0.35, 0.3, 0.2]))
        bottom = str(rng.choice(SKIRTS) if top == "dress" else
                     rng.choice(BOTTOMS, p=[0.18, 0.12, 0.5, 0.05, 0.1, 0.05]))
        top_colour = _pick(rng, TOP_PALETTE, skin)
        bottom_colour = top_colour if top == "dress" else _pick(rng, BOTTOM_PALETTE, top_colour, skin)
        left_sleeve, right_sleeve = _sleeves(rng, top, top_colour)
        knee_patch = (_pick(rng, BOTTOM_PALETTE, bottom_colour)
                      if bottom in ("knee", "trousers", "long_skirt") and rng.random() < 0.3 else None)
        one_sided = left_sleeve != right_sleeve or knee_patch is not None
        wants_pocket = rng.random() < 0.5 or not one_sided  # some detail besides the watch tells left from right
        return cls(
            skin=skin, hair=_hair_colour(rng), hair_length=str(rng.choice(HAIR_LENGTHS, p=[0.45, 0.25, 0.3])),
            top=top, top_colour=top_colour, pattern=str(rng.choice(PATTERNS, p=[0.4, 0.25, 0.2, 0.15])),
            pattern_colour=_pick(rng, TOP_PALETTE, top_colour), pattern_scale=round(float(rng.uniform(0.03, 0.08)), 4),
            left_sleeve=left_sleeve, right_sleeve=right_sleeve,
            jacket=_pick(rng, JACKET_PALETTE, top_colour, bottom_colour, skin) if rng.random() < 0.25 else None,
            bottom=bottom, bottom_colour=bottom_colour,
            belt=_pick(rng, BELT_PALETTE) if rng.random() < (0.2 if top == "dress" else 0.5) else None,
            pocket=_shade(bottom_colour, 0.8) if wants_pocket and bottom not in SKIRTS else None,
            knee_patch=knee_patch, logo=_pick(rng, TOP_PALETTE, top_colour),
            back_mark=_pick(rng, TOP_PALETTE, top_colour), back_mark_shape=str(rng.choice(BACK_MARKS)),
            shoes=_pick(rng, SHOE_PALETTE), soles=_pick(rng, SOLE_PALETTE), watch=_pick(rng, WATCH_PALETTE, skin),
            watch_on_forearm=True, eyes=_pick(rng, EYE_COLOURS), lips=_lips(skin))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields (colours as lists), e.g. for a capture's or a dataset's metadata."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Outfit:
        """The outfit ``as_dict`` described; names a missing or unknown field."""
        names = {f.name for f in fields(cls)}
        if set(data) != names:
            raise ValueError(f"outfit fields: missing {sorted(names - set(data))}, unknown {sorted(set(data) - names)}")
        values: dict[str, Any] = {k: tuple(float(c) for c in v) if isinstance(v, list | tuple) else v
                                  for k, v in data.items()}
        return cls(**values)


_CHOICES = ("hair_length", "top", "pattern", "bottom", "back_mark_shape")


def _check_colour(name: str, value) -> None:
    if not (isinstance(value, tuple) and len(value) == 3 and all(0.0 <= float(c) <= 1.0 for c in value)):
        raise ValueError(f"Outfit.{name} must be an RGB tuple in [0, 1] (or None for a detail), got {value!r}")


def _as_colour(value) -> Colour:
    r, g, b = (float(c) for c in value)
    return r, g, b


def _jitter(rng: np.random.Generator, colour, amount: float = 0.04) -> Colour:
    """A palette colour as one garment's dye: slightly different from garment to garment."""
    return _as_colour(np.round(np.clip(np.asarray(colour) + rng.normal(0.0, amount, 3), 0.0, 1.0), 4))


def _pick(rng: np.random.Generator, palette, *away_from: Colour, min_distance: float = 0.3) -> Colour:
    """A palette colour far enough from each of ``away_from`` (the skin, the garment a detail is on)
    that it stands out."""
    options = np.asarray(palette, dtype=np.float64)
    far = np.ones(len(options), bool)
    for colour in away_from:
        far &= np.linalg.norm(options - np.asarray(colour), axis=1) >= min_distance
    options = options[far] if far.any() else options
    return _jitter(rng, options[rng.integers(len(options))])


def _sleeves(rng: np.random.Generator, top: str, top_colour: Colour) -> tuple[Colour, Colour]:
    """Left and right sleeve colours: now and then one sleeve in an accent colour."""
    if top in ("sleeveless", "dress") or rng.random() >= 0.3:
        return top_colour, top_colour
    accent = _pick(rng, TOP_PALETTE, top_colour)
    return (accent, top_colour) if rng.random() < 0.5 else (top_colour, accent)


def _skin_tone(rng: np.random.Generator) -> Colour:
    """A tone anywhere between the lightest and the darkest of ``SKIN_TONES``."""
    t = rng.uniform(0.0, len(SKIN_TONES) - 1)
    k = min(int(t), len(SKIN_TONES) - 2)
    tone = SKIN_TONES[k] + (t - k) * (SKIN_TONES[k + 1] - SKIN_TONES[k])
    return _jitter(rng, tone, 0.015)


def _hair_colour(rng: np.random.Generator) -> Colour:
    colours, weights = zip(*HAIR_COLOURS.values(), strict=True)
    return _jitter(rng, colours[rng.choice(len(colours), p=np.array(weights) / sum(weights))], 0.02)


def _shade(colour: Colour, factor: float) -> Colour:
    return _as_colour(np.round(np.asarray(colour) * factor, 4))


def _lips(skin: Colour) -> Colour:
    """Lips a little darker and redder than the skin around them."""
    s = np.asarray(skin)
    return _as_colour(np.round(np.clip(s * [0.82, 0.52, 0.55] + [0.05, 0.0, 0.0], 0.0, 1.0), 4))


def _parts(*names: str) -> list[int]:
    return [JOINT_INDEX[n] for n in names]


class ProceduralAppearance:
    """Albedo and baked shading of surface points given by (triangle, barycentric coordinates)."""

    def __init__(self, rest_vertices: np.ndarray, faces: np.ndarray, lbs_weights: np.ndarray,
                 rest_joints: np.ndarray, landmarks: dict[str, int] | None = None, outfit: Outfit | None = None):
        import trimesh

        self.outfit = outfit or Outfit.default()
        self.faces = np.asarray(faces)
        self.rest_vertices = np.asarray(rest_vertices, dtype=np.float64)
        mesh = trimesh.Trimesh(self.rest_vertices, self.faces, process=False)
        self.rest_normals = np.asarray(mesh.vertex_normals, dtype=np.float64)
        # Dominant joint of each triangle (summed weights of its three vertices).
        self.face_part = np.asarray(lbs_weights)[self.faces].sum(axis=1).argmax(axis=1)
        self.joints = np.asarray(rest_joints, dtype=np.float64)
        landmarks = landmarks or {}
        j = self.joints
        head = j[JOINT_INDEX["head"]]
        self.nose = self.rest_vertices[landmarks["nose"]] if "nose" in landmarks else head + [0, 0.07, 0.1]
        self.waist_y = j[JOINT_INDEX["pelvis"]][1] + 0.35 * (j[JOINT_INDEX["spine1"]][1] - j[JOINT_INDEX["pelvis"]][1])
        self.sole_y = self.rest_vertices[:, 1].min() + 0.025
        self.shoe_top_y = j[JOINT_INDEX["left_ankle"]][1] + 0.03
        self.shoulder_x = abs(j[JOINT_INDEX["left_shoulder"]][0])
        elbow_x = abs(j[JOINT_INDEX["left_elbow"]][0])
        self.wrist_x = abs(j[JOINT_INDEX["left_wrist"]][0])
        self.sleeve_end_x = {"sleeveless": self.shoulder_x - 0.02, "dress": self.shoulder_x - 0.02,
                             "short": self.shoulder_x + 0.55 * (elbow_x - self.shoulder_x),
                             "long": self.wrist_x - 0.045}[self.outfit.top]
        self.knee = j[JOINT_INDEX["right_knee"]]
        self.chest = j[JOINT_INDEX["spine3"]]
        self.neck = j[JOINT_INDEX["neck"]]
        hip_y, ankle_y = j[JOINT_INDEX["left_hip"]][1], j[JOINT_INDEX["left_ankle"]][1]
        thigh = hip_y + 0.5 * (self.knee[1] - hip_y)
        self.hem_y = {"shorts": thigh, "mini_skirt": thigh + 0.02, "knee": self.knee[1] - 0.06,
                      "skirt": self.knee[1] - 0.03, "long_skirt": self.knee[1] + 0.65 * (ankle_y - self.knee[1]),
                      "trousers": -np.inf}[self.outfit.bottom]

    @classmethod
    def for_body(cls, body_model, outfit: Outfit | None = None) -> ProceduralAppearance:
        """``outfit`` (default: the shipped subject) on ``body_model``'s mean shape."""
        return cls(body_model.rest_vertices(), body_model.faces, body_model.lbs_weights.cpu().numpy(),
                   body_model.rest_joints(), body_model.landmarks, outfit)

    def colour(self, face_ids: np.ndarray, barycentric: np.ndarray) -> np.ndarray:
        """Shaded RGB in [0, 1], (N, 3), for points on triangles ``face_ids`` at ``barycentric``."""
        tri = self.faces[face_ids]
        p = np.einsum("nk,nkc->nc", barycentric, self.rest_vertices[tri])
        n = np.einsum("nk,nkc->nc", barycentric, self.rest_normals[tri])
        n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-12
        albedo = self.albedo(p, self.face_part[face_ids])
        shade = 0.45 + 0.55 * np.clip(n @ _LIGHT, 0.0, 1.0)
        return np.clip(albedo * shade[:, None], 0.0, 1.0)

    def albedo(self, p: np.ndarray, part: np.ndarray) -> np.ndarray:
        """Unshaded colour of canonical points ``p`` (N, 3) on body parts ``part`` (N,)."""
        o = self.outfit
        out = np.tile(np.asarray(o.skin), (len(p), 1))
        torso = np.isin(part, _parts("pelvis", "spine1", "spine2", "spine3", "left_collar", "right_collar",
                                     "left_shoulder", "right_shoulder", "left_elbow", "right_elbow"))
        legs = np.isin(part, _parts("left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
                                    "right_ankle", "left_foot", "right_foot"))
        top = self._paint_top(p, torso, legs, out)
        self._paint_bottom(p, torso | legs, out)
        if o.jacket is not None:
            top = self._paint_jacket(p, torso, legs, out)
        self._paint_marks(p, top, out)
        x, y = p[:, 0], p[:, 1]
        shoes = legs & (y < self.shoe_top_y)
        _paint(out, shoes, o.shoes)
        _paint(out, shoes & (y < self.sole_y), o.soles)
        arm = np.isin(part, _parts("left_elbow", "left_wrist")) if o.watch_on_forearm else ~torso & ~legs
        _paint(out, (x > self.wrist_x - 0.04) & (x < self.wrist_x - 0.01) & arm, o.watch)
        self._paint_head(p, part, out)
        return out

    def _paint_top(self, p: np.ndarray, torso: np.ndarray, legs: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Shirt or the dress's bodice, sleeves and pattern; returns the region above the waist it covers."""
        o = self.outfit
        x, y = p[:, 0], p[:, 1]
        shirt = torso & (y > self.waist_y) & ~(np.abs(x) > self.sleeve_end_x)
        sleeve = shirt & (np.abs(x) > self.shoulder_x - 0.02)
        _paint(out, shirt, o.top_colour)
        _paint(out, sleeve & (x > 0), o.left_sleeve)
        _paint(out, sleeve & (x < 0), o.right_sleeve)
        own_colour = ((x > 0) & (o.left_sleeve == o.top_colour)) | ((x < 0) & (o.right_sleeve == o.top_colour))
        patterned = shirt & ~(sleeve & ~own_colour)
        if o.top == "dress":
            patterned = patterned | self._skirt(p, torso | legs)
            _paint(out, patterned, o.top_colour)
        self._paint_pattern(p, patterned, sleeve, out)
        return shirt

    def _skirt(self, p: np.ndarray, lower_body: np.ndarray) -> np.ndarray:
        y = p[:, 1]
        return lower_body & (y <= self.waist_y) & (y > self.hem_y)

    def _paint_pattern(self, p: np.ndarray, region: np.ndarray, sleeve: np.ndarray, out: np.ndarray) -> None:
        """Stripes run round the trunk and round the sleeves; checks are a gingham of both colours."""
        o = self.outfit
        x, y = p[:, 0], p[:, 1]
        along = np.where(sleeve, np.abs(x), y - self.waist_y)
        stripes = np.floor(along / o.pattern_scale) % 2 == 1
        if o.pattern == "stripes":
            _paint(out, region & stripes, o.pattern_colour)
        elif o.pattern == "checks":
            across = np.floor(np.where(sleeve, y, x) / o.pattern_scale) % 2 == 1
            _paint(out, region & (stripes ^ across), 0.5 * (np.asarray(o.top_colour) + o.pattern_colour))
            _paint(out, region & stripes & across, o.pattern_colour)
        elif o.pattern == "logo":
            centre = np.array([0.0, self.chest[1] - 0.075])
            r = np.hypot(x - centre[0], y - centre[1])
            front = region & ~sleeve & (p[:, 2] > self.chest[2])
            _paint(out, front & (r < 0.055), o.pattern_colour)
            _paint(out, front & (r < 0.03), o.top_colour)
            _paint(out, front & (r < 0.03) & (np.abs(y - centre[1]) < 0.008), o.pattern_colour)

    def _paint_bottom(self, p: np.ndarray, lower_body: np.ndarray, out: np.ndarray) -> None:
        """Trousers, shorts or a skirt from the waist down, with belt, back pocket and knee patch."""
        o = self.outfit
        x, y, z = p[:, 0], p[:, 1], p[:, 2]
        bottom = self._skirt(p, lower_body)
        if o.top != "dress":
            _paint(out, bottom, o.bottom_colour)
        if o.belt is not None:
            _paint(out, bottom & (y > self.waist_y - 0.035), o.belt)
        if o.pocket is not None:
            pocket = bottom & (z < 0) & (x > 0.03) & (x < 0.13) & (y < self.waist_y - 0.05) & (y > self.waist_y - 0.15)
            _paint(out, pocket, o.pocket)
        if o.knee_patch is not None:
            patch = bottom & (x < 0) & (z > 0) & (np.abs(y - self.knee[1]) < 0.05) & (np.abs(x - self.knee[0]) < 0.05)
            _paint(out, patch, o.knee_patch)

    def _paint_jacket(self, p: np.ndarray, torso: np.ndarray, legs: np.ndarray, out: np.ndarray) -> np.ndarray:
        """An open jacket with long sleeves over the top; returns the region it covers."""
        x, y, z = p[:, 0], p[:, 1], p[:, 2]
        body = (torso | legs) & (y > self.waist_y - 0.08) & (np.abs(x) < self.wrist_x - 0.05)
        opening = (z > self.chest[2]) & (np.abs(x) < 0.045 + 0.02 * (y > self.chest[1] + 0.05)) & (
            np.abs(x) < self.shoulder_x - 0.05)
        jacket = body & ~opening
        _paint(out, jacket, self.outfit.jacket)
        return jacket & (y > self.waist_y)

    def _paint_marks(self, p: np.ndarray, top: np.ndarray, out: np.ndarray) -> None:
        """The chest logo on the left and the cross on the back, on whatever the person wears on top."""
        o = self.outfit
        x, y, z = p[:, 0], p[:, 1], p[:, 2]
        logo = top & (z > 0) & (np.abs(x - 0.09) < 0.035) & (np.abs(y - (self.chest[1] + 0.02)) < 0.035)
        _paint(out, logo, o.logo)
        back = top & (z < self.chest[2] - 0.03)
        if o.back_mark_shape == "cross":
            _paint(out, back & (np.abs(x) < 0.025), o.back_mark)
            _paint(out, back & (np.abs(y - self.chest[1]) < 0.02) & (np.abs(x) < 0.1), o.back_mark)
        elif o.back_mark_shape == "band":
            _paint(out, back & (np.abs(y - self.chest[1]) < 0.03) & (np.abs(x) < self.shoulder_x), o.back_mark)
        else:
            _paint(out, back & (np.abs(x) < 0.07) & (np.abs(y - self.chest[1] + 0.05) < 0.07), o.back_mark)

    def _paint_head(self, p: np.ndarray, part: np.ndarray, out: np.ndarray) -> None:
        o = self.outfit
        head = part == JOINT_INDEX["head"]
        q = p - self.nose  # face coordinates: origin at the nose tip
        x, y, z = q[:, 0], q[:, 1], q[:, 2]
        hair = head & self._hair(x, y, z)
        if o.hair_length == "long":
            hair = hair | self._hair_down_the_back(p, part)
        out[hair] = o.hair
        front = head & (z > -0.06) & ~hair
        for side in (-1.0, 1.0):
            eye = front & (((x - side * 0.032) / 0.014) ** 2 + ((y - 0.035) / 0.007) ** 2 < 1.0)
            out[eye] = o.eyes
            brow = front & (np.abs(x - side * 0.033) < 0.018) & (np.abs(y - 0.055) < 0.004)
            out[brow] = o.hair
        mouth = front & (np.abs(x) < 0.022) & (np.abs(y + 0.035) < 0.006)
        out[mouth] = o.lips

    def _hair(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """The head's hair in face coordinates: longer hair reaches further down the back and sides."""
        short = (y > 0.075) | ((z < -0.09) & (y > -0.06)) | ((y > 0.03) & (np.abs(x) > 0.065))
        if self.outfit.hair_length == "short":
            return short
        sides = (np.abs(x) > 0.058) & (z < -0.015) & (y > -0.05)
        if self.outfit.hair_length == "long":
            sides |= (np.abs(x) > 0.05) & (z < -0.07) & (y > -0.12)
        return short | (y > 0.062) | ((z < -0.07) & (y > -0.15)) | sides

    def _hair_down_the_back(self, p: np.ndarray, part: np.ndarray) -> np.ndarray:
        """Long hair falls over the back of the neck onto the upper back, narrowing to a rounded end."""
        x, y, z = p[:, 0], p[:, 1], p[:, 2]
        upper = np.isin(part, _parts("head", "neck", "spine3", "spine2", "left_collar", "right_collar"))
        end_y = self.chest[1] - 0.03
        width = 0.085 - 0.015 * np.clip((self.neck[1] - y) / (self.neck[1] - end_y), 0.0, 1.0)
        rounded = np.hypot(x / width, np.clip((end_y + width - y) / width, 0.0, None)) < 1.0
        return upper & (z < self.neck[2] - 0.03) & (y > end_y) & (y < self.nose[1]) & rounded

def _paint(out: np.ndarray, mask: np.ndarray, colour) -> None:
    out[mask] = colour
