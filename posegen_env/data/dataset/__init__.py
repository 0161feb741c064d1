"""Pose datasets on disk: square person crops plus one SPIN/HMR-style ``annotations.npz``.

Every dataset PoseGen writes (test suites, generated training data) uses this one format, so
human-mesh training code that already reads SPIN's ``.npz`` files needs only a joint mapping, not
a new loader. See docs/dataset_format.md for every key, unit and convention. ``schema`` holds the
names, shapes and value checks; ``data`` the loaded dataset; ``read`` the loader; ``write`` the
atomic writer.
"""

from posegen_env.data.dataset.data import PoseData, PoseDataset
from posegen_env.data.dataset.read import load_dataset
from posegen_env.data.dataset.schema import ARRAY_SPECS, DatasetError, crop_box
from posegen_env.data.dataset.write import DatasetWriter, write_dataset

__all__ = [
    "ARRAY_SPECS",
    "DatasetError",
    "DatasetWriter",
    "PoseData",
    "PoseDataset",
    "crop_box",
    "load_dataset",
    "write_dataset",
]
