"""16-bit stills and the chroma scopes."""

from __future__ import annotations

import math
import os

import cv2
import numpy as np
import pytest
from skimage import color as skcolor

import restorer.stills as stills
from restorer.color import grey_to_L
from restorer.errors import OutputError
from restorer.scopes import SKIN_LINE_DEG, TARGETS, measure
from restorer.stills import write_still


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    grey = cv2.GaussianBlur(rng.integers(40, 220, (60, 80)).astype(np.uint8), (0, 0), 3)
    ab = np.zeros((60, 80, 2), np.float32)
    ab[..., 0], ab[..., 1] = 18.0, 25.0  # a warm orange, well inside the gamut
    return grey, ab


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_still_is_16_bit_full_size_and_keeps_L(tmp_path, frame, suffix):
    grey, ab = frame
    out = write_still(tmp_path / f"f{suffix}", grey, ab, 1.0)
    img = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert img.dtype == np.uint16 and img.shape == (60, 80, 3)
    rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB).astype(np.float64) / 65535.0
    lab = skcolor.rgb2lab(rgb)
    assert np.abs(lab[..., 0] - grey_to_L(grey)).max() < 0.2  # finer than 8 bits could keep
    assert np.abs(lab[..., 1] - 18.0).mean() < 0.5 and np.abs(lab[..., 2] - 25.0).mean() < 0.5
    assert np.mean(img % 257 != 0) > 0.9  # not an 8-bit frame scaled up
    assert sorted(os.listdir(tmp_path)) == [out.name]


def test_still_refuses_what_it_must(tmp_path, frame, monkeypatch):
    grey, ab = frame
    ep = tmp_path / "ep.png"
    ep.write_bytes(b"precious")
    with pytest.raises(OutputError, match="the episode itself"):
        write_still(ep, grey, ab, sources=(ep,), overwrite=True)
    with pytest.raises(OutputError, match="already exists"):
        write_still(ep, grey, ab)
    with pytest.raises(OutputError, match="PNG or TIFF"):
        write_still(tmp_path / "f.jpg", grey, ab)
    with pytest.raises(OutputError, match="does not exist"):
        write_still(tmp_path / "missing" / "f.png", grey, ab)
    monkeypatch.setattr(stills.cv2, "imwrite", lambda *_a, **_k: False)  # a failed encode
    with pytest.raises(OutputError, match="cannot write"):
        write_still(ep, grey, ab, overwrite=True)
    assert ep.read_bytes() == b"precious"
    assert sorted(os.listdir(tmp_path)) == ["ep.png"]


def test_scopes_of_grey_red_and_skin():
    grey = np.full((40, 50), 128, np.uint8)
    g = measure(grey, size=64)
    assert g.mean_chroma < 0.5
    peak = np.unravel_index(np.argmax(g.vector), g.vector.shape)
    assert abs(peak[0] - 32) <= 1 and abs(peak[1] - 32) <= 1  # a dot in the centre
    assert g.hist_a[len(g.hist_a) // 2 - 1: len(g.hist_a) // 2 + 1].sum() > 0.99

    red = np.zeros((40, 50, 3), np.uint8)
    red[..., 0] = 190
    r = measure(red, size=64)
    row, col = np.unravel_index(np.argmax(r.vector), r.vector.shape)
    cb, cr = (col + 0.5) / 64 - 0.5, 0.5 - (row + 0.5) / 64
    tcb, tcr = TARGETS["R"]
    assert math.degrees(abs(math.atan2(cr, cb) - math.atan2(tcr, tcb))) < 6
    centres = (r.edges[:-1] + r.edges[1:]) / 2
    assert centres[np.argmax(r.hist_a)] > 40 and r.mean_chroma > 40

    skin = np.zeros((40, 50, 3), np.uint8)
    skin[...] = (224, 172, 138)
    s = measure(skin, size=128)
    row, col = np.unravel_index(np.argmax(s.vector), s.vector.shape)
    angle = math.degrees(math.atan2(0.5 - (row + 0.5) / 128, (col + 0.5) / 128 - 0.5))
    assert abs(angle - SKIN_LINE_DEG) < 12  # skin falls on the skin-tone line
