"""train/evaluate.py evaluates any estimator on any dataset folder and writes JSON."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from posegen_env.data.dataset import write_dataset
from posegen_env.render.camera import orbit_camera
from posegen_env.render.step import PoseBatch

ROOT = Path(__file__).resolve().parents[2]


def bare_env(tmp_path: Path) -> dict:
    """No PATH, and the user's module folder ahead of any PYTHONPATH the suite runs with."""
    return {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]), "PATH": ""}


def test_evaluate_script_on_a_dataset_folder(tmp_path):
    rng = np.random.default_rng(0)
    n = 5
    joints = rng.normal(0, 0.3, (n, 24, 3)).astype(np.float32)
    joints -= joints[:, :1]
    cam = orbit_camera(0, 0, 3.0, width=32)
    batch = PoseBatch(images=np.zeros((n, 32, 32, 3), np.uint8), joints3d=joints,
                      joints2d=rng.uniform(0, 31, (n, 24, 2)), visible=np.ones((n, 24), bool),
                      pose=np.zeros((n, 72)), betas=np.zeros((n, 10)),
                      K=np.tile(cam.K, (n, 1, 1)), R=np.tile(cam.R, (n, 1, 1)), t=np.tile(cam.t, (n, 1)))
    write_dataset(tmp_path / "data", batch)
    (tmp_path / "zero_estimator.py").write_text(
        "import torch\n\ndef predict(images):\n    return torch.zeros(images.shape[0], 24, 3)\n")
    out = tmp_path / "result.json"
    run = subprocess.run([sys.executable, str(ROOT / "train" / "evaluate.py"), "--estimator", "zero_estimator:predict",
                          "--data", str(tmp_path / "data"), "--json", str(out)],
                         capture_output=True, text=True, cwd=tmp_path, env=bare_env(tmp_path))
    assert run.returncode == 0, run.stderr
    result = json.loads(out.read_text())["results"][str(tmp_path / "data")]
    expected = np.linalg.norm(joints, axis=-1).mean() * 1000
    assert abs(result["all"]["mpjpe_mm"] - expected) < 1e-2
    assert "MPJPE" in run.stdout and "| " in run.stdout
    bad = subprocess.run([sys.executable, str(ROOT / "train" / "evaluate.py"), "--estimator", "zero_estimator:nope",
                          "--data", str(tmp_path / "data")], capture_output=True, text=True, cwd=tmp_path,
                         env=bare_env(tmp_path))
    assert bad.returncode != 0 and "cannot load estimator" in bad.stderr and "Traceback" not in bad.stderr
