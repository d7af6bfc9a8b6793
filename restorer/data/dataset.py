"""Torch dataset over a built dataset folder: grey L in (augmented), true ab out.

The input is made exactly as inference makes it -- colour frame -> the grey level whose L is the
frame's L -> L -- then degraded the way archive black-and-white footage is: tone curve changes
(brightness, contrast, gamma), softness (blur) and film grain. Only the input is degraded; the
target ab is the clean frame's, so the model learns not to rely on a clean input.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from restorer.color import AB_SCALE, GREY_TO_L, L_SCALE, L_to_grey, rgb8_to_lab
from restorer.data.store import FrameStore
from restorer.errors import DatasetError


@dataclass
class Augment:
    """Input degradations; each is applied with probability ``p`` at a random strength."""

    p: float = 0.5
    brightness: float = 20.0   # +- grey levels
    contrast: float = 0.25     # x (1 +- contrast)
    gamma: float = 0.3         # exp(+- gamma)
    blur_sigma: float = 1.2    # up to, in pixels
    grain: float = 8.0         # noise std up to, in grey levels
    flip: bool = True


def degrade(grey: np.ndarray, rng: np.random.Generator, aug: Augment) -> np.ndarray:
    """uint8 grey -> uint8 grey with random tone, blur and grain (archive-looking)."""
    g = grey.astype(np.float32)
    if rng.random() < aug.p:
        gamma = float(np.exp(rng.uniform(-aug.gamma, aug.gamma)))
        g = 255.0 * (g / 255.0) ** gamma
    if rng.random() < aug.p:
        c = 1.0 + rng.uniform(-aug.contrast, aug.contrast)
        g = (g - 128.0) * c + 128.0 + rng.uniform(-aug.brightness, aug.brightness)
    if rng.random() < aug.p:
        g = cv2.GaussianBlur(g, (0, 0), float(rng.uniform(0.3, aug.blur_sigma)))
    if rng.random() < aug.p:
        g = g + rng.normal(0.0, rng.uniform(1.0, aug.grain), g.shape).astype(np.float32)
    return np.clip(g + 0.5, 0, 255).astype(np.uint8)


def to_tensors(grey: np.ndarray, ab: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 grey ``(H, W)`` and float ab ``(H, W, 2)`` to the network's normalised tensors."""
    x = GREY_TO_L[grey] / np.float32(L_SCALE) - np.float32(1.0)
    y = np.ascontiguousarray(ab.transpose(2, 0, 1)) / np.float32(AB_SCALE)
    return torch.from_numpy(np.ascontiguousarray(x[None])), torch.from_numpy(y)


class ColourDataset(Dataset):
    """``(L input (1, c, c), ab target (2, c, c))`` pairs from one split of a dataset folder.

    ``crop``: side of the square taken from each stored frame (random when ``augment``, centre
    otherwise); ``None`` uses the whole frame. Frames are read lazily from memory maps.
    """

    def __init__(self, root: str | os.PathLike[str], split: str = "train",
                 crop: int | None = None, augment: Augment | None = None, seed: int = 0) -> None:
        self.store = FrameStore(root, split)
        self.crop = crop or self.store.size
        if self.crop > self.store.size:
            raise DatasetError(f"crop {self.crop} is larger than the dataset's frames "
                               f"({self.store.size}); lower --crop or rebuild with a larger --size")
        self.augment = augment
        self.seed = seed
        self._rng: np.random.Generator | None = None

    def __len__(self) -> int:
        return len(self.store)

    def rng(self) -> np.random.Generator:
        # One generator per process: torch gives each DataLoader worker its own initial seed.
        if self._rng is None:
            self._rng = np.random.default_rng([self.seed, torch.initial_seed() % 2**32])
        return self._rng

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        rgb = self.store[i]
        s, c = self.store.size, self.crop
        if self.augment is not None:
            rng = self.rng()
            y0, x0 = (int(v) for v in rng.integers(0, s - c + 1, 2))
        else:
            y0 = x0 = (s - c) // 2
        rgb = np.array(rgb[y0: y0 + c, x0: x0 + c])  # copies only the crop out of the map
        if self.augment is not None and self.augment.flip and self.rng().random() < 0.5:
            rgb = np.ascontiguousarray(rgb[:, ::-1])
        lab = rgb8_to_lab(rgb)
        grey = L_to_grey(lab[..., 0])
        if self.augment is not None:
            grey = degrade(grey, self.rng(), self.augment)
        return to_tensors(grey, lab[..., 1:])

    def rgb(self, i: int) -> np.ndarray:
        """The stored frame's centre crop as uint8 RGB (for validation grids)."""
        s, c = self.store.size, self.crop
        y0 = (s - c) // 2
        return np.array(self.store[i][y0: y0 + c, y0: y0 + c])
