"""train/make_capture.py writes a capture that the loader accepts and that matches its poses."""

import subprocess
import sys
from pathlib import Path

import numpy as np

from posegen_env.body.body_model import load_body_model
from posegen_env.body.joints import NUM_JOINTS
from posegen_env.data.capture import load_capture

ROOT = Path(__file__).resolve().parents[2]


def test_quick_capture_round_trips(tmp_path):
    out = tmp_path / "capture"
    subprocess.run([sys.executable, str(ROOT / "train" / "make_capture.py"), "--quick", "--out", str(out)],
                   check=True, capture_output=True, text=True)
    capture = load_capture(out)
    assert len(capture.splits["train_cameras"]) == 4 and len(capture.splits["test_cameras"]) == 2
    assert capture.num_frames == 5 and capture.splits["test_frames"] == [3, 4]
    assert (out / "preview.png").is_file()
    # The stored SMPL parameters and cameras explain the stored masks: joints project inside them.
    body = load_body_model()
    for frame in (0, 4):
        p = capture.frame_params(frame)
        joints = body(p["global_orient"], p["body_pose"], p["betas"], p["transl"]).joints[0].detach().numpy()
        for name in ("cam_00", "test_01"):
            mask = capture.load_mask(name, frame)
            uv = np.round(capture.cameras[name].project(joints)).astype(int)
            hits = [mask[max(v - 1, 0):v + 2, max(u - 1, 0):u + 2].any() for u, v in uv]
            assert sum(hits) >= NUM_JOINTS - 1
            image = capture.load_image(name, frame)
            assert (image[~mask] > 200).all(axis=-1).mean() > 0.9  # white background outside the person
    # Running again without --overwrite refuses to replace it.
    again = subprocess.run([sys.executable, str(ROOT / "train" / "make_capture.py"), "--quick", "--out", str(out)],
                           capture_output=True, text=True)
    assert again.returncode != 0 and "exists" in again.stderr
