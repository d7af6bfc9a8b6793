"""PatchGAN discriminator on (L, ab) pairs for the conditional-GAN training mode."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class PatchDiscriminator(nn.Module):
    """Classifies overlapping patches of a 3-channel (L, a, b) image as real or generated.

    Returns logits of shape ``(N, 1, H', W')``; pair it with ``BCEWithLogitsLoss``.
    """

    def __init__(self, in_ch: int = 3, base: int = 32, layers: int = 3) -> None:
        super().__init__()
        self.in_ch, self.base, self.layers = in_ch, base, layers
        mods: list[nn.Module] = [nn.Conv2d(in_ch, base, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        ch = base
        for i in range(1, layers):
            nxt = base * min(2**i, 8)
            stride = 2 if i < layers - 1 else 1
            mods += [nn.Conv2d(ch, nxt, 4, stride, 1, bias=False), nn.BatchNorm2d(nxt),
                     nn.LeakyReLU(0.2, True)]
            ch = nxt
        mods.append(nn.Conv2d(ch, 1, 4, 1, 1))
        self.net = nn.Sequential(*mods)

    def spec(self) -> dict[str, Any]:
        return {"arch": "patchgan", "in_ch": self.in_ch, "base": self.base, "layers": self.layers}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
