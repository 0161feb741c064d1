"""Training augmentation: recolouring hides the people's colours, and leaves crops alone unless asked."""

import torch

from posegen_env.estimation.training import _augment


def test_recolouring_swaps_channels_and_greys_some_crops():
    red = torch.zeros(300, 3, 8, 8)
    red[:, 0] = 0.9
    plain = _augment(red, torch.Generator().manual_seed(0))
    assert (plain.mean(dim=(2, 3)).argmax(dim=1) == 0).all()  # jitter alone keeps red red
    out = _augment(red, torch.Generator().manual_seed(0), recolour=True).mean(dim=(2, 3))
    spread = out.max(dim=1).values - out.min(dim=1).values
    grey = spread < 0.1
    assert 0.1 < grey.float().mean() < 0.3  # about a fifth greyed
    dominant = out[~grey].argmax(dim=1)
    assert set(dominant.tolist()) == {0, 1, 2}  # the red went to every channel
    assert out.min() >= 0 and out.max() <= 1
