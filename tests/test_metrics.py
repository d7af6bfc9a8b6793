"""Metrics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from restorer.color import GREY_TO_L, rgb8_to_lab
from restorer.metrics import (
    cdc,
    colourfulness,
    colourfulness_ratio,
    delta_e2000,
    delta_e2000_coloured,
    delta_e2000_split,
    psnr,
)


def _rand(seed: int = 0, shape=(16, 20, 3)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_identical_frames_score_perfectly():
    a = _rand()
    assert psnr(a, a.copy()) == math.inf
    assert delta_e2000(a, a.copy()) == pytest.approx(0.0, abs=1e-9)
    assert cdc([a, a.copy(), a.copy()]) == pytest.approx(0.0, abs=1e-12)


def test_psnr_known_value():
    a = np.zeros((8, 8, 3), np.uint8)
    b = np.full((8, 8, 3), 10, np.uint8)  # MSE 100
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 100), abs=1e-9)


def test_delta_e2000_between_two_greys_is_the_lightness_formula():
    # For a = b = 0, CIEDE2000 reduces to |dL| / S_L,
    # S_L = 1 + 0.015 (Lm-50)^2 / sqrt(20 + (Lm-50)^2).
    g1, g2 = 100, 160
    # delta_e2000 converts with the fast OpenCV path (within ~0.2 L of the reference).
    L1 = float(rgb8_to_lab(np.full((1, 1, 3), g1, np.uint8))[0, 0, 0])
    L2 = float(rgb8_to_lab(np.full((1, 1, 3), g2, np.uint8))[0, 0, 0])
    assert abs(L1 - GREY_TO_L[g1]) < 0.2
    lm = (L1 + L2) / 2
    sl = 1 + 0.015 * (lm - 50) ** 2 / math.sqrt(20 + (lm - 50) ** 2)
    a = np.full((4, 4, 3), g1, np.uint8)
    b = np.full((4, 4, 3), g2, np.uint8)
    assert delta_e2000(a, b) == pytest.approx(abs(L2 - L1) / sl, rel=1e-3)


def test_colourfulness_grey_is_zero_and_known_value():
    grey = np.repeat(_rand(1, (10, 10, 1)), 3, -1)
    assert colourfulness(grey) == pytest.approx(0.0, abs=1e-9)
    img = np.zeros((4, 4, 3), np.uint8)
    img[:2, :, 0] = 255  # half pure red, half black
    # rg: 255/0 -> mean 127.5, std 127.5; yb: 127.5/0 -> mean 63.75, std 63.75
    expected = 1.3 * math.hypot(127.5, 63.75)
    assert colourfulness(img) == pytest.approx(expected, rel=1e-9)
    assert colourfulness_ratio([img], [img]) == pytest.approx(1.0)
    assert colourfulness_ratio([grey], [img]) == pytest.approx(0.0)


def test_cdc_disjoint_histograms_is_ln2():
    black = np.zeros((6, 6, 3), np.uint8)
    white = np.full((6, 6, 3), 255, np.uint8)
    # Only d=1 has a pair; each channel's histograms are disjoint: JS = ln 2.
    assert cdc([black, white]) == pytest.approx(math.log(2), rel=1e-9)
    # Alternating: d=1 pairs all differ (ln 2); d=2 and d=4 pairs are identical (0).
    seq = [black, white] * 3
    assert cdc(seq) == pytest.approx(math.log(2) / 3, rel=1e-9)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="shape"):
        psnr(_rand(shape=(4, 4, 3)), _rand(shape=(4, 5, 3)))
    with pytest.raises(ValueError, match="uint8"):
        delta_e2000(_rand().astype(np.float32), _rand().astype(np.float32))
    with pytest.raises(ValueError, match="at least 2"):
        cdc([_rand()])


def test_delta_e_on_coloured_pixels_ignores_grey_ground():
    # A frame that is mostly grey wall with one saturated patch: a model that paints the patch
    # brown loses little on the plain mean but everything on the coloured pixels.
    truth = np.full((40, 40, 3), 128, np.uint8)
    truth[:8, :8] = (230, 200, 20)  # a yellow coat, 4% of the frame
    brown = truth.copy()
    brown[:8, :8] = (150, 120, 60)
    mean, coloured = delta_e2000_split(brown, truth)
    assert mean == pytest.approx(delta_e2000(brown, truth))
    assert coloured == pytest.approx(delta_e2000_coloured(brown, truth))
    assert coloured > 15 * mean > 0  # only the patch counts
    assert delta_e2000_coloured(truth, truth) == pytest.approx(0.0, abs=1e-9)
    assert delta_e2000_coloured(np.full_like(truth, 128), np.full_like(truth, 128)) is None
