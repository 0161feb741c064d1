"""PoseGen: learn the poses and camera views a 3D human pose estimator gets wrong."""

__version__ = "0.1.0"
