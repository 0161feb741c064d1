"""PoseGen's baseline estimator: a compact CNN sized for CPU.

The estimator PoseGen runs when none is named, and the network a checkpoint's ``config`` rebuilds.
It is one estimator like any user's -- loading, calling and training it go through the same
modules -- so its architecture stands alone here. It takes 64 px RGB crops in [0, 1] (normalising
them itself) and returns SMPL's 24 joints in metres.
"""

from __future__ import annotations

import torch

from posegen_env.body.joints import NUM_JOINTS
from posegen_env.estimation.spec import EstimatorSpec, mirror_joints

INPUT_SIZE = 64


def _block(c_in: int, c_out: int) -> torch.nn.Sequential:
    """Downsample by 2 then refine: conv-BN-ReLU twice."""
    return torch.nn.Sequential(
        torch.nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False), torch.nn.BatchNorm2d(c_out),
        torch.nn.ReLU(inplace=True),
        torch.nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), torch.nn.BatchNorm2d(c_out),
        torch.nn.ReLU(inplace=True))


class BaselineEstimator(torch.nn.Module):
    """A compact CNN sized for CPU (~13 M multiply-adds per 64 px crop) regressing the 23 non-root joints."""

    # Per-channel statistics of the base-distribution crops (mean and the real standard deviation).
    MEAN = (0.49, 0.47, 0.46)
    STD = (0.28, 0.29, 0.27)
    mean: torch.Tensor  # buffers, registered in __init__
    std: torch.Tensor

    def __init__(self, input_size: int = INPUT_SIZE, width: int = 32, flip_test: bool = False):
        super().__init__()
        self.input_size = int(input_size)
        self.spec = EstimatorSpec(input_size=self.input_size)  # [0, 1] RGB in (it normalises itself), SMPL-24 m out
        self.width = int(width)
        self.flip_test = bool(flip_test)
        w = self.width
        self.features = torch.nn.Sequential(_block(3, w // 2), _block(w // 2, w), _block(w, 2 * w),
                                            _block(2 * w, 4 * w))
        cells = (self.input_size // 16) ** 2
        self.head = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4 * w * cells, 256),
                                        torch.nn.ReLU(inplace=True), torch.nn.Linear(256, (NUM_JOINTS - 1) * 3))
        self.register_buffer("mean", torch.tensor(self.MEAN).reshape(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(self.STD).reshape(1, 3, 1, 1), persistent=False)

    def regress(self, images: torch.Tensor) -> torch.Tensor:
        # Channels-last: oneDNN's convolutions run faster on CPU in that layout, with the same numbers
        # (benchmarks/RESULTS.md).
        x = self.features(((images - self.mean) / self.std).contiguous(memory_format=torch.channels_last))
        joints = self.head(x).reshape(-1, NUM_JOINTS - 1, 3)
        return torch.cat([joints.new_zeros(joints.shape[0], 1, 3), joints], dim=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """With ``flip_test``, evaluation also predicts the mirrored crop and averages. It is off by
        default: on an asymmetric subject (a different colour on each sleeve) it costs accuracy."""
        joints = self.regress(images)
        if not self.training and self.flip_test:
            joints = 0.5 * (joints + mirror_joints(self.regress(images.flip(-1))))
        return joints

    def config(self) -> dict:
        return {"input_size": self.input_size, "width": self.width, "flip_test": self.flip_test}
