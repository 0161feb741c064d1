"""A researcher's own estimator, plugged into PoseGen without touching PoseGen's code.

It differs from the shipped baseline in every respect an estimator declares: a small ResNet
(residual blocks, batch norm) at 128 px with more context around the person, ImageNet-style
normalisation of BGR crops, and Human3.6M's 17 joints in millimetres with an arbitrary offset
(not root-relative). It declares all of that as plain attributes, so the file needs nothing from
PoseGen; PoseGen renders, prepares and reads accordingly (docs/estimators.md).

    python train/pretrain_estimator.py --estimator examples/resnet_h36m.py:make_estimator --out runs/resnet.pt
    python train/run_agent.py --estimator examples/resnet_h36m.py:make_estimator --estimator-checkpoint runs/resnet.pt
    python train/evaluate.py --estimator examples/resnet_h36m.py:make_estimator --estimator-checkpoint runs/resnet.pt
"""

from __future__ import annotations

import torch
from torch import nn

H36M_JOINTS = 17


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with an identity (or 1x1 projection) shortcut, as in ResNet-18."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class ResNetH36M(nn.Module):
    """128 px BGR crop -> (B, 17, 3) H36M joints in mm."""

    # How PoseGen must call it (the EstimatorSpec fields, as attributes).
    input_size = 128
    input_mean = (0.485, 0.456, 0.406)  # ImageNet statistics, RGB order
    input_std = (0.229, 0.224, 0.225)
    channel_order = "BGR"
    joint_set = "h36m17"
    units = "mm"
    root_relative = False
    crop_scale = 1.4  # a wider crop than the baseline's 1.25: more context around the person

    def __init__(self, width: int = 24):
        super().__init__()
        w = width
        self.stem = nn.Sequential(nn.Conv2d(3, w // 2, 5, 2, 2, bias=False), nn.BatchNorm2d(w // 2),
                                  nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))  # 128 -> 32 px
        self.layers = nn.Sequential(BasicBlock(w // 2, w), BasicBlock(w, 2 * w, 2), BasicBlock(2 * w, 4 * w, 2),
                                    BasicBlock(4 * w, 6 * w, 2))  # 32 -> 4 px
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(6 * w * 16, 256), nn.ReLU(inplace=True),
                                  nn.Linear(256, H36M_JOINTS * 3))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.layers(self.stem(images))).reshape(-1, H36M_JOINTS, 3) * 1000.0  # metres-scaled


def make_estimator() -> ResNetH36M:
    """The factory PoseGen calls (a callable of no arguments builds the estimator)."""
    return ResNetH36M()
