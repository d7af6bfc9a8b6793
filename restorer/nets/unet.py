"""U-Net generator: L in, ab out, skip connections at every scale (first write-up's design)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """A U-Net with ``depth`` down/up stages; channel width doubles per stage from ``base``.

    Any input size works: the input is padded to a multiple of ``2**depth`` and cropped back.
    The output is ``tanh``, i.e. ab normalised by :data:`restorer.color.AB_SCALE`.
    """

    def __init__(self, in_ch: int = 1, out_ch: int = 2, base: int = 16, depth: int = 3) -> None:
        super().__init__()
        if depth < 1 or base < 1:
            raise ValueError(f"UNet needs depth >= 1 and base >= 1; got depth={depth} base={base}")
        self.in_ch, self.out_ch, self.base, self.depth = in_ch, out_ch, base, depth
        widths = [base * 2**i for i in range(depth + 1)]
        self.inc = _block(in_ch, widths[0])
        self.downs = nn.ModuleList(_block(widths[i], widths[i + 1]) for i in range(depth))
        self.ups = nn.ModuleList(
            nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2)
            for i in reversed(range(depth))
        )
        self.up_blocks = nn.ModuleList(
            _block(widths[i] * 2, widths[i]) for i in reversed(range(depth))
        )
        self.head = nn.Conv2d(widths[0], out_ch, 1)

    def spec(self) -> dict[str, Any]:
        return {"arch": "unet", "in_ch": self.in_ch, "out_ch": self.out_ch,
                "base": self.base, "depth": self.depth}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        m = 2**self.depth
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(F.max_pool2d(skips[-1], 2)))
        y = skips.pop()
        for up, block in zip(self.ups, self.up_blocks, strict=True):
            y = block(torch.cat([up(y), skips.pop()], dim=1))
        return torch.tanh(self.head(y))[..., :h, :w]
