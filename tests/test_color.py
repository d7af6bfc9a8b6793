"""color: kornia's checklist — reference values, round trip, shapes, errors, L preservation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import color as skcolor

from restorer import color


@pytest.fixture
def rgb() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.random((17, 23, 3))


def test_rgb_to_lab_matches_skimage(rgb: np.ndarray) -> None:
    np.testing.assert_allclose(color.rgb_to_lab(rgb), skcolor.rgb2lab(rgb), atol=1e-3)


def test_lab_to_rgb_matches_skimage(rgb: np.ndarray) -> None:
    lab = skcolor.rgb2lab(rgb)
    np.testing.assert_allclose(color.lab_to_rgb(lab), skcolor.lab2rgb(lab), atol=1e-4)


def test_round_trip(rgb: np.ndarray) -> None:
    np.testing.assert_allclose(color.lab_to_rgb(color.rgb_to_lab(rgb)), rgb, atol=1e-6)


def test_known_values() -> None:
    white = color.rgb_to_lab(np.ones((1, 1, 3)))[0, 0]
    np.testing.assert_allclose(white, [100.0, 0.0, 0.0], atol=1e-2)
    red = color.rgb_to_lab(np.array([[[1.0, 0.0, 0.0]]]))[0, 0]
    np.testing.assert_allclose(red, [53.24, 80.09, 67.20], atol=0.05)


def test_torch_matches_numpy_and_batches(rgb: np.ndarray) -> None:
    t = torch.from_numpy(rgb).permute(2, 0, 1)[None].float().repeat(2, 1, 1, 1)
    lab = color.rgb_to_lab_t(t)
    assert lab.shape == (2, 3, 17, 23)
    np.testing.assert_allclose(lab[1].permute(1, 2, 0).numpy(), skcolor.rgb2lab(rgb), atol=2e-3)
    back = color.lab_to_rgb_t(lab)
    np.testing.assert_allclose(back.numpy(), t.numpy(), atol=1e-4)


def test_torch_is_differentiable() -> None:
    x = torch.rand(1, 3, 4, 4, dtype=torch.float64, requires_grad=True) * 0.8 + 0.1
    x = x.detach().requires_grad_(True)
    assert torch.autograd.gradcheck(color.rgb_to_lab_t, (x,), eps=1e-6, atol=1e-4)


def test_fast_8bit_path_matches_skimage() -> None:
    rng = np.random.default_rng(1)
    rgb8 = rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)
    # OpenCV quantises a and b to 1/128 internally: within 0.3 of skimage is its accuracy.
    err = np.abs(color.rgb8_to_lab(rgb8) - skcolor.rgb2lab(rgb8))
    assert err.max() < 0.5 and err.mean() < 0.1
    back = color.lab_to_rgb8(color.rgb8_to_lab(rgb8))
    assert np.abs(back.astype(int) - rgb8).max() <= 1


def test_grey_to_L_exact() -> None:
    g = np.arange(256, dtype=np.uint8).reshape(16, 16)
    ref = skcolor.rgb2lab(np.repeat(g[..., None], 3, -1))[..., 0]
    np.testing.assert_allclose(color.grey_to_L(g), ref, atol=1e-3)
    np.testing.assert_array_equal(color.L_to_grey(color.grey_to_L(g)), g)


@pytest.mark.parametrize("fn", [color.rgb_to_lab, color.lab_to_rgb])
def test_shape_errors_name_the_shape(fn) -> None:
    with pytest.raises(ValueError, match=r"\(4, 4\)"):
        fn(np.zeros((4, 4)))


def test_torch_shape_error() -> None:
    with pytest.raises(ValueError, match="3, H, W"):
        color.rgb_to_lab_t(torch.zeros(1, 4, 8, 8))


def test_merge_keeps_L_within_one_unit_even_for_wild_ab() -> None:
    rng = np.random.default_rng(2)
    grey = rng.integers(0, 256, (48, 64), dtype=np.uint8)
    L = color.grey_to_L(grey)
    ab = rng.uniform(-110, 110, (48, 64, 2)).astype(np.float32)  # mostly out of gamut
    for chroma in (0.5, 1.0, 2.0):
        rgb = color.merge_L_ab(L, ab, chroma)
        L_out = skcolor.rgb2lab(rgb)[..., 0]
        assert np.abs(L_out - L).max() <= 1.0, chroma
        assert np.abs(skcolor.rgb2lab(rgb)[..., 1:]).mean() > 5  # still coloured


def test_chroma_zero_is_grey_and_two_is_more_saturated() -> None:
    grey = np.full((8, 8), 128, np.uint8)
    ab = np.zeros((8, 8, 2), np.float32)
    ab[..., 0], ab[..., 1] = 12.0, 20.0
    L = color.grey_to_L(grey)
    g = color.merge_L_ab(L, ab, 0.0)
    assert np.abs(g.astype(int) - 128).max() <= 1
    one = skcolor.rgb2lab(color.merge_L_ab(L, ab, 1.0))[..., 1:]
    two = skcolor.rgb2lab(color.merge_L_ab(L, ab, 2.0))[..., 1:]
    assert np.linalg.norm(two, axis=-1).mean() > 1.8 * np.linalg.norm(one, axis=-1).mean()
    with pytest.raises(ValueError):
        color.apply_chroma(ab, -1.0)


def test_grey_to_L_lookup_paths_agree() -> None:
    rng = np.random.default_rng(5)
    for shape in [(37, 53), (3, 9, 11), (0, 4)]:
        g = rng.integers(0, 256, shape, dtype=np.uint8)
        got = color.grey_to_L(g)
        assert got.dtype == np.float32 and got.shape == shape
        np.testing.assert_array_equal(got, color.GREY_TO_L[g])
    with pytest.raises(ValueError, match="uint8"):
        color.grey_to_L(np.zeros((2, 2), np.float32))


def _fit_gamut_by_index(L: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """The table lookup written plainly (floor of L and hue to a cell), as a reference."""
    table = color._max_chroma_table()
    chroma = np.hypot(ab[..., 0], ab[..., 1])
    hue = np.degrees(np.arctan2(ab[..., 1], ab[..., 0])) % 360
    r = np.clip(np.floor(L * color._L_STEPS), 0, table.shape[0] - 1).astype(int)
    c = np.clip(np.floor(hue * color._HUE_STEPS), 0, table.shape[1] - 1).astype(int)
    scale = np.minimum(table[r, c] / np.maximum(chroma, 1e-6), 1.0)
    return ab * scale[..., None]


def test_fit_gamut_matches_the_plain_table_lookup_and_lands_in_gamut() -> None:
    rng = np.random.default_rng(7)
    L = rng.uniform(0, 100, (96, 128)).astype(np.float32)
    L[0, :40] = np.arange(40, dtype=np.float32) / color._L_STEPS  # exact cell edges
    ab = rng.uniform(-120, 120, (96, 128, 2)).astype(np.float32)
    got = color.fit_gamut(L, ab)
    ref = _fit_gamut_by_index(L, ab)
    same = np.isclose(got, ref, rtol=1e-4, atol=1e-4).all(-1)
    # Only pixels on a cell edge may take the neighbouring cell; either holds the point.
    assert same.mean() > 0.995
    lin = color._lab_to_linear(np.concatenate([L[..., None], got], -1).reshape(-1, 3),
                               np.ones(L.size, np.float32))
    assert ((lin > -0.02) & (lin < 1.02)).all(-1).mean() > 0.999


def test_black_and_white_pixels_stay_exact_amid_colour() -> None:
    """A letterboxed frame: black bars and white titles next to coloured picture."""
    grey = np.full((40, 60), 120, np.uint8)
    grey[:8], grey[-8:], grey[20, 10:30] = 0, 0, 255
    ab = np.zeros((40, 60, 2), np.float32)
    ab[..., 0], ab[..., 1] = 40.0, -30.0  # the network's colour spills over everything
    rgb = color.merge_L_ab(color.grey_to_L(grey), ab)
    assert (rgb[:8] == 0).all() and (rgb[-8:] == 0).all()
    assert (rgb[20, 10:30] == 255).all()
    mid = skcolor.rgb2lab(rgb[12:18])
    assert np.abs(mid[..., 0] - color.grey_to_L(grey[12:18])).max() <= 1.0
    assert mid[..., 1].mean() > 20 and mid[..., 2].mean() < -15
