"""SMPL joint definitions shared by every module: names, kinematic tree, evaluation subset.

All joint arrays in PoseGen use SMPL's 24-joint order below (root = pelvis).
"""

SMPL_JOINT_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee",
    "spine2", "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot",
    "neck", "left_collar", "right_collar", "head", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hand", "right_hand",
)
NUM_JOINTS = len(SMPL_JOINT_NAMES)
NUM_BODY_JOINTS = NUM_JOINTS - 1  # SMPL's body_pose excludes the root
JOINT_INDEX = {name: i for i, name in enumerate(SMPL_JOINT_NAMES)}

# Parent of each joint (SMPL kintree_table row 0); parents come before children.
SMPL_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)

# Left <-> right partner of every joint (itself for the centre line).
MIRROR_JOINTS = tuple(
    JOINT_INDEX[n.replace("left_", "@").replace("right_", "left_").replace("@", "right_")]
    for n in SMPL_JOINT_NAMES
)

# The 14-joint evaluation subset used by the metrics (LSP / Human3.6M style):
# ankles, knees, hips, wrists, elbows, shoulders, neck and head.
EVAL_JOINT_NAMES = (
    "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
    "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow",
    "left_wrist", "neck", "head",
)
EVAL_JOINTS = tuple(JOINT_INDEX[n] for n in EVAL_JOINT_NAMES)
ROOT_JOINT = JOINT_INDEX["pelvis"]
