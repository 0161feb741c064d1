"""Ray casting against triangle meshes with Embree (embreex), shared by every renderer."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from embreex import rtcore_scene

_EMBREE_DEVICE = None
_DEVICE_LOCK = threading.Lock()


def embree_faces(faces: np.ndarray) -> np.ndarray:
    """``faces`` (F, 3) in the form ``embree_scene`` copies fastest, for meshes cast again and again.

    embreex copies the index buffer one element at a time through Python indexing
    (``faces[i][j]``); with one tuple of ints per triangle each row is a plain tuple instead of a
    new numpy view, which makes building a scene about twice as fast."""
    rows = np.empty(len(faces), dtype=object)
    rows[:] = [tuple(f) for f in np.asarray(faces, dtype=np.int64).tolist()]
    return rows


def embree_scene(vertices: np.ndarray, faces: np.ndarray) -> rtcore_scene.EmbreeScene:
    """An Embree scene of one triangle mesh (the device is shared: creating one costs more than a BVH).

    ``faces``: (F, 3) vertex indices, or ``embree_faces`` of them."""
    global _EMBREE_DEVICE
    from embreex import rtcore, rtcore_scene
    from embreex.mesh_construction import TriangleMesh

    with _DEVICE_LOCK:  # renders run in several threads
        if _EMBREE_DEVICE is None:
            _EMBREE_DEVICE = rtcore.EmbreeDevice()
    scene = rtcore_scene.EmbreeScene(_EMBREE_DEVICE)
    vertices = np.ascontiguousarray(vertices, np.float64)  # stored as float32 by Embree; float64 is copied faster
    if faces.dtype != object:
        TriangleMesh(scene=scene, vertices=vertices, indices=np.ascontiguousarray(faces, np.int32))
        return scene
    try:
        TriangleMesh(scene=scene, vertices=vertices, indices=faces)
    except (TypeError, ValueError):  # an embreex that only takes integer arrays
        scene = rtcore_scene.EmbreeScene(_EMBREE_DEVICE)
        TriangleMesh(scene=scene, vertices=vertices, indices=np.array(faces.tolist(), dtype=np.int32))
    return scene


def next_hit(scene, origins: np.ndarray, dirs: np.ndarray, t_from: np.ndarray,
             counts: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The first hit beyond ``t_from`` along each ray: (hit mask, triangle, t, barycentric (N, 3)).

    With ``counts``, ``scene`` is a list of scenes and the rays come grouped by scene: the first
    ``counts[0]`` rays are cast into ``scene[0]``, the next ``counts[1]`` into ``scene[1]``, and so on."""
    start = (origins + (t_from + 1e-4)[:, None] * dirs).astype(np.float32)
    dirs = dirs.astype(np.float32)
    if counts is None:
        out = scene.run(start, dirs, output=1)
    else:
        ends = np.cumsum(counts)
        parts = [s.run(start[e - n:e], dirs[e - n:e], output=1) for s, n, e in zip(scene, counts, ends, strict=True)]
        out = {k: np.concatenate([p[k] for p in parts]) for k in ("primID", "u", "v", "tfar")}
    hit = out["primID"] >= 0
    u, v = out["u"], out["v"]
    return hit, out["primID"], t_from + 1e-4 + out["tfar"], np.stack([1 - u - v, u, v], axis=1)
