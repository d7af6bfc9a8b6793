"""Torch dataset over a built dataset folder: grey L in (optionally degraded), true ab out.

**Scale.** Each stored frame is first scaled so that its short side is the model's working size,
the size at which the engine will show the network a frame of any resolution. Objects so reach
the network at the scale it will meet them at inference (a small random zoom, ``scale_jitter``,
adds robustness); training on crops of larger frames would teach it a scale it never sees.

**Crop.** ``crop=(h, w)`` at that scale; the trainer picks the whole frame when every frame has
one shape (one show, one format), else the largest window every frame holds.

**Input.** Made exactly as inference makes it -- colour frame -> the grey level whose L is the
frame's L -> L -- then, with ``augment``, flipped and optionally degraded the way archive
black-and-white footage is: tone curve changes (brightness, contrast, gamma), softness (blur) and
film grain. Only the input is degraded; the target ab is the clean frame's.
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

    p: float = 0.5             # 0: no degradation (flips and zoom only)
    brightness: float = 20.0   # +- grey levels
    contrast: float = 0.25     # x (1 +- contrast)
    gamma: float = 0.3         # exp(+- gamma)
    blur_sigma: float = 1.2    # up to, in pixels
    grain: float = 8.0         # noise std up to, in grey levels
    flip: bool = True


def degrade(grey: np.ndarray, rng: np.random.Generator, aug: Augment) -> np.ndarray:
    """uint8 grey -> uint8 grey with random tone, blur and grain (archive-looking)."""
    g: np.ndarray = grey.astype(np.float32)
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


def scaled_shape(shape: tuple[int, int], working_size: int) -> tuple[int, int]:
    """``(h, w)`` of a frame of ``shape`` at the working size: short side ``working_size``, or
    as it is when smaller (the engine never enlarges a frame either)."""
    h, w = shape
    s = min(1.0, working_size / min(h, w))
    return max(1, round(h * s)), max(1, round(w * s))


def common_crop(shapes: set[tuple[int, int]], working_size: int, multiple: int = 8
                ) -> tuple[int, int]:
    """The largest ``(h, w)`` window (multiples of ``multiple``) that every frame shape holds at
    the working size: the whole frame when all frames have one shape."""
    scaled = [scaled_shape(s, working_size) for s in shapes]
    h = min(s[0] for s in scaled)
    w = min(s[1] for s in scaled)
    return max(multiple, h // multiple * multiple), max(multiple, w // multiple * multiple)


class ColourDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """``(L input (1, h, w), ab target (2, h, w))`` pairs from one split of a dataset folder.

    Frames are scaled to a short side of ``working_size`` (``None``: as stored), then cropped to
    ``crop`` (random with ``augment``, centred otherwise; ``None``: the whole scaled frame, so
    frames of different shapes give tensors of different shapes). Frames are read lazily from
    memory maps.
    """

    def __init__(self, root: str | os.PathLike[str], split: str = "train",
                 working_size: int | None = None, crop: tuple[int, int] | None = None,
                 augment: Augment | None = None, seed: int = 0,
                 scale_jitter: float = 0.15) -> None:
        self.store = FrameStore(root, split)
        self.working_size = working_size
        self.crop = crop
        self.augment = augment
        self.seed = seed
        self.scale_jitter = scale_jitter if augment is not None else 0.0
        self._rng: np.random.Generator | None = None
        if crop is not None and working_size is None:
            small = [s for s in self.store.frame_shapes() if s[0] < crop[0] or s[1] < crop[1]]
            if small:
                raise DatasetError(f"crop {crop[1]}x{crop[0]} is larger than the dataset's "
                                   f"{small[0][1]}x{small[0][0]} frames; lower --crop")

    def __len__(self) -> int:
        return len(self.store)

    def rng(self) -> np.random.Generator:
        # One generator per process: torch gives each DataLoader worker its own initial seed.
        if self._rng is None:
            self._rng = np.random.default_rng([self.seed, torch.initial_seed() % 2**32])
        return self._rng

    def frame_rgb(self, i: int, rng: np.random.Generator | None = None) -> np.ndarray:
        """Frame ``i`` as uint8 RGB at the working scale, cropped (randomly when ``rng``)."""
        rgb = self.store[i]
        h, w = rgb.shape[:2]
        ch, cw = self.crop or (0, 0)
        s = 1.0 if self.working_size is None else min(1.0, self.working_size / min(h, w))
        if rng is not None and self.scale_jitter > 0:
            s *= float(np.exp(rng.uniform(-np.log1p(self.scale_jitter),
                                          np.log1p(self.scale_jitter))))
        s = max(s, ch / h, cw / w)  # the crop must fit
        if abs(s - 1.0) > 1e-6:
            nw, nh = max(cw, round(w * s)), max(ch, round(h * s))
            rgb = cv2.resize(np.asarray(rgb), (nw, nh),
                             interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
            h, w = nh, nw
        if self.crop is None:
            return np.array(rgb)
        if rng is not None:
            y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        else:
            y0, x0 = (h - ch) // 2, (w - cw) // 2
        return np.array(rgb[y0: y0 + ch, x0: x0 + cw])  # copies only the crop out of the map

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = self.rng() if self.augment is not None else None
        rgb = self.frame_rgb(i, rng)
        if rng is not None and self.augment is not None and self.augment.flip and \
                rng.random() < 0.5:
            rgb = np.ascontiguousarray(rgb[:, ::-1])
        lab = rgb8_to_lab(rgb)
        grey = L_to_grey(lab[..., 0])
        if rng is not None and self.augment is not None and self.augment.p > 0:
            grey = degrade(grey, rng, self.augment)
        return to_tensors(grey, lab[..., 1:])
