"""Which reader a capture folder needs: PoseGen's own layout (capture.json) or ZJU-MoCap's
(annots.npy), so that scripts take either without being told."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from posegen_env.body.body_model import BodyModel
from posegen_env.data.capture.data import Capture
from posegen_env.data.capture.read import load_capture
from posegen_env.data.capture.schema import CAPTURE_JSON, CaptureError
from posegen_env.data.capture.zju import load_zju_capture
from posegen_env.data.capture.zju_data import ANNOTS
from posegen_env.files import listing, require_directory

FORMATS = ("auto", "posegen", "zju")


def detect_format(path: str | os.PathLike) -> str:
    """'posegen' (a capture.json) or 'zju' (an annots.npy); anything else is not a capture."""
    root = Path(path)
    require_directory(root, "capture", CaptureError)
    if (root / CAPTURE_JSON).is_file():
        return "posegen"
    if (root / ANNOTS).is_file():
        return "zju"
    nested = sorted(p.parent.name for pattern in (f"*/{CAPTURE_JSON}", f"*/{ANNOTS}") for p in root.glob(pattern))
    hint = f"; its subfolder(s) {listing(nested)} look like captures, point at one of them" if nested else ""
    raise CaptureError(f"{root}: not a capture: it has neither {CAPTURE_JSON} (PoseGen's layout) nor {ANNOTS} "
                       f"(the ZJU-MoCap / EasyMocap layout); see docs/capture_format.md{hint}")


def load_any_capture(path: str | os.PathLike, format: str = "auto",
                     body: BodyModel | str | os.PathLike | None = None, test_cameras: Sequence[str] | None = None,
                     test_frames: int | None = None, check_files: bool = True) -> Capture:
    """A capture in either layout: ``format`` 'posegen', 'zju' or 'auto' (by the files present).

    ``body``, ``test_cameras`` and ``test_frames`` are for the ZJU layout, which has no split file;
    a PoseGen capture keeps its splits in capture.json.
    """
    if format not in FORMATS:
        raise CaptureError(f"format {format!r} is not one of {', '.join(FORMATS)}")
    chosen = detect_format(path) if format == "auto" else format
    if chosen == "zju":
        return load_zju_capture(path, body, test_cameras, test_frames, check_files=check_files)
    if test_cameras is not None or test_frames is not None:
        raise CaptureError(f"{Path(path) / CAPTURE_JSON}: a PoseGen capture keeps its splits in {CAPTURE_JSON}; "
                           "test cameras and test frames can only be chosen for the ZJU-MoCap layout")
    return load_capture(path, check_files=check_files)
