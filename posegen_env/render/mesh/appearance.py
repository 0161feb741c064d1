"""Procedural clothing and skin for the ground-truth renderer.

Colour is a function of a surface point's *canonical* position (the mean-shape T-pose) and
of the body part it belongs to (its dominant skinning joint), so it moves with the body like
a texture and works on any SMPL-topology or PoseGen body without UV maps. It has a striped
shirt with differently coloured sleeves, a chest logo on the left and a mark on the back,
jeans with a patch on the right knee and a back pocket on the left, shoes with white soles,
a watch on the left wrist, hair and a face, so front/back and left/right differ in every view.

Shading is baked in canonical space (a fixed light in the body's frame): a surface point
always has the same colour, whatever the pose or view. That keeps the captures consistent
across views, which is what a human NeRF assumes when it is fitted on them.
"""

from __future__ import annotations

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


def _parts(*names: str) -> list[int]:
    return [JOINT_INDEX[n] for n in names]


class ProceduralAppearance:
    """Albedo and baked shading of surface points given by (triangle, barycentric coordinates)."""

    def __init__(self, rest_vertices: np.ndarray, faces: np.ndarray, lbs_weights: np.ndarray,
                 rest_joints: np.ndarray, landmarks: dict[str, int] | None = None):
        import trimesh

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
        shoulder_x = abs(j[JOINT_INDEX["left_shoulder"]][0])
        elbow_x = abs(j[JOINT_INDEX["left_elbow"]][0])
        self.sleeve_end_x = shoulder_x + 0.55 * (elbow_x - shoulder_x)
        self.wrist_x = abs(j[JOINT_INDEX["left_wrist"]][0])
        self.knee = j[JOINT_INDEX["right_knee"]]
        self.chest = j[JOINT_INDEX["spine3"]]

    @classmethod
    def for_body(cls, body_model) -> ProceduralAppearance:
        return cls(body_model.rest_vertices(), body_model.faces, body_model.lbs_weights.cpu().numpy(),
                   body_model.rest_joints(), body_model.landmarks)

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
        x, y, z = p[:, 0], p[:, 1], p[:, 2]
        out = np.tile(SKIN, (len(p), 1))

        def paint(mask, colour):
            out[mask] = colour

        torso = np.isin(part, _parts("pelvis", "spine1", "spine2", "spine3", "left_collar", "right_collar",
                                     "left_shoulder", "right_shoulder", "left_elbow", "right_elbow"))
        legs = np.isin(part, _parts("left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
                                    "right_ankle", "left_foot", "right_foot"))
        arms_out = np.abs(x) > self.sleeve_end_x
        # Shirt: horizontal stripes on the trunk, one sleeve colour per side, logo and back mark.
        shirt = torso & (y > self.waist_y) & ~arms_out
        stripes = (np.floor((y - self.waist_y) / 0.045) % 2 == 1)
        sleeve = shirt & (np.abs(x) > abs(self.joints[JOINT_INDEX["left_shoulder"]][0]) - 0.02)
        paint(shirt, SHIRT)
        paint(shirt & stripes & ~sleeve, SHIRT_STRIPE)
        paint(sleeve & (x > 0), LEFT_SLEEVE)
        paint(sleeve & (x < 0), RIGHT_SLEEVE)
        logo = shirt & (z > 0) & (np.abs(x - 0.09) < 0.035) & (np.abs(y - (self.chest[1] + 0.02)) < 0.035)
        paint(logo, LOGO)
        back = shirt & (z < self.chest[2] - 0.03)
        paint(back & (np.abs(x) < 0.025), BACK_MARK)
        paint(back & (np.abs(y - self.chest[1]) < 0.02) & (np.abs(x) < 0.1), BACK_MARK)
        # Trousers: everything of the legs and hips below the waist, belt, seams, a knee patch.
        trousers = (torso | legs) & (y <= self.waist_y)
        paint(trousers, JEANS)
        paint(trousers & (y > self.waist_y - 0.035), BELT)
        pocket = trousers & (z < 0) & (x > 0.03) & (x < 0.13) & (y < self.waist_y - 0.05) & (y > self.waist_y - 0.15)
        paint(pocket, POCKET)
        patch = trousers & (x < 0) & (z > 0) & (np.abs(y - self.knee[1]) < 0.05) & (np.abs(x - self.knee[0]) < 0.05)
        paint(patch, KNEE_PATCH)
        # Shoes with white soles.
        shoes = legs & (y < self.shoe_top_y)
        paint(shoes, SHOE)
        paint(shoes & (y < self.sole_y), SOLE)
        # Watch on the left wrist.
        paint((x > self.wrist_x - 0.04) & (x < self.wrist_x - 0.01) & ~torso & ~legs, WATCH)
        self._paint_head(p, part, out)
        return out

    def _paint_head(self, p: np.ndarray, part: np.ndarray, out: np.ndarray) -> None:
        head = part == JOINT_INDEX["head"]
        q = p - self.nose  # face coordinates: origin at the nose tip
        x, y, z = q[:, 0], q[:, 1], q[:, 2]
        hair = head & ((y > 0.075) | ((z < -0.09) & (y > -0.06)) | ((y > 0.03) & (np.abs(x) > 0.065)))
        out[hair] = HAIR
        front = head & (z > -0.06) & ~hair
        for side in (-1.0, 1.0):
            eye = front & (((x - side * 0.032) / 0.014) ** 2 + ((y - 0.035) / 0.007) ** 2 < 1.0)
            out[eye] = EYE
            brow = front & (np.abs(x - side * 0.033) < 0.018) & (np.abs(y - 0.055) < 0.004)
            out[brow] = HAIR
        mouth = front & (np.abs(x) < 0.022) & (np.abs(y + 0.035) < 0.006)
        out[mouth] = LIPS
