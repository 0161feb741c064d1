"""Casts: subjects sharing one geometry, stored once; a mixed batch renders each subject as it renders alone."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from posegen_env.body.body_model import load_body_model
from posegen_env.data.capture import load_capture
from posegen_env.distributions import UniformPoseSampler
from posegen_env.render.avatar import AvatarError, CastSubject, load_avatar, load_cast, save_avatar, save_cast
from posegen_env.render.avatar.cast import cast_state
from posegen_env.render.avatar.checkpoint import avatar_state, build_avatar
from posegen_env.render.avatar.field import SubjectColours, colour_mlp
from posegen_env.render.avatar.fit import fitted_parameters, new_avatar, new_subject, photometric_loss
from posegen_env.render.avatar.loading import load_geometry
from posegen_env.render.avatar.proxy import RayHits
from posegen_env.render.camera import orbit_camera

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def body():
    return load_body_model()


@pytest.fixture(scope="module")
def geometry(body):
    """A small avatar (3 cm voxels) with a random density, so that rays stop at different depths (in
    float16 values, as an avatar file holds them)."""
    avatar = new_avatar(body, voxel_size=0.03, proxy_faces=1000)
    with torch.no_grad():
        density = avatar.field.density
        logits = torch.empty(len(density) - 1, 1).uniform_(-2.0, 6.0, generator=torch.Generator().manual_seed(0))
        density[:-1] = logits.half().float()
    return avatar.eval()


def subject_avatar(geometry, seed: int):
    """The geometry with its own random colour table and MLP: a subject in other clothes."""
    g = torch.Generator().manual_seed(seed)
    state = avatar_state(geometry)
    state["field"]["colour"] = torch.randn(state["field"]["colour"].shape, generator=g).half()
    state["field"]["mlp"] = {k: torch.randn(v.shape, generator=g) for k, v in state["field"]["mlp"].items()}
    return build_avatar(state, geometry.body)


@pytest.fixture(scope="module")
def subjects(geometry):
    avatars = [subject_avatar(geometry, seed) for seed in range(3)]
    g = torch.Generator().manual_seed(1)
    people = [CastSubject(f"person_{k}", torch.randn(10, generator=g), heldout=k == 2, outfit={"top": ["shirt", k]},
                          psnr=30.0 + k) for k in range(3)]
    return avatars, people


@pytest.fixture(scope="module")
def cast_file(tmp_path_factory, subjects):
    path = tmp_path_factory.mktemp("cast") / "cast.pt"
    save_cast(path, *subjects, meta={"made_by": "test"})
    return path


def views(renderer, poses, betas, width=24):
    joints = renderer.posed_joints(poses["global_orient"], poses["body_pose"], betas).numpy()
    return [orbit_camera(37.0 * k, 10.0, 3.0, target=j[0], fov_deg=45, width=width) for k, j in enumerate(joints)]


def test_cast_file_round_trip(cast_file, subjects, body):
    avatars, people = subjects
    cast = load_cast(cast_file, body)
    assert cast.names == ["person_0", "person_1", "person_2"]
    for k, person in enumerate(people):
        loaded = cast.subjects[k]
        assert (loaded.heldout, loaded.outfit, loaded.psnr) == (person.heldout, person.outfit, person.psnr)
        assert torch.equal(cast.betas[k], person.betas)
        alone = cast.avatar(k)
        assert torch.equal(alone.field.colour, avatars[k].field.colour)
        assert torch.equal(alone.field.density, avatars[k].field.density)
        for name, value in avatars[k].field.mlp.state_dict().items():
            assert torch.equal(alone.field.mlp.state_dict()[name], value)
    state = torch.load(cast_file, weights_only=True)
    assert "density" in state["geometry"]["field"] and all("density" not in s for s in state["subjects"])
    assert state["meta"] == {"made_by": "test"}
    # The geometry is stored once: a subject more costs its colour table and MLP, not another avatar.
    one = cast_file.with_name("one.pt")
    save_cast(one, avatars[:1], people[:1])
    per_subject = (cast_file.stat().st_size - one.stat().st_size) / 2
    avatar_file = cast_file.with_name("avatar.pt")
    save_avatar(avatar_file, avatars[0])
    assert per_subject < 0.5 * avatar_file.stat().st_size


def test_cast_refuses_another_body(cast_file, tmp_path, body):
    state = torch.load(cast_file, weights_only=True)
    state["body_identifier"] = "SMPL_NEUTRAL-6890v-0123456789"
    other = tmp_path / "other_body.pt"
    torch.save(state, other)
    with pytest.raises(AvatarError, match="other_body.pt: fitted on body 'SMPL_NEUTRAL"):
        load_cast(other, body)


def test_unknown_subjects_are_refused(cast_file, body):
    cast = load_cast(cast_file, body)
    pose = (np.zeros(3), np.zeros(69))
    cams = [orbit_camera(0, 0, 3.0, width=16)]
    with pytest.raises(AvatarError, match="no subject named 'nobody'.*person_0, person_1, person_2"):
        cast.render(*pose, cameras=cams, subjects="nobody")
    with pytest.raises(AvatarError, match="subject index 3 out of range.*0..2"):
        cast.render(*pose, cameras=cams, subjects=[3])
    with pytest.raises(AvatarError, match="3 subjects.*pass subjects="):
        cast.render(*pose, cameras=cams)
    with pytest.raises(AvatarError, match="got 2 subjects for 3 images"):
        cast.render_posed(cast.pose(*pose, subjects=0), cams * 3, subjects=[0, 1])
    with pytest.raises(AvatarError, match="name or an index"):
        cast.subject_index([1.5])


def test_malformed_cast_files(cast_file, tmp_path, geometry, body):
    with pytest.raises(AvatarError, match="not found.*make_cast.py"):
        load_cast(tmp_path / "missing.pt", body)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(cast_file.read_bytes()[:1000])
    with pytest.raises(AvatarError, match="corrupt"):
        load_cast(corrupt, body)
    avatar_file = tmp_path / "avatar.pt"
    save_avatar(avatar_file, geometry)
    with pytest.raises(AvatarError, match="not a PoseGen cast"):
        load_cast(avatar_file, body)
    older = torch.load(cast_file, weights_only=True) | {"format": "posegen-cast-v0"}
    torch.save(older, tmp_path / "older.pt")
    with pytest.raises(AvatarError, match=r"format 'posegen-cast-v0', which this version does not read .*make_cast"):
        load_cast(tmp_path / "older.pt", body)

    def broken(name, change):
        state = torch.load(cast_file, weights_only=True)
        change(state)
        torch.save(state, tmp_path / name)
        return tmp_path / name

    cases = [("no_subjects.pt", lambda s: s.update(subjects=[]), "no subjects"),
             ("no_name.pt", lambda s: s["subjects"][1].pop("name"), "subject 1 has no valid name"),
             ("short_colour.pt", lambda s: s["subjects"][0].update(colour=s["subjects"][0]["colour"][:5]),
              "colour table has shape"),
             ("long_betas.pt", lambda s: s["subjects"][0].update(betas=torch.zeros(11)), "at most 10"),
             ("bad_mlp.pt", lambda s: s["subjects"][2]["mlp"].pop("2.bias"), "malformed cast file.*make_cast.py"),
             ("no_geometry.pt", lambda s: s.pop("geometry"), "malformed cast file")]
    for name, change, message in cases:
        with pytest.raises(AvatarError, match=message):
            load_cast(broken(name, change), body)


def test_subjects_must_share_the_geometry(geometry, subjects):
    avatars, people = subjects
    other = new_avatar(geometry.body, voxel_size=0.03, proxy_faces=1000)  # its own (untrained) density
    shared = "'person_1' does not share the geometry of subject 'person_0' \\(different density\\).*--geometry"
    with pytest.raises(AvatarError, match=shared):
        cast_state([avatars[0], other], people[:2])
    with pytest.raises(AvatarError, match="unique"):
        cast_state(avatars[:2], [people[0], people[0]])
    with pytest.raises(AvatarError, match="JSON-able"):
        cast_state(avatars[:1], [CastSubject("x", torch.zeros(10), outfit={"colour": torch.zeros(3)})])


def test_one_subject_cast_renders_as_the_default_avatar(tmp_path):
    """A cast of the default avatar alone is that avatar: the same images, bit for bit."""
    avatar = load_avatar()
    path = tmp_path / "default_cast.pt"
    save_cast(path, [avatar], [CastSubject("default", torch.zeros(10))])
    cast = load_cast(path, avatar.body)
    poses = UniformPoseSampler().sample(16, np.random.default_rng(2))
    zeros = np.zeros((16, 10), np.float32)
    cams = views(avatar, poses, zeros, width=32)
    expected = avatar.render(poses["global_orient"], poses["body_pose"], zeros, cams)
    for subjects in (None, "default", [0] * 16):
        got = cast.render(poses["global_orient"], poses["body_pose"], None, cams, subjects=subjects)
        for field in ("rgb", "alpha", "joints3d", "joints2d"):
            assert torch.equal(getattr(got, field), getattr(expected, field)), (subjects, field)


def test_mixed_batch_equals_each_subject_alone(cast_file, body):
    """Image i shows subject i mod 3 with its betas: what that subject's own avatar renders in the same
    batch (the same joints; colours to float32 rounding, bit for bit with one torch thread), and to
    float32 rounding of the batched skinning what it renders alone."""
    cast = load_cast(cast_file, body)
    n = 18  # large enough to be rendered as parts in threads
    poses = UniformPoseSampler().sample(n, np.random.default_rng(5))
    mixed = [k % 3 for k in range(n)]
    betas = cast.betas[mixed]
    cams = views(cast, poses, betas)
    bodies = cast.pose(poses["global_orient"], poses["body_pose"], subjects=mixed)
    assert torch.equal(bodies.joints, cast.posed_joints(poses["global_orient"], poses["body_pose"], betas))
    batch = cast.render_posed(bodies, cams, subjects=[cast.names[s] for s in mixed])
    assert torch.equal(batch.rgb, cast.render(poses["global_orient"], poses["body_pose"], None, cams,
                                              subjects=mixed).rgb)
    for s in range(3):
        avatar = cast.avatar(s)
        same_batch = avatar.render(poses["global_orient"], poses["body_pose"], betas, cams)
        mine = [k for k in range(n) if mixed[k] == s]
        for field in ("joints3d", "joints2d"):
            assert torch.equal(getattr(batch, field)[mine], getattr(same_batch, field)[mine]), (s, field)
        for field in ("rgb", "alpha"):  # colour blocks of other sizes: float32 rounding with several threads
            torch.testing.assert_close(getattr(batch, field)[mine], getattr(same_batch, field)[mine], atol=1e-5,
                                       rtol=0, msg=f"subject {s}, {field}")
        k = mine[1]
        alone = avatar.render(poses["global_orient"][k], poses["body_pose"][k], betas[k], [cams[k]])
        assert torch.allclose(batch.rgb[k], alone.rgb[0], atol=2e-4)
    assert batch.alpha.reshape(n, -1).max(dim=1).values.min() > 0.5  # every view sees the person
    colours = [batch.rgb[k][batch.alpha[k] > 0.5].mean(dim=0) for k in range(3)]
    assert min((colours[a] - colours[b]).abs().max() for a, b in ((0, 1), (1, 2), (0, 2))) > 0.02


def test_one_pose_for_several_subjects(cast_file, body):
    """One pose seen by one camera per subject: each image has its subject's build and colour."""
    cast = load_cast(cast_file, body)
    cam = orbit_camera(30, 10, 3.0, width=24)
    out = cast.render(np.zeros(3), np.zeros(69), None, [cam] * 3, subjects=[2, 0, 1])
    for k, s in enumerate([2, 0, 1]):
        alone = cast.avatar(s).render(np.zeros(3), np.zeros(69), cast.betas[s], [cam])
        assert torch.allclose(out.rgb[k], alone.rgb[0], atol=2e-4)
        assert torch.allclose(out.joints3d[k], alone.joints3d[0], atol=1e-5)


def test_colour_only_fit_keeps_the_density(geometry, tmp_path):
    """A new subject on a shared geometry: the gradient reaches only its colour, and a few steps change
    the colour table and the MLP but not the density."""
    subject = new_subject(geometry, background=(0, 0, 0))
    voxels, mlp = fitted_parameters(subject.field)
    assert voxels == [subject.field.colour] and not subject.field.density.requires_grad
    optimizer = torch.optim.Adam([{"params": voxels, "lr": 0.05}, {"params": mlp, "lr": 1e-2}])
    poses = UniformPoseSampler().sample(2, np.random.default_rng(6))
    _, hits, _, _ = subject.cast(poses["global_orient"], poses["body_pose"], None, None,
                                 views(subject, poses, None, width=32))
    rays = RayHits.concat(hits)
    target = torch.full((len(rays.pixel), 3), 0.3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(3):
        loss = photometric_loss(subject.field, rays, target, torch.ones(len(rays.pixel)), torch.zeros(3), 8, generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert subject.field.density.grad is None
    assert torch.equal(subject.field.density, geometry.field.density)
    assert not torch.equal(subject.field.colour, geometry.field.colour)
    assert not torch.equal(subject.field.mlp[0].weight, geometry.field.mlp[0].weight)
    # Saved, the subject joins the geometry's cast; from a cast file, the geometry is its first subject's.
    save_avatar(tmp_path / "subject.pt", subject)
    save_cast(tmp_path / "cast.pt", [geometry, load_avatar(tmp_path / "subject.pt", geometry.body)],
              [CastSubject("a", torch.zeros(10)), CastSubject("b", torch.zeros(10))])
    assert torch.equal(load_geometry(tmp_path / "cast.pt", geometry.body).field.density, geometry.field.density)


@pytest.fixture(scope="module")
def quick_capture(tmp_path_factory):
    out = tmp_path_factory.mktemp("capture") / "quick"
    subprocess.run([sys.executable, str(ROOT / "train" / "make_capture.py"), "--quick", "--out", str(out)],
                   check=True, capture_output=True)
    return out


def test_fit_script_fits_only_the_colour_on_a_geometry(quick_capture, geometry, tmp_path):
    geometry_file = tmp_path / "geometry.pt"
    save_avatar(geometry_file, geometry)
    out = tmp_path / "subject.pt"
    subprocess.run([sys.executable, str(ROOT / "train" / "fit_avatar.py"), "--capture", str(quick_capture),
                    "--geometry", str(geometry_file), "--out", str(out), "--quick"], check=True, capture_output=True)
    fitted, original = load_avatar(out, geometry.body), load_avatar(geometry_file, geometry.body)
    assert torch.equal(fitted.field.density, original.field.density)
    assert not torch.equal(fitted.field.colour, original.field.colour)
    assert torch.load(out, weights_only=True)["meta"]["geometry"] == str(geometry_file)


def test_subject_colours_in_any_order():
    """Samples of mixed subjects in any order get their own subject's colour."""
    g = torch.Generator().manual_seed(3)
    tables, mlps = torch.randn(3, 50, 8, generator=g), [colour_mlp(8, 16) for _ in range(3)]
    rows, weights = torch.randint(0, 50, (40, 8), generator=g), torch.rand(40, 8, generator=g)
    subject = torch.randint(0, 3, (40,), generator=g)
    got = SubjectColours(tables, mlps).colour_at(rows, weights, subject)
    with torch.no_grad():
        for s in range(3):
            mine = subject == s
            features = F.embedding_bag(rows[mine], tables[s], per_sample_weights=weights[mine], mode="sum")
            assert torch.allclose(got[mine], torch.sigmoid(mlps[s](features)), atol=1e-6)


@pytest.mark.skipif("--outfit-seed" not in (ROOT / "train" / "make_capture.py").read_text(),
                    reason="train/make_capture.py has no --outfit-seed and --betas-seed yet")
def test_make_cast_quick_builds_and_resumes(tmp_path, capsys):
    import make_cast

    out = tmp_path / "cast.pt"
    args = ["--out", str(out), "--quick", "--subjects", "2", "--heldout", "1"]
    make_cast.main(args)
    cast = load_cast(out)
    assert cast.names == ["subject_00", "subject_01"] and [s.heldout for s in cast.subjects] == [False, True]
    assert all(s.psnr > 15 and s.outfit for s in cast.subjects)
    assert not torch.equal(cast.betas[0], cast.betas[1])
    capture = load_capture(out.with_suffix(".work") / "subject_01" / "capture")
    assert torch.allclose(cast.betas[1], torch.as_tensor(capture.frame_params(0)["betas"]))
    (out.with_suffix(".work") / "subject_01" / "result.json").unlink()  # as if interrupted after the fit
    capsys.readouterr()
    make_cast.main(args)
    assert "fitting avatar" not in capsys.readouterr().err  # nothing refitted
    assert load_cast(out).names == cast.names


def test_load_renderer_reads_an_avatar_or_a_cast_and_names_both_when_neither(cast_file, body, tmp_path):
    from posegen_env.render.avatar.cast import CastRenderer
    from posegen_env.render.avatar.loading import load_renderer

    assert isinstance(load_renderer(cast_file, body), CastRenderer)
    assert not isinstance(load_renderer(None, body), CastRenderer)
    foreign = tmp_path / "foreign.pt"
    torch.save({"format": "something-else"}, foreign)
    with pytest.raises(AvatarError, match="not a PoseGen avatar or cast file"):
        load_renderer(foreign, body)
