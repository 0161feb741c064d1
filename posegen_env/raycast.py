"""Ray casting against triangle meshes with Embree (embreex), shared by every renderer."""

from __future__ import annotations

import numpy as np

_EMBREE_DEVICE = None


def embree_scene(vertices: np.ndarray, faces: np.ndarray):
    """An Embree scene of one triangle mesh (the device is shared: creating one costs more than a BVH)."""
    global _EMBREE_DEVICE
    from embreex import rtcore, rtcore_scene
    from embreex.mesh_construction import TriangleMesh

    if _EMBREE_DEVICE is None:
        _EMBREE_DEVICE = rtcore.EmbreeDevice()
    scene = rtcore_scene.EmbreeScene(_EMBREE_DEVICE)
    TriangleMesh(scene=scene, vertices=np.ascontiguousarray(vertices, np.float32),
                 indices=np.ascontiguousarray(faces, np.int32))
    return scene


def next_hit(scene, origins: np.ndarray, dirs: np.ndarray, t_from: np.ndarray):
    """The first hit beyond ``t_from`` along each ray: (hit mask, triangle, t, barycentric (N, 3))."""
    start = (origins + (t_from + 1e-4)[:, None] * dirs).astype(np.float32)
    out = scene.run(start, dirs.astype(np.float32), output=1)
    hit = out["primID"] >= 0
    u, v = out["u"], out["v"]
    return hit, out["primID"], t_from + 1e-4 + out["tfar"], np.stack([1 - u - v, u, v], axis=1)
