"""Adversarial training: a patch discriminator and hinge losses (what VQGAN adds to its
reconstruction loss so that decoded textures look real rather than averaged).

PatchGAN after Isola et al. 2017 (arXiv:1611.07004) as VQGAN uses it (Esser et al. 2021,
arXiv:2012.09841): strided 4×4 convolutions whose every output judges one receptive-field patch;
hinge losses as in Lim & Ye 2017 (arXiv:1705.02894). Written for images; the same class takes
1-D signals (``dims=1``) for audio.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

_CONV = {1: nn.Conv1d, 2: nn.Conv2d}


class PatchDiscriminator(nn.Module):
    """Real/fake logits per patch.

    Args:
        in_channels: channels of the signal (3 for RGB).
        width: channels of the first layer, doubled per layer up to 8×.
        layers: stride-2 layers (3: a 70×70 receptive field on images).
        dims: 2 for images, 1 for waveforms.
    """

    def __init__(self, in_channels: int = 3, width: int = 64, layers: int = 3, dims: int = 2) -> None:
        super().__init__()
        conv = _CONV[dims]
        blocks: list[nn.Module] = [conv(in_channels, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        channels = width
        for n in range(1, layers + 1):
            out = width * min(2**n, 8)
            blocks += [
                conv(channels, out, 4, stride=2 if n < layers else 1, padding=1),
                nn.GroupNorm(min(32, out // 4), out), nn.LeakyReLU(0.2),
            ]
            channels = out
        blocks.append(conv(channels, 1, 4, padding=1))
        self.net = nn.Sequential(*blocks)

    def forward(self, x: Tensor) -> Tensor:
        # Signals in [0, 1] (images) are centred, as the discriminator's first layer has no bias to do it.
        return self.net(x * 2.0 - 1.0 if x.dim() == 4 else x)


def discriminator_loss(real: Tensor, fake: Tensor) -> Tensor:
    """Hinge loss of the discriminator on logits of real and of decoded signals."""
    return 0.5 * (F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean())


def generator_loss(fake: Tensor) -> Tensor:
    """Hinge loss of the codec: the discriminator's logits on its output, raised."""
    return -fake.mean()
