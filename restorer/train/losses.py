"""Losses: pixel L1/Huber on ab, Zhang et al. class rebalancing, a colourfulness term, GAN.

Why rebalancing: the ab distribution of natural footage is dominated by low-saturation
browns/greys (walls, skin, shadows). A plain L1 regressor minimises error by predicting the
conditional median, which for ambiguous regions is a desaturated brown -- the familiar "sepia"
look. Weighting each pixel by the inverse (smoothed) frequency of its true ab bin makes rare,
saturated colours count as much as common ones (Zhang, Isola & Efros, ECCV 2016).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter

from restorer.color import AB_SCALE


class RebalanceWeights:
    """Per-pixel weights from the training set's ab histogram (``stats`` of the manifest).

    ``w(ab) ~ 1 / ((1 - mix) * p_smooth(ab) + mix / Q)``, normalised so that the expected
    weight under the training distribution is 1 (the loss keeps its scale). ``strength`` in
    ``(0, 1]`` raises ``w`` to that power for a softer version.
    """

    def __init__(self, stats: dict[str, Any], mix: float = 0.5, strength: float = 1.0,
                 sigma_ab: float = 5.0) -> None:
        hist = np.asarray(stats["ab_hist"], np.float64)
        self.bin = float(stats["ab_bin"])
        self.range = float(stats["ab_range"])
        if hist.sum() <= 0:
            raise ValueError("the dataset's ab histogram is empty; cannot rebalance")
        p = hist / hist.sum()
        p = gaussian_filter(p, sigma_ab / self.bin, mode="constant")
        p = p / p.sum()
        q = max(1, int((hist > 0).sum()))
        w = 1.0 / ((1.0 - mix) * p + mix / q)
        w = w ** strength
        w = w / (p * w).sum()
        self.table_np = w.astype(np.float32)
        self.table = torch.from_numpy(self.table_np)

    def __call__(self, ab_norm: torch.Tensor) -> torch.Tensor:
        """Weights ``(N, 1, H, W)`` for normalised true ab ``(N, 2, H, W)``."""
        n = self.table.shape[0]
        idx = ((ab_norm.float() * AB_SCALE + self.range) / self.bin).long().clamp(0, n - 1)
        table = self.table.to(ab_norm.device)
        return table[idx[:, 0], idx[:, 1]][:, None]


def pixel_loss(pred: torch.Tensor, target: torch.Tensor, kind: str = "l1", delta: float = 0.05,
               weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over pixels of the per-pixel ab error (summed over a and b), optionally weighted."""
    if kind == "l1":
        err = (pred - target).abs()
    else:
        err = F.huber_loss(pred, target, reduction="none", delta=delta) / delta
    err = err.sum(1, keepdim=True)
    if weight is not None:
        err = err * weight
    return err.mean()


def chroma(ab: torch.Tensor) -> torch.Tensor:
    """Mean chroma ``sqrt(a^2 + b^2)`` per image, ``(N,)``, of normalised ab ``(N, 2, H, W)``."""
    return torch.sqrt(ab.float().pow(2).sum(1) + 1e-6).mean((1, 2))


def colourfulness_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Penalise a predicted image being less (or more) colourful than the truth, on average."""
    return (chroma(pred) - chroma(target)).abs().mean()


def gan_loss(logits: torch.Tensor, real: bool) -> torch.Tensor:
    """BCE-with-logits against all-real or all-fake patch labels (pix2pix)."""
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits.float(), target.float())
