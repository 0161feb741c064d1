"""The data layer: the formats PoseGen reads and writes, and the caches of rendered data.

``dataset`` (labelled crops, the format of every generated dataset), ``capture`` (multi-view
captures avatars are fitted on, in PoseGen's layout or read in place from ZJU-MoCap's),
``base_splits`` (the base distribution's cached training and validation crops), ``cache`` (where
caches live) and ``image_grid`` (contact sheets).
"""

from posegen_env.data.base_splits import base_split
from posegen_env.data.cache import cache_root
from posegen_env.data.capture import (
    Capture,
    CaptureError,
    CaptureWriter,
    ZjuCapture,
    load_any_capture,
    load_capture,
    load_zju_capture,
)
from posegen_env.data.dataset import DatasetError, PoseData, PoseDataset, load_dataset, write_dataset
from posegen_env.data.image_grid import image_grid, save_image_grid

__all__ = [
    "Capture",
    "CaptureError",
    "CaptureWriter",
    "DatasetError",
    "PoseData",
    "PoseDataset",
    "base_split",
    "cache_root",
    "image_grid",
    "load_capture",
    "load_dataset",
    "save_image_grid",
    "write_dataset",
    "ZjuCapture",
    "load_any_capture",
    "load_zju_capture",
]
