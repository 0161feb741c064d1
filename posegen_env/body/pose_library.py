"""A hand-written library of everyday key poses, plus left/right mirroring and interpolation.

These poses seed the "public dataset" distribution (``samplers.BasePoseSampler``): common,
upright-camera, everyday activity. Each pose is written as readable per-joint axis-angle
components in degrees, relative to the parent joint in SMPL's world-aligned rest frame (T-pose,
y up, facing +z). Useful signs (left side; the right side negates y and z):

* hip flexion (thigh forward) is -x; knee flexion is +x; ankle +x points the toes down;
* spine/neck +x bends forward, +y turns the face to the left (+x), +z bends to the right;
* shoulder +z raises the arm, -z lowers it (arms down at the sides is about -75);
  -y swings the arm forward; +x swings a lowered arm backwards;
* elbow flexion is -y (left) / +y (right).

``global_orient`` (degrees too) turns the whole body: x = -90 lies it on its back, x = +90 on its
front, z = +90 on its right side. Asymmetric poses use the left side as the lead; the samplers
mirror them.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy.spatial.transform import Rotation

from posegen_env.body.pose_space import (
    BODY_JOINT_NAMES,
    BODY_MIRROR,
    BODY_POSE_DIM,
    MIRROR_SIGN,
    check_pose_array,
)

Degrees3 = tuple[float, float, float]

# name -> {joint_name or "global_orient": (x, y, z) axis-angle degrees}; unnamed joints are zero.
_POSE_DEGREES: dict[str, dict[str, Degrees3]] = {
    # Standing relaxed, arms down at the sides (SMPL's T-pose arms lowered by 75 deg).
    "rest": {"left_shoulder": (0, 0, -75), "right_shoulder": (0, 0, 75), "left_elbow": (0, -10, 0),
        "right_elbow": (0, 10, 0)},
    # Elbows out to the sides, hands resting on the hips.
    "stand_hands_on_hips": {"left_shoulder": (55, -26, -47), "left_elbow": (28, -78, -3),
        "right_shoulder": (55, 26, 47), "right_elbow": (29, 78, 3)},
    # Forearms folded across the chest.
    "stand_arms_crossed": {"left_shoulder": (19, -76, -57), "left_elbow": (13, -80, -3),
        "right_shoulder": (22, 77, 55), "right_elbow": (14, 82, 3)},
    # Contrapposto: weight on the left leg, left hip high, right knee relaxed.
    "stand_weight_on_left": {"global_orient": (0, 0, 5), "left_hip": (0, 0, -8), "right_hip": (-10, 0, -5),
        "right_knee": (15, 0, 0), "spine1": (0, 0, -6), "spine3": (0, 0, -3), "neck": (0, 0, 4),
        "left_shoulder": (0, 0, -70), "right_shoulder": (0, 0, 75), "left_elbow": (0, -10, 0),
        "right_elbow": (0, 10, 0)},
    # Hands clasped in front of the pelvis.
    "stand_hands_clasped_front": {"left_shoulder": (25, -56, -72), "left_elbow": (15, -27, -3),
        "right_shoulder": (25, 56, 72), "right_elbow": (15, 27, 3)},
    # Right hand at the right ear, head tilted towards it.
    "phone_call_right": {"left_shoulder": (0, 0, -75), "right_shoulder": (-41, 45, 48),
        "left_elbow": (0, -10, 0), "right_elbow": (-4, 143, -3), "neck": (0, 0, 6), "head": (0, 0, 5)},
    # Right hand raised to the mouth.
    "drink_from_cup_right": {"left_shoulder": (0, 0, -75), "right_shoulder": (-19, 48, 63),
        "left_elbow": (0, -10, 0), "right_elbow": (8, 129, 3)},
    # Looking down at a phone held in both hands at chest height.
    "text_on_phone": {"neck": (30, 0, 0), "head": (15, 0, 0), "left_shoulder": (-3, -53, -63),
        "left_elbow": (2, -86, 3), "right_shoulder": (-3, 53, 63), "right_elbow": (2, 86, -3)},
    # Walking, left heel touches down; opposite (right) arm swings forward.
    "walk_heel_strike": {"left_hip": (-25, 0, 0), "left_knee": (5, 0, 0), "left_ankle": (-10, 0, 0),
        "right_hip": (15, 0, 0), "right_knee": (15, 0, 0), "right_ankle": (15, 0, 0), "spine2": (0, 5, 0),
        "left_shoulder": (17, 13, -74), "right_shoulder": (-21, 16, 74), "left_elbow": (0, -10, 0),
        "right_elbow": (0, 25, 0)},
    # Walking, weight shifts onto the bending left knee.
    "walk_loading": {"left_hip": (-20, 0, 0), "left_knee": (18, 0, 0), "left_ankle": (0, 0, 0),
        "right_hip": (10, 0, 0), "right_knee": (30, 0, 0), "right_ankle": (25, 0, 0), "spine2": (0, 3, 0),
        "left_shoulder": (10, 8, -75), "right_shoulder": (-13, 10, 74), "left_elbow": (0, -10, 0),
        "right_elbow": (0, 20, 0)},
    # Walking, left leg under the body, right leg swings through.
    "walk_midstance": {"left_hip": (-2, 0, 0), "left_knee": (8, 0, 0), "right_hip": (-22, 0, 0),
        "right_knee": (60, 0, 0), "right_ankle": (-5, 0, 0), "left_shoulder": (0, 0, -75),
        "right_shoulder": (0, 0, 75), "left_elbow": (0, -15, 0), "right_elbow": (0, 15, 0)},
    # Walking, left heel rises behind, right leg reaches forward.
    "walk_terminal_stance": {"left_hip": (12, 0, 0), "left_knee": (5, 0, 0), "left_ankle": (10, 0, 0),
        "right_hip": (-25, 0, 0), "right_knee": (25, 0, 0), "spine2": (0, -4, 0),
        "left_shoulder": (-13, -10, -74), "right_shoulder": (13, -10, 74), "left_elbow": (0, -25, 0),
        "right_elbow": (0, 10, 0)},
    # Running, both feet off the ground; elbows bent ~90 deg.
    "run_flight": {"global_orient": (8, 0, 0), "left_hip": (-50, 0, 0), "left_knee": (60, 0, 0),
        "left_ankle": (-5, 0, 0), "right_hip": (20, 0, 0), "right_knee": (95, 0, 0),
        "right_ankle": (25, 0, 0), "left_shoulder": (30, 21, -68), "left_elbow": (0, -80, 0),
        "right_shoulder": (-30, 21, 68), "right_elbow": (0, 95, 0)},
    # Running, landing on the flexed left knee, right heel towards the buttock.
    "run_stance": {"global_orient": (8, 0, 0), "left_hip": (-15, 0, 0), "left_knee": (35, 0, 0),
        "left_ankle": (-15, 0, 0), "right_hip": (-45, 0, 0), "right_knee": (115, 0, 0),
        "right_ankle": (10, 0, 0), "left_shoulder": (4, 3, -72), "left_elbow": (0, -85, 0),
        "right_shoulder": (-4, 3, 72), "right_elbow": (0, 85, 0)},
    # Running, left toes push off behind, right thigh driven forward.
    "run_push_off": {"global_orient": (10, 0, 0), "left_hip": (20, 0, 0), "left_knee": (15, 0, 0),
        "left_ankle": (30, 0, 0), "right_hip": (-60, 0, 0), "right_knee": (85, 0, 0),
        "right_ankle": (0, 0, 0), "spine2": (0, -6, 0), "left_shoulder": (-30, -21, -68),
        "left_elbow": (0, -95, 0), "right_shoulder": (30, -21, 68), "right_elbow": (0, 80, 0)},
    # Sitting on a chair, thighs horizontal, hands on the thighs.
    "sit_chair": {"left_hip": (-90, 0, 0), "right_hip": (-90, 0, 0), "left_knee": (90, 0, 0),
        "right_knee": (90, 0, 0), "left_shoulder": (10, -38, -73), "left_elbow": (8, -22, -3),
        "right_shoulder": (10, 37, 74), "right_elbow": (8, 23, 3)},
    # Sitting at a desk, leaning in, forearms forward as if typing.
    "sit_typing": {"left_hip": (-95, 0, 6), "right_hip": (-95, 0, -6), "left_knee": (90, 0, 0),
        "right_knee": (90, 0, 0), "spine1": (10, 0, 0), "neck": (10, 0, 0), "left_shoulder": (-9, -39, -67),
        "left_elbow": (-1, -68, 3), "right_shoulder": (-9, 39, 67), "right_elbow": (-1, 68, -3)},
    # Sitting on the floor, legs crossed (hips flexed, abducted and turned out).
    "sit_cross_legged": {"left_hip": (-107, 76, -16), "right_hip": (-107, -77, 20),
        "left_knee": (125, 28, -8), "right_knee": (116, -28, 8), "left_shoulder": (-6, -8, -60),
        "right_shoulder": (-5, 8, 60), "left_elbow": (0, -46, -2), "right_elbow": (0, 47, 2)},
    # Sitting on the floor leaning back, legs straight, arms propped behind.
    "sit_floor_legs_out": {"global_orient": (-25, 0, 0), "left_hip": (-65, 0, 4), "right_hip": (-65, 0, -4),
        "left_knee": (5, 0, 0), "right_knee": (5, 0, 0), "neck": (10, 0, 0), "left_shoulder": (58, 43, -57),
        "right_shoulder": (58, -43, 56), "left_elbow": (3, -43, -3), "right_elbow": (5, 43, 3),
        "left_wrist": (0, 0, 50), "right_wrist": (0, 0, -50)},
    # Deep squat, thighs horizontal, torso leaning forward, arms forward for balance.
    "squat_deep": {"global_orient": (25, 0, 0), "left_hip": (-115, 0, 10), "right_hip": (-115, 0, -10),
        "left_knee": (130, 0, 0), "right_knee": (130, 0, 0), "left_ankle": (-38, 0, 0),
        "right_ankle": (-38, 0, 0), "spine1": (-5, 0, 0), "left_shoulder": (0, -80, -10),
        "right_shoulder": (0, 80, 10), "left_elbow": (0, -20, 0), "right_elbow": (0, 20, 0)},
    # Crouching low on the toes, looking up, hands reaching towards the ground ahead.
    "crouch": {"global_orient": (40, 0, 0), "left_hip": (-98, 0, 8), "right_hip": (-98, 0, -8),
        "left_knee": (115, 0, 0), "right_knee": (115, 0, 0), "left_ankle": (-25, 0, 0),
        "right_ankle": (-25, 0, 0), "neck": (-25, 0, 0), "head": (-10, 0, 0),
        "left_shoulder": (-7, -54, -60), "left_elbow": (1, -29, 3), "right_shoulder": (2, 38, 59),
        "right_elbow": (3, 47, 3)},
    # Kneeling on the right knee, left foot planted in front, left hand on the knee.
    "kneel_on_right_knee": {"left_hip": (-90, 0, 5), "left_knee": (90, 0, 0), "right_hip": (0, 0, -3),
        "right_knee": (90, 0, 0), "right_ankle": (35, 0, 0), "left_shoulder": (16, -27, -59),
        "right_shoulder": (0, 0, 75), "left_elbow": (0, -40, 0), "right_elbow": (0, 10, 0)},
    # Kneeling on both knees, torso upright, feet pointing back.
    "kneel_upright": {"left_knee": (90, 0, 0), "right_knee": (90, 0, 0), "left_ankle": (60, 0, 0),
        "right_ankle": (60, 0, 0), "left_hip": (-5, 0, 0), "right_hip": (-5, 0, 0),
        "left_shoulder": (0, 0, -75), "right_shoulder": (0, 0, 75), "left_elbow": (0, -10, 0),
        "right_elbow": (0, 10, 0)},
    # On tiptoe reaching up with the right arm.
    "reach_up_right": {"right_shoulder": (0, 0, -80), "right_collar": (0, 0, -10), "left_ankle": (20, 0, 0),
        "right_ankle": (20, 0, 0), "spine2": (0, 0, -6), "spine3": (0, 0, -6), "neck": (-20, 0, 0),
        "left_shoulder": (0, 0, -70), "left_elbow": (0, -10, 0)},
    # Leaning forward with both arms reaching ahead.
    "reach_forward": {"global_orient": (10, 0, 0), "left_hip": (-10, 0, 0), "right_hip": (-10, 0, 0),
        "spine1": (15, 0, 0), "neck": (-10, 0, 0), "left_shoulder": (-14, -94, 14),
        "right_shoulder": (-14, 94, -14), "left_elbow": (0, -2, 1), "right_elbow": (0, 2, -1)},
    # Waving: right arm raised, right wrist above the head.
    "wave_right": {"left_shoulder": (0, 0, -75), "right_shoulder": (-51, 29, -28),
        "left_elbow": (0, -10, 0), "right_elbow": (-17, 37, -3), "neck": (0, 0, 4)},
    # Pointing forward-left with the left arm, head turned that way.
    "point_left": {"left_shoulder": (0, -60, 5), "left_wrist": (0, 0, 0), "right_shoulder": (0, 0, 75),
        "right_elbow": (0, 10, 0), "neck": (0, 20, 0), "head": (0, 10, 0), "spine3": (0, 8, 0)},
    # Bending forward from the hips to pick something up, arms hanging down.
    "bend_pick_up": {"global_orient": (55, 0, 0), "left_hip": (-65, 0, 0), "right_hip": (-65, 0, 0),
        "left_knee": (25, 0, 0), "right_knee": (25, 0, 0), "left_ankle": (-15, 0, 0),
        "right_ankle": (-15, 0, 0), "spine1": (35, 0, 0), "spine2": (10, 0, 0), "spine3": (5, 0, 0),
        "neck": (-20, 0, 0), "left_shoulder": (0, -85, 0), "right_shoulder": (0, 85, 0)},
    # Front kick with the right leg, arms out for balance.
    "kick_right_front": {"global_orient": (-8, 0, 0), "right_hip": (-70, 0, 0), "right_knee": (10, 0, 0),
        "right_ankle": (25, 0, 0), "left_knee": (12, 0, 0), "left_ankle": (-12, 0, 0),
        "left_shoulder": (0, -20, -35), "right_shoulder": (0, -25, 40), "left_elbow": (0, -20, 0),
        "right_elbow": (0, 20, 0)},
    # Stretching both arms overhead on tiptoe, looking up.
    "stretch_arms_up": {"left_shoulder": (0, 0, 75), "right_shoulder": (0, 0, -75),
        "left_collar": (0, 0, 15), "right_collar": (0, 0, -15), "spine1": (-10, 0, 0), "neck": (-15, 0, 0),
        "left_ankle": (15, 0, 0), "right_ankle": (15, 0, 0)},
    # Side stretch: torso bends left, right arm over the head.
    "stretch_side_bend_left": {"spine1": (0, 0, -12), "spine2": (0, 0, -8), "spine3": (0, 0, -6),
        "neck": (0, 0, -4), "right_shoulder": (0, 0, -75), "right_collar": (0, 0, -20),
        "left_shoulder": (0, 0, -70), "left_elbow": (0, -20, 0), "left_hip": (0, 0, 8),
        "right_hip": (0, 0, -8)},
    # Forward lunge on the left leg, right heel lifted behind.
    "lunge_left_forward": {"left_hip": (-80, 0, 0), "left_knee": (80, 0, 0), "right_hip": (35, 0, 0),
        "right_knee": (35, 0, 0), "right_ankle": (-30, 0, 0), "left_shoulder": (-17, -12, -69),
        "right_shoulder": (-17, 12, 69), "left_elbow": (0, -10, 0), "right_elbow": (0, 10, 0)},
    # Standing, head and upper torso turned to the left.
    "look_around_left": {"neck": (0, 35, 0), "head": (0, 20, 0), "spine3": (0, 10, 0), "spine2": (0, 10, 0),
        "left_shoulder": (0, 0, -75), "right_shoulder": (0, 0, 75), "left_elbow": (0, -10, 0),
        "right_elbow": (0, 10, 0)},
    # Carrying a box in front, elbows bent, leaning slightly back.
    "carry_box": {"spine1": (-5, 0, 0), "left_shoulder": (-5, -31, -68), "left_elbow": (0, -58, 3),
        "right_shoulder": (-5, 31, 68), "right_elbow": (1, 58, -3)},
    # Lying on the back (facing up), left knee raised.
    "lie_on_back": {"global_orient": (-90, 0, 0), "left_shoulder": (13, 10, -74),
        "right_shoulder": (13, -10, 74), "left_elbow": (0, -10, 0), "right_elbow": (0, 10, 0),
        "left_hip": (-40, 0, 0), "left_knee": (80, 0, 0), "left_ankle": (-25, 0, 0)},
    # Lying on the right side, knees slightly drawn up, arms in front.
    "lie_on_side": {"global_orient": (0, 0, 90), "left_hip": (-35, 0, 0), "right_hip": (-25, 0, 0),
        "left_knee": (45, 0, 0), "right_knee": (35, 0, 0), "right_shoulder": (0, 80, 0),
        "right_elbow": (0, 60, 0), "left_shoulder": (17, -37, -48), "left_elbow": (0, -30, 0)},
    # Lying face down, head turned to the left.
    "lie_on_front": {"global_orient": (90, 0, 0), "left_shoulder": (0, 0, -75),
        "right_shoulder": (0, 0, 75), "left_elbow": (0, -10, 0), "right_elbow": (0, 10, 0),
        "neck": (0, 40, 0), "left_ankle": (40, 0, 0), "right_ankle": (40, 0, 0)},
    # Loading a jump: hips and knees bent, arms swung back.
    "jump_takeoff": {"global_orient": (25, 0, 0), "left_hip": (-65, 0, 0), "right_hip": (-65, 0, 0),
        "left_knee": (80, 0, 0), "right_knee": (80, 0, 0), "left_ankle": (-20, 0, 0),
        "right_ankle": (-20, 0, 0), "left_shoulder": (42, 33, -70), "right_shoulder": (42, -33, 70),
        "neck": (-20, 0, 0)},
    # In the air after a jump, arms raised, knees tucked a little.
    "jump_airborne": {"left_shoulder": (0, -20, 70), "right_shoulder": (0, 20, -70),
        "left_hip": (-35, 0, 5), "right_hip": (-35, 0, -5), "left_knee": (60, 0, 0),
        "right_knee": (60, 0, 0), "left_ankle": (35, 0, 0), "right_ankle": (35, 0, 0)},
    # Climbing stairs: left foot on the next step, right hand on a rail.
    "climb_stairs": {"left_hip": (-55, 0, 0), "left_knee": (70, 0, 0), "left_ankle": (-10, 0, 0),
        "right_hip": (5, 0, 0), "right_knee": (5, 0, 0), "right_ankle": (15, 0, 0), "spine1": (8, 0, 0),
        "left_shoulder": (17, 13, -74), "right_shoulder": (-27, 16, 59), "right_elbow": (0, 35, 0)},
    # Wind-up of an overhand throw: right hand up behind the head, torso turned right.
    "throw_wind_up": {"spine1": (0, -12, 0), "spine2": (0, -8, 0), "left_hip": (-20, 0, 0),
        "left_knee": (10, 0, 0), "right_knee": (15, 0, 0), "left_shoulder": (0, -60, -10),
        "right_collar": (0, 0, -5), "right_shoulder": (-58, 8, -12), "right_elbow": (-37, 66, -3)},
    # Pushing a door or wall: leaning in, arms forward, palms facing forward.
    "push_forward": {"global_orient": (15, 0, 0), "left_hip": (-40, 0, 0), "left_knee": (30, 0, 0),
        "left_ankle": (-5, 0, 0), "right_hip": (10, 0, 0), "right_knee": (5, 0, 0),
        "right_ankle": (-5, 0, 0), "left_shoulder": (0, -80, -5), "right_shoulder": (0, 80, 5),
        "left_elbow": (0, -30, 0), "right_elbow": (0, 30, 0), "left_wrist": (0, 0, 70),
        "right_wrist": (0, 0, -70)},
}


def pose_from_degrees(spec: Mapping[str, Degrees3]) -> tuple[np.ndarray, np.ndarray]:
    """(global_orient (3,), body_pose (69,)) in radians from ``{joint: (x, y, z) degrees}``.

    Joints not named are left at zero (their rest orientation relative to the parent).
    """
    global_orient = np.zeros(3)
    body_pose = np.zeros((len(BODY_JOINT_NAMES), 3))
    for joint, value in spec.items():
        deg = np.asarray(value, dtype=np.float64)
        if deg.shape != (3,) or not np.isfinite(deg).all():
            raise ValueError(f"joint {joint!r} needs 3 finite axis-angle degrees (x, y, z), got {value!r}")
        if joint == "global_orient":
            global_orient = np.deg2rad(deg)
        elif joint in BODY_JOINT_NAMES:
            body_pose[BODY_JOINT_NAMES.index(joint)] = np.deg2rad(deg)
        else:
            raise ValueError(
                f"unknown joint {joint!r}; use 'global_orient' (for the pelvis) or one of {BODY_JOINT_NAMES}"
            )
    return global_orient, body_pose.reshape(BODY_POSE_DIM)


def read_only(pose: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``pose`` with both arrays made read-only: a pose table handed out by reference cannot be altered."""
    for a in pose:
        a.setflags(write=False)
    return pose[0], pose[1]


KEY_POSES: dict[str, tuple[np.ndarray, np.ndarray]] = {
    name: read_only(pose_from_degrees(spec)) for name, spec in _POSE_DEGREES.items()
}


def pose_names() -> list[str]:
    """Names of the library poses, "rest" first."""
    return list(KEY_POSES)


def get_pose(name: str) -> tuple[np.ndarray, np.ndarray]:
    """A writable copy of one library pose: (global_orient (3,), body_pose (69,)) in radians."""
    if name not in KEY_POSES:
        raise KeyError(f"no pose named {name!r}; pose_names() lists the {len(KEY_POSES)} available")
    global_orient, body_pose = KEY_POSES[name]
    return global_orient.copy(), body_pose.copy()


def library_array() -> tuple[np.ndarray, np.ndarray]:
    """All library poses stacked in ``pose_names()`` order: (P, 3) and (P, 69) radians."""
    return (np.stack([g for g, _ in KEY_POSES.values()]), np.stack([b for _, b in KEY_POSES.values()]))


def mirror_pose(global_orient, body_pose) -> tuple[np.ndarray, np.ndarray]:
    """The left/right mirror image of (batched) poses.

    Reflecting the world by x -> -x turns a rotation with axis-angle (x, y, z) into (x, -y, -z),
    and the reflected body's left joints carry what were the right joints' rotations. The
    library's joint limits are mirror-symmetric, so mirroring keeps a pose inside them.
    """
    go = check_pose_array(global_orient, 3, "global_orient")
    bp = check_pose_array(body_pose, BODY_POSE_DIM, "body_pose")
    joints = bp.reshape(*bp.shape[:-1], len(BODY_JOINT_NAMES), 3)[..., list(BODY_MIRROR), :]
    return go * MIRROR_SIGN, (joints * MIRROR_SIGN).reshape(bp.shape)


def _slerp_rotvec(a: np.ndarray, b: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Shortest-path quaternion slerp between axis-angles (..., 3) with broadcast ``alpha`` (...)."""
    shape = np.broadcast_shapes(a.shape, b.shape, alpha.shape + (3,))
    # Copies: scipy refuses read-only (broadcast or frozen library) buffers.
    a, b = np.array(np.broadcast_to(a, shape)).reshape(-1, 3), np.array(np.broadcast_to(b, shape)).reshape(-1, 3)
    t = np.broadcast_to(alpha[..., None], shape)[..., 0].reshape(-1, 1)
    qa, qb = Rotation.from_rotvec(a).as_quat(), Rotation.from_rotvec(b).as_quat()
    dot = np.sum(qa * qb, axis=-1, keepdims=True)
    qb = np.where(dot < 0.0, -qb, qb)
    theta = np.arccos(np.clip(np.abs(dot), 0.0, 1.0))
    sin = np.sin(theta)
    small = sin < 1e-6
    safe = np.where(small, 1.0, sin)
    wa = np.where(small, 1.0 - t, np.sin((1.0 - t) * theta) / safe)
    wb = np.where(small, t, np.sin(t * theta) / safe)
    q = wa * qa + wb * qb
    return Rotation.from_quat(q / np.linalg.norm(q, axis=-1, keepdims=True)).as_rotvec().reshape(shape)


def interpolate_poses(pose_a, pose_b, alpha) -> tuple[np.ndarray, np.ndarray]:
    """Per-joint quaternion slerp from ``pose_a`` (alpha 0) to ``pose_b`` (alpha 1).

    Poses are (global_orient (..., 3), body_pose (..., 69)); ``alpha`` (scalar or array) broadcasts
    against their batch shape, so one pair and ``alpha`` of shape (n,) gives n in-betweens.
    Slerp, unlike averaging axis-angles, follows the shortest rotation and never overshoots.
    """
    (ga, ba), (gb, bb) = pose_a, pose_b
    ga, gb = check_pose_array(ga, 3, "pose_a global_orient"), check_pose_array(gb, 3, "pose_b global_orient")
    ba = check_pose_array(ba, BODY_POSE_DIM, "pose_a body_pose")
    bb = check_pose_array(bb, BODY_POSE_DIM, "pose_b body_pose")
    t = np.asarray(alpha, dtype=np.float64)
    if not np.isfinite(t).all() or (t < 0).any() or (t > 1).any():
        raise ValueError(f"alpha must lie in [0, 1] (0 gives pose_a, 1 gives pose_b), got {alpha!r}")
    try:
        batch = np.broadcast_shapes(ga.shape[:-1], gb.shape[:-1], ba.shape[:-1], bb.shape[:-1], t.shape)
    except ValueError as err:
        raise ValueError(
            f"pose batch shapes {ga.shape[:-1]}, {ba.shape[:-1]}, {gb.shape[:-1]}, {bb.shape[:-1]} and alpha "
            f"shape {t.shape} do not broadcast together"
        ) from err
    n = len(BODY_JOINT_NAMES)
    t = np.broadcast_to(t, batch)
    go = _slerp_rotvec(np.broadcast_to(ga, batch + (3,)), np.broadcast_to(gb, batch + (3,)), t)
    ja = np.broadcast_to(ba, batch + (BODY_POSE_DIM,)).reshape(*batch, n, 3)
    jb = np.broadcast_to(bb, batch + (BODY_POSE_DIM,)).reshape(*batch, n, 3)
    bp = _slerp_rotvec(ja, jb, t[..., None])
    return go, bp.reshape(*batch, BODY_POSE_DIM)
