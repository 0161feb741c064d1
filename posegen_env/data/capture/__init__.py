"""Multi-view human captures on disk: the data a human NeRF is fitted on.

A capture is a directory of per-camera image and mask folders, calibrated cameras and per-frame
SMPL parameters, laid out like ZJU-MoCap (see docs/capture_format.md for the layout and the
differences). ``schema`` holds the names and the checks every reader and writer shares; ``data``
the loaded :class:`Capture`; ``read`` and ``write`` PoseGen's own layout; ``zju`` (with
``zju_data`` and ``zju_convert``) reads ZJU-MoCap / EasyMocap captures in place into the same
``Capture``; ``formats`` picks the reader a folder needs.
"""

from posegen_env.data.capture.data import Capture
from posegen_env.data.capture.formats import FORMATS, detect_format, load_any_capture
from posegen_env.data.capture.read import load_capture
from posegen_env.data.capture.schema import CaptureError, frame_file
from posegen_env.data.capture.write import CaptureWriter
from posegen_env.data.capture.zju import load_zju_capture
from posegen_env.data.capture.zju_data import ZjuCapture

__all__ = [
    "FORMATS",
    "Capture",
    "CaptureError",
    "CaptureWriter",
    "ZjuCapture",
    "detect_format",
    "frame_file",
    "load_any_capture",
    "load_capture",
    "load_zju_capture",
]
