"""Ray casting: every accepted form of the faces builds the same scene, and hits land where geometry says."""

import numpy as np
import pytest
from embreex import mesh_construction

from posegen_env.render.raycast import embree_faces, embree_scene, next_hit

# Two triangles making the unit square in the plane z = 0 (x, y in [0, 1]).
SQUARE_VERTICES = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], dtype=np.float64)
SQUARE_FACES = np.array([[0, 1, 2], [0, 2, 3]])


def cast_down(scene, xy: np.ndarray, t_from: float = 0.0, counts=None):
    """Rays from z = 2 straight down at each (x, y), looking for hits beyond ``t_from``."""
    origins = np.column_stack([xy, np.full(len(xy), 2.0)])
    dirs = np.tile([0.0, 0.0, -1.0], (len(xy), 1))
    return next_hit(scene, origins, dirs, np.full(len(xy), t_from), counts)


XY = np.array([[0.7, 0.2], [0.2, 0.7], [0.5, 0.5], [1.5, 0.5], [-0.1, 0.3]])


def test_hits_the_square_at_its_depth_and_misses_outside():
    hit, tri, t, bary = cast_down(embree_scene(SQUARE_VERTICES, SQUARE_FACES), XY)
    assert hit.tolist() == [True, True, True, False, False]
    assert tri[0] == 0 and tri[1] == 1
    np.testing.assert_allclose(t[hit], 2.0, atol=1e-4)
    # barycentric weights rebuild the hit point from the triangle's corners
    point = np.einsum("nk,nkd->nd", bary[hit], SQUARE_VERTICES[SQUARE_FACES[tri[hit]]])
    np.testing.assert_allclose(point[:, :2], XY[hit], atol=1e-5)


def test_object_rows_and_the_integer_fallback_cast_alike(monkeypatch):
    expected = cast_down(embree_scene(SQUARE_VERTICES, SQUARE_FACES), XY)
    rows = embree_faces(SQUARE_FACES)
    assert rows.dtype == object and rows[1] == (0, 2, 3)
    np.testing.assert_array_equal(cast_down(embree_scene(SQUARE_VERTICES, rows), XY)[1], expected[1])

    real = mesh_construction.TriangleMesh
    seen = []

    def integer_only(scene, vertices, indices):
        seen.append(indices.dtype)
        if indices.dtype == object:
            raise TypeError("indices must be an integer array")
        return real(scene=scene, vertices=vertices, indices=indices)

    monkeypatch.setattr(mesh_construction, "TriangleMesh", integer_only)
    fallback = cast_down(embree_scene(SQUARE_VERTICES, rows), XY)
    assert seen == [np.dtype(object), np.dtype(np.int32)]
    for got, want in zip(fallback, expected, strict=True):
        np.testing.assert_allclose(got, want)


def test_grouped_rays_go_to_their_own_scene():
    lifted = SQUARE_VERTICES + [0.0, 0.0, 1.0]  # the same square 1 m higher: hits come 1 m sooner
    scenes = [embree_scene(SQUARE_VERTICES, SQUARE_FACES), embree_scene(lifted, SQUARE_FACES)]
    hit, _, t, _ = cast_down(scenes, np.array([[0.5, 0.5]] * 3), counts=[1, 2])
    assert hit.all()
    np.testing.assert_allclose(t, [2.0, 1.0, 1.0], atol=1e-4)


@pytest.mark.parametrize("t_from, depth", [(0.0, 1.0), (1.5, 2.0)])
def test_casting_resumes_beyond_t_from(t_from, depth):
    """Two stacked squares: starting past the upper one (t = 1) finds the lower one (t = 2)."""
    vertices = np.concatenate([SQUARE_VERTICES, SQUARE_VERTICES + [0.0, 0.0, 1.0]])
    scene = embree_scene(vertices, np.concatenate([SQUARE_FACES, SQUARE_FACES + 4]))
    hit, _, t, _ = cast_down(scene, np.array([[0.5, 0.5]]), t_from)
    assert hit[0]
    np.testing.assert_allclose(t, depth, atol=1e-4)
