"""A separate set of held-out key poses, for the out-of-distribution evaluation suites only.

The base library (``pose_library``) covers everyday activity; these poses come from activities
it lacks, so that a suite built on them measures how an estimator copes with poses it was not
trained on. For that measurement to mean anything, this module is read by evaluation code only:
no sampler, policy, optimiser or training code may import it, or a sampler could be tuned to
reproduce these exact poses and win unfairly. (``tests/test_heldout_poses.py`` checks that the
base samplers and the library do not.)

Activity categories (``HELDOUT_CATEGORIES`` maps each pose to its category):

* sports: tennis, golf, basketball, soccer, baseball, swimming, boxing, cycling, skiing, skating;
* gymnastics: handstand, cartwheel, bridge, split;
* dance: ballet arabesque, attitude and grand jete, breakdance freeze, hip-hop;
* yoga: warrior I/II/III, tree, downward dog, cobra, crow, triangle, bow, lotus twist;
* martial arts: high kick, side kick, karate stance with punch, crane;
* falling: stumbling forward, falling backwards, slipping sideways;
* climbing: hanging from a bar, reaching with one foot high, climbing a ladder.

Poses are written in the library's readable format (per-joint axis-angle degrees, parent-relative;
see ``pose_library`` for the sign conventions) and converted by ``pose_library.pose_from_degrees``.
Every pose lies inside ``pose_space``'s joint limits. ``global_orient`` may be far from upright
(handstand, cartwheel, lying, falling); asymmetric poses lead with either side, and suites may
mirror them with ``pose_library.mirror_pose``. Every held-out pose differs from every library pose
and its mirror image by at least 40 deg at some joint (the root compared up to a turn about the
vertical).
"""

from __future__ import annotations

from types import MappingProxyType

import numpy as np

from posegen_env.body.pose_library import Degrees3, pose_from_degrees, read_only

# category -> name -> {joint_name or "global_orient": (x, y, z) axis-angle degrees}; unnamed joints are zero.
_HELDOUT_DEGREES: dict[str, dict[str, dict[str, Degrees3]]] = {
    "sports": {
        # Tennis serve, trophy position: left arm points up at the ball, racket elbow cocked, back arched.
        "tennis_serve_trophy": {"global_orient": (-5, 0, 0), "left_hip": (-10, 1, 3), "right_hip": (-2, -1, -3),
            "spine1": (-10, -15, 0), "left_knee": (24, 0, 0), "right_knee": (22, 0, 0), "spine2": (-5, -10, 0),
            "right_ankle": (20, 0, 0), "spine3": (-10, -5, 0), "neck": (-25, 20, 0), "head": (-10, 0, 0),
            "left_shoulder": (0, -42, 48), "right_shoulder": (-56, 21, 2), "right_elbow": (-28, 73, -5)},
        # Top of a golf backswing: bent at the hips, shoulders wound right, hands above the right shoulder.
        "golf_swing_top": {"global_orient": (35, 0, 0), "left_hip": (-44, 2, 6), "right_hip": (-44, -2, -6),
            "spine1": (5, -40, 0), "left_knee": (11, 0, -4), "right_knee": (11, 0, 4), "spine2": (0, -25, 0),
            "spine3": (0, -20, 0), "neck": (10, 45, 0), "head": (0, 20, 0), "left_shoulder": (-5, -96, 90),
            "right_shoulder": (-29, 38, 58), "right_elbow": (-13, 120, -5)},
        # Basketball layup: off the left foot, right knee driven up, right hand lifting the ball high.
        "basketball_layup": {"global_orient": (-5, 0, 0), "left_hip": (12, 0, 3), "right_hip": (-74, -3, -7),
            "right_knee": (69, -1, 1), "left_ankle": (40, 0, 0), "right_ankle": (30, 0, 0), "neck": (-15, 0, 0),
            "left_shoulder": (-12, -33, -30), "right_shoulder": (0, 36, -73), "left_elbow": (-5, -42, 5)},
        # Soccer bicycle kick (overhead volley): lying back in the air, right leg kicking up over the body.
        "soccer_bicycle_kick": {"global_orient": (-110, 0, 0), "left_hip": (41, 0, 6), "right_hip": (-79, -1, 0),
            "left_knee": (52, 0, 5), "neck": (30, 0, 0), "left_shoulder": (0, 17, 17),
            "right_shoulder": (0, -17, -17)},
        # Baseball pitch at release: long stride onto the left leg, throwing arm high in front.
        "baseball_pitch_release": {"global_orient": (20, 0, 0), "left_hip": (-68, 3, 6), "right_hip": (19, -1, -7),
            "spine1": (15, 20, 0), "left_knee": (41, 1, -6), "right_knee": (16, 0, 0), "spine2": (5, 10, 0),
            "left_shoulder": (-23, -8, -58), "right_shoulder": (0, -10, -68), "left_elbow": (-1, -123, 5)},
        # Freestyle swimming: face down and rolled, right arm reaching ahead, left arm finishing the pull.
        "swim_freestyle": {"global_orient": (88, 24, 24), "left_hip": (-15, 0, 0), "right_hip": (10, 0, 0),
            "left_knee": (10, 0, 0), "right_knee": (10, 0, 0), "left_ankle": (40, 0, 0), "right_ankle": (40, 0, 0),
            "neck": (0, 50, 0), "left_shoulder": (0, 3, -72), "right_shoulder": (0, 1, -80)},
        # Boxing jab: side-on stance, left arm straight out, right fist guarding the chin.
        "boxing_jab": {"global_orient": (0, -35, 0), "left_hip": (-6, 13, 15), "right_hip": (7, -1, -16),
            "spine1": (10, 15, 0), "left_knee": (8, 5, -10), "right_knee": (-1, 0, -1), "right_ankle": (20, 0, 0),
            "neck": (10, 20, 0), "left_shoulder": (0, -65, 15), "right_shoulder": (7, 69, 80),
            "right_elbow": (3, 131, 5)},
        # Road cycling: torso low over the bars, left pedal at the top, right leg nearly straight.
        "cycling_road_bike": {"global_orient": (45, 0, 0), "left_hip": (-113, 3, 3), "right_hip": (-67, -1, -3),
            "spine1": (15, 0, 0), "left_knee": (70, 1, -2), "right_knee": (20, 0, 1), "spine2": (10, 0, 0),
            "right_ankle": (20, 0, 0), "neck": (-40, 0, 0), "head": (-15, 0, 0), "left_shoulder": (0, -60, 57),
            "right_shoulder": (0, 60, -57), "left_elbow": (0, -7, -2), "right_elbow": (0, 7, 2)},
        # Downhill ski tuck: deep knee bend, torso low and forward, hands together in front of the face.
        "ski_tuck": {"global_orient": (45, 0, 0), "left_hip": (-113, 4, 5), "right_hip": (-113, -4, -5),
            "spine1": (25, 0, 0), "left_knee": (104, 1, 1), "right_knee": (104, -1, -1), "spine2": (10, 0, 0),
            "left_ankle": (-40, 0, 0), "right_ankle": (-40, 0, 0), "neck": (-45, 0, 0), "head": (-10, 0, 0),
            "left_shoulder": (-60, -88, -16), "right_shoulder": (-60, 88, 16), "left_elbow": (-31, -75, 5),
            "right_elbow": (-31, 75, -5)},
        # Speed skating glide: deep bend on the left leg, right leg pushed out to the side, one arm back.
        "speed_skating_glide": {"global_orient": (55, 0, 0), "left_hip": (-110, 4, 2), "right_hip": (-4, -4, -47),
            "spine1": (20, 0, 0), "left_knee": (81, 1, 0), "neck": (-40, 0, 0), "left_shoulder": (-13, -79, -8),
            "right_shoulder": (0, -40, 60), "left_elbow": (-7, -18, 5)},
    },
    "gymnastics": {
        # Handstand: upside down, arms straight overhead, legs together, toes pointed.
        "handstand": {"global_orient": (0, 0, 180), "spine1": (-10, 0, 0), "left_ankle": (30, 0, 0),
            "right_ankle": (30, 0, 0), "neck": (-20, 0, 0), "left_collar": (0, 0, 15), "right_collar": (0, 0, -15),
            "left_shoulder": (0, -13, 68), "right_shoulder": (0, 13, -68)},
        # Cartwheel, mid-turn: head down to the right, arms in a V, legs split wide in the air.
        "cartwheel": {"global_orient": (0, 0, 135), "left_hip": (2, 4, 45), "right_hip": (2, -4, -45),
            "left_shoulder": (0, 0, 65), "right_shoulder": (0, 0, -65)},
        # Gymnastics bridge (wheel): arched back face up on hands and feet, hips highest.
        "backbend_bridge": {"global_orient": (-105, 0, 0), "left_hip": (60, 2, 12), "right_hip": (60, -2, -12),
            "spine1": (-20, 0, 0), "left_knee": (40, 0, 2), "right_knee": (40, 0, -2), "spine2": (-5, 0, 0),
            "spine3": (-15, 0, 0), "neck": (-40, 0, 0), "left_shoulder": (-17, 45, 68),
            "right_shoulder": (-17, -45, -68), "left_elbow": (-4, -13, 5), "right_elbow": (-4, 13, -5)},
        # Front split on the floor: left leg ahead, right leg behind, hands resting beside the hips.
        "split_front": {"global_orient": (30, 0, 0), "left_hip": (-114, 1, -1), "right_hip": (60, 1, 0),
            "spine1": (-20, 0, 0), "spine2": (-5, 0, 0), "left_ankle": (40, 0, 0), "right_ankle": (40, 0, 0),
            "spine3": (-5, 0, 0), "left_shoulder": (0, -8, -73), "right_shoulder": (0, 7, 73)},
    },
    "dance": {
        # Ballet arabesque: standing on the left leg, right leg straight out behind, arms long.
        "ballet_arabesque": {"global_orient": (35, 0, 0), "left_hip": (-32, 0, 2), "right_hip": (60, -11, -10),
            "spine1": (-15, 0, 0), "spine2": (-5, 0, 0), "right_ankle": (40, 0, 0), "spine3": (-10, 0, 0),
            "neck": (-10, 0, 0), "left_shoulder": (-1, -75, 25), "right_shoulder": (0, -12, -7)},
        # Ballet attitude: right leg raised behind with the knee bent, arms rounded overhead.
        "ballet_attitude": {"global_orient": (25, 0, 0), "left_hip": (-22, 0, 2), "right_hip": (47, -38, -55),
            "spine1": (-15, 0, 0), "right_knee": (66, -18, 10), "spine2": (-5, 0, 0), "left_ankle": (30, 0, 0),
            "right_ankle": (40, 0, 0), "spine3": (-5, 0, 0), "left_shoulder": (-51, -50, 56),
            "right_shoulder": (-49, 49, -56), "left_elbow": (-19, -58, 5), "right_elbow": (-23, 58, -5)},
        # Grand jete: airborne front-back split, arms opened forward and to the side.
        "grand_jete": {"global_orient": (30, 0, 0), "left_hip": (-112, 1, 0), "right_hip": (54, 0, -1),
            "spine1": (-15, 0, 0), "spine2": (-5, 0, 0), "left_ankle": (40, 0, 0), "right_ankle": (40, 0, 0),
            "neck": (-10, 0, 0), "left_shoulder": (0, -60, 45), "right_shoulder": (0, -9, -20)},
        # Breakdance chair freeze: body sideways on the right hand, elbow in the hip, legs in the air.
        "breakdance_chair_freeze": {"global_orient": (0, 0, 100), "left_hip": (-20, 0, 61),
            "right_hip": (-13, 1, 16), "left_knee": (89, -2, 10), "left_shoulder": (0, -18, -22),
            "right_shoulder": (-60, -25, 76), "right_elbow": (-45, 88, -5)},
        # Hip-hop pose: wide squat with knees out, one arm down, forearm across the chest, head tilted.
        "hiphop_wide_stance": {"global_orient": (15, 0, 0), "left_hip": (-49, 38, 32), "right_hip": (-49, -40, -31),
            "spine1": (10, 0, 0), "left_knee": (36, 17, -10), "right_knee": (36, -14, 10), "neck": (10, -30, 10),
            "left_shoulder": (0, -28, -36), "right_shoulder": (-2, 59, 12), "right_elbow": (-2, 116, -5)},
    },
    "yoga": {
        # Warrior I: deep left lunge, back leg straight, arms straight overhead.
        "yoga_warrior_1": {"left_hip": (-71, 3, 6), "right_hip": (47, -1, -11), "spine1": (-10, 0, 0),
            "left_knee": (67, 1, 0), "neck": (-15, 0, 0), "left_collar": (0, 0, 15), "right_collar": (0, 0, -15),
            "left_shoulder": (0, -20, 64), "right_shoulder": (0, 20, -64)},
        # Warrior II: hips open to the side, left knee bent over the ankle, arms level, gaze left.
        "yoga_warrior_2": {"global_orient": (0, 30, 0), "left_hip": (-63, 34, 46), "right_hip": (20, -3, -33),
            "spine1": (0, -15, 0), "left_knee": (72, 15, -10), "spine2": (0, -10, 0), "spine3": (0, -5, 0),
            "neck": (0, 60, 0), "head": (0, 20, 0)},
        # Warrior III: torso and right leg level with the floor, arms forward, standing on the left leg.
        "yoga_warrior_3": {"global_orient": (90, 0, 0), "left_hip": (-87, 1, 5), "right_hip": (3, 0, -3),
            "neck": (-20, 0, 0), "left_collar": (0, 0, 15), "right_collar": (0, 0, -15), "left_shoulder": (0, 0, 66),
            "right_shoulder": (0, 0, -66)},
        # Tree: right sole against the inner left thigh, knee out, hands together above the head.
        "yoga_tree": {"left_hip": (3, 0, 2), "right_hip": (-39, -56, -38), "right_knee": (112, -22, 10),
            "left_shoulder": (-55, -44, 57), "right_shoulder": (-55, 44, -57), "left_elbow": (-27, -52, 5),
            "right_elbow": (-27, 52, -5)},
        # Downward dog: inverted V on hands and feet, hips highest, heels down.
        "yoga_downward_dog": {"global_orient": (135, 0, 0), "left_hip": (-95, 1, 5), "right_hip": (-95, -1, -5),
            "left_ankle": (-35, 0, 0), "right_ankle": (-35, 0, 0), "left_collar": (0, 0, 15),
            "right_collar": (0, 0, -15), "left_shoulder": (0, 0, 66), "right_shoulder": (0, 0, -66)},
        # Cobra: lying face down, chest lifted on bent arms, back and neck extended.
        "yoga_cobra": {"global_orient": (75, 0, 0), "left_hip": (18, -1, 5), "right_hip": (18, 0, -5),
            "spine1": (-20, 0, 0), "spine2": (-5, 0, 0), "left_ankle": (40, 0, 0), "right_ankle": (40, 0, 0),
            "spine3": (-15, 0, 0), "neck": (-30, 0, 0), "left_shoulder": (16, 30, -79),
            "right_shoulder": (17, -30, 79), "left_elbow": (8, -90, -5), "right_elbow": (6, 90, 5)},
        # Crow: balanced on the hands, knees on the upper arms, feet lifted, back rounded.
        "yoga_crow": {"global_orient": (70, 0, 0), "left_hip": (-109, 9, 33), "right_hip": (-109, -9, -32),
            "spine1": (40, 0, 0), "left_knee": (130, 3, -10), "right_knee": (130, -3, 10), "spine2": (20, 0, 0),
            "left_ankle": (40, 0, 0), "right_ankle": (40, 0, 0), "spine3": (20, 0, 0), "neck": (-40, 0, 0),
            "left_shoulder": (-60, -86, -21), "right_shoulder": (-60, 86, 21), "left_elbow": (-45, -56, 5),
            "right_elbow": (-45, 56, -5)},
        # Triangle: legs wide and straight, torso tipped over the left leg, right arm straight up.
        "yoga_triangle": {"global_orient": (0, 0, -50), "left_hip": (-1, 5, 77), "right_hip": (2, 2, 20),
            "spine1": (0, 0, -10), "neck": (0, -45, 0), "left_shoulder": (0, -3, -21), "right_shoulder": (0, 0, -30)},
        # Bow: lying face down, knees bent, hands holding the ankles behind, chest and thighs lifted.
        "yoga_bow": {"global_orient": (90, 0, 0), "left_hip": (31, 0, 6), "right_hip": (31, 0, -6),
            "spine1": (-20, 0, 0), "left_knee": (90, 0, 9), "right_knee": (90, 0, -9), "spine2": (-5, 0, 0),
            "spine3": (-15, 0, 0), "neck": (-40, 0, 0), "left_shoulder": (60, 45, -85),
            "right_shoulder": (60, -45, 85), "left_elbow": (45, 0, -5), "right_elbow": (45, 0, 5)},
        # Seated twist in lotus: legs crossed high, torso turned left, right hand on the left knee.
        "yoga_lotus_twist": {"left_hip": (-87, 80, -26), "right_hip": (-87, -81, 28), "spine1": (0, 40, 0),
            "left_knee": (138, 17, -10), "right_knee": (139, -20, 10), "spine2": (0, 25, 0), "spine3": (0, 20, 0),
            "neck": (0, 30, 0), "left_shoulder": (0, 38, -71), "right_shoulder": (0, 45, 64)},
    },
    "martial_arts": {
        # High front kick: right leg kicked above hip height, leaning back, arms out.
        "high_kick": {"global_orient": (-25, 0, 0), "left_hip": (25, 1, 4), "right_hip": (-115, -2, -5),
            "right_ankle": (-20, 0, 0), "left_shoulder": (0, 20, -3), "right_shoulder": (0, -20, 3)},
        # Side kick: right leg straight out to the side at hip height, torso tipped away, fists up.
        "side_kick": {"global_orient": (0, 0, -25), "left_hip": (3, 1, 28), "right_hip": (-5, -7, -71),
            "spine1": (0, 0, -20), "spine2": (0, 0, -10), "neck": (0, -45, 15), "left_shoulder": (-8, -41, -10),
            "right_shoulder": (-39, 31, 110), "left_elbow": (-4, -106, 5), "right_elbow": (-20, 107, -5)},
        # Karate front stance with a straight right punch, left fist pulled back to the hip.
        "karate_front_stance_punch": {"left_hip": (-44, 3, 9), "right_hip": (42, -1, -13), "left_knee": (34, 1, -6),
            "right_ankle": (-25, 0, 0), "left_shoulder": (35, 45, -73), "right_shoulder": (0, 96, 5),
            "left_elbow": (3, -131, -5)},
        # Crane stance: balanced on the left leg, right knee raised, arms spread like wings.
        "crane_stance": {"left_hip": (3, 0, 2), "right_hip": (-88, -3, -7), "right_knee": (95, 0, 3),
            "right_ankle": (30, 0, 0), "left_shoulder": (-20, 6, 36), "right_shoulder": (-21, -6, -36),
            "left_elbow": (-13, -15, 5), "right_elbow": (-12, 15, -5)},
    },
    "falling": {
        # Stumbling forward: pitched over, catching step with the left leg, arms thrown ahead.
        "stumble_forward": {"global_orient": (45, 0, 0), "left_hip": (-85, 3, 11), "right_hip": (13, -1, -6),
            "left_knee": (17, 1, -8), "right_knee": (33, 0, -1), "neck": (-40, 0, 0), "head": (-10, 0, 0),
            "left_shoulder": (3, -73, 21), "right_shoulder": (3, 73, -21), "left_elbow": (3, -5, -5),
            "right_elbow": (3, 5, 5)},
        # Falling backwards: torso tipping back, left leg flung up, arms reaching forward, chin tucked.
        "fall_backward": {"global_orient": (-45, 0, 0), "left_hip": (-59, 2, 6), "right_hip": (5, -1, -6),
            "spine1": (15, 0, 0), "right_knee": (47, 0, 0), "neck": (35, 0, 0), "head": (10, 0, 0),
            "left_shoulder": (-19, -53, 0), "right_shoulder": (-21, 53, 1), "left_elbow": (-10, -16, 5),
            "right_elbow": (-4, 16, -5)},
        # Slipping sideways: body tipping right, left leg sliding out, arms flung out for balance.
        "slip_sideways": {"global_orient": (0, 0, 35), "left_hip": (-18, 4, 41), "right_hip": (-12, -1, -23),
            "right_knee": (29, 0, -7), "spine2": (0, 0, -15), "neck": (0, 0, -25), "left_shoulder": (-49, -20, 28),
            "right_shoulder": (0, 6, 17), "left_elbow": (-26, -26, 5)},
    },
    "climbing": {
        # Hanging from a bar: arms straight overhead, knees bent behind, toes pointed.
        "hang_from_bar": {"left_hip": (10, 1, 3), "right_hip": (10, -1, -3), "left_knee": (75, 0, 4),
            "right_knee": (75, 0, -4), "left_ankle": (30, 0, 0), "right_ankle": (30, 0, 0),
            "left_collar": (0, 0, 20), "right_collar": (0, 0, -20), "left_shoulder": (0, -3, 59),
            "right_shoulder": (0, 3, -59)},
        # Rock climbing: right arm reaching up for a hold, left foot stepped high and wide.
        "climb_reach_foot_high": {"left_hip": (-80, 26, 46), "right_hip": (-3, 0, -6), "left_knee": (85, 14, -10),
            "right_ankle": (20, 0, 0), "neck": (-30, 0, 0), "right_collar": (0, 0, -10),
            "left_shoulder": (-44, -6, -40), "right_shoulder": (0, 11, -68), "left_elbow": (-22, -117, 5)},
        # Climbing a ladder: hands on rungs at head and chest height, left knee raised to the next rung.
        "climb_ladder": {"global_orient": (5, 0, 0), "left_hip": (-73, 3, 5), "right_hip": (-2, 0, -3),
            "left_knee": (70, 1, -3), "left_shoulder": (-60, -80, -19), "right_shoulder": (-25, 45, 63),
            "left_elbow": (-45, -57, 5), "right_elbow": (-16, 63, -5)},
    },
}


HELDOUT_POSES: MappingProxyType[str, tuple[np.ndarray, np.ndarray]] = MappingProxyType({
    name: read_only(pose_from_degrees(spec))
    for poses in _HELDOUT_DEGREES.values() for name, spec in poses.items()
})
HELDOUT_CATEGORIES: MappingProxyType[str, str] = MappingProxyType({
    name: category for category, poses in _HELDOUT_DEGREES.items() for name in poses
})


def heldout_pose_names() -> list[str]:
    """Names of the held-out poses, in a fixed order (grouped by category)."""
    return list(HELDOUT_POSES)


def get_heldout_pose(name: str) -> tuple[np.ndarray, np.ndarray]:
    """A writable copy of one held-out pose: (global_orient (3,), body_pose (69,)) in radians."""
    if name not in HELDOUT_POSES:
        raise KeyError(f"no held-out pose named {name!r}; heldout_pose_names() lists the {len(HELDOUT_POSES)}")
    global_orient, body_pose = HELDOUT_POSES[name]
    return global_orient.copy(), body_pose.copy()


def heldout_array() -> tuple[np.ndarray, np.ndarray]:
    """All held-out poses stacked in ``heldout_pose_names()`` order: (P, 3) and (P, 69) radians."""
    return (np.stack([g for g, _ in HELDOUT_POSES.values()]), np.stack([b for _, b in HELDOUT_POSES.values()]))
