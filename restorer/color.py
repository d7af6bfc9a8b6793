"""CIELAB conversions, L/ab split and merge, chroma strength.

Conventions (D65 white, sRGB primaries, as skimage and kornia use):

* RGB floats are in ``[0, 1]``; 8-bit frames are ``uint8`` ``(H, W, 3)``.
* L is in ``[0, 100]``; a and b are roughly ``[-110, 110]``.
* Numpy functions take ``(..., 3)`` channels-last arrays; torch functions take ``(*, 3, H, W)``.
* The network sees ``L / 50 - 1`` and predicts ``ab / 110`` (:data:`L_SCALE`, :data:`AB_SCALE`);
  a model file records its own in ``normalisation``, which the engine reads.

The fast paths (:func:`rgb8_to_lab`, :func:`lab_to_rgb8`) use OpenCV's float32 conversion, about
30x faster than skimage on a 720p frame; tests hold them to skimage's reference values.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np
import torch

from restorer.look import CHROMA_MAX

L_SCALE = 50.0
AB_SCALE = 110.0

_XYZ_WHITE = np.array([0.95047, 1.0, 1.08883], dtype=np.float64)
_RGB2XYZ = np.array(
    [[0.412453, 0.357580, 0.180423],
     [0.212671, 0.715160, 0.072169],
     [0.019334, 0.119193, 0.950227]],
    dtype=np.float64,
)
_XYZ2RGB = np.linalg.inv(_RGB2XYZ)
_EPS = 216.0 / 24389.0  # CIE epsilon: (6/29)^3
_KAPPA = 24389.0 / 27.0


def _check_last3(x: np.ndarray, name: str) -> None:
    if x.ndim < 1 or x.shape[-1] != 3:
        raise ValueError(f"{name} must have shape (..., 3); got {tuple(x.shape)}")


def _check_chw(x: torch.Tensor, name: str) -> None:
    if x.ndim < 3 or x.shape[-3] != 3:
        raise ValueError(f"{name} must have shape (*, 3, H, W); got {tuple(x.shape)}")


# ---------------------------------------------------------------- numpy, reference accuracy
def _srgb_to_linear(c: np.ndarray) -> np.ndarray:
    return np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)


def _linear_to_srgb(c: np.ndarray) -> np.ndarray:
    c = np.clip(c, 0.0, None)
    return np.where(c > 0.0031308, 1.055 * np.power(c, 1 / 2.4) - 0.055, 12.92 * c)


def _f(t: np.ndarray) -> np.ndarray:
    return np.where(t > _EPS, np.cbrt(t), (_KAPPA * t + 16.0) / 116.0)


def _finv(t: np.ndarray) -> np.ndarray:
    t3 = t**3
    return np.where(t3 > _EPS, t3, (116.0 * t - 16.0) / _KAPPA)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB ``(..., 3)`` in ``[0, 1]`` (or uint8) to CIELAB, float64 unless given float32."""
    _check_last3(rgb, "rgb")
    out_dtype = np.float32 if rgb.dtype == np.float32 else np.float64
    x = rgb.astype(np.float64) / 255.0 if rgb.dtype == np.uint8 else rgb.astype(np.float64)
    xyz = _srgb_to_linear(x) @ _RGB2XYZ.T / _XYZ_WHITE
    fx, fy, fz = (_f(xyz[..., i]) for i in range(3))
    lab = np.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], axis=-1)
    return lab.astype(out_dtype)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """CIELAB ``(..., 3)`` to sRGB in ``[0, 1]`` (clipped: out-of-gamut colours are clamped)."""
    _check_last3(lab, "lab")
    out_dtype = np.float32 if lab.dtype == np.float32 else np.float64
    lab = lab.astype(np.float64)
    fy = (lab[..., 0] + 16.0) / 116.0
    fx = fy + lab[..., 1] / 500.0
    fz = fy - lab[..., 2] / 200.0
    xyz = np.stack([_finv(fx), _finv(fy), _finv(fz)], axis=-1) * _XYZ_WHITE
    rgb = _linear_to_srgb(xyz @ _XYZ2RGB.T)
    return np.clip(rgb, 0.0, 1.0).astype(out_dtype)


# ---------------------------------------------------------------- torch (training, differentiable)
_T_RGB2XYZ = torch.tensor(_RGB2XYZ, dtype=torch.float32)
_T_XYZ2RGB = torch.tensor(_XYZ2RGB, dtype=torch.float32)
_T_WHITE = torch.tensor(_XYZ_WHITE, dtype=torch.float32)


def rgb_to_lab_t(rgb: torch.Tensor) -> torch.Tensor:
    """Differentiable sRGB ``(*, 3, H, W)`` in ``[0, 1]`` to CIELAB."""
    _check_chw(rgb, "rgb")
    lin = torch.where(rgb > 0.04045, ((rgb.clamp(min=0) + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    m = (_T_RGB2XYZ / _T_WHITE[:, None]).to(rgb)
    xyz = torch.einsum("ij,...jhw->...ihw", m, lin)
    f = torch.where(xyz > _EPS, xyz.clamp(min=_EPS) ** (1.0 / 3.0), (_KAPPA * xyz + 16.0) / 116.0)
    fx, fy, fz = f.unbind(-3)
    return torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=-3)


def lab_to_rgb_t(lab: torch.Tensor, clip: bool = True) -> torch.Tensor:
    """Differentiable CIELAB ``(*, 3, H, W)`` to sRGB in ``[0, 1]``."""
    _check_chw(lab, "lab")
    L, a, b = lab.unbind(-3)
    fy = (L + 16.0) / 116.0
    f = torch.stack([fy + a / 500.0, fy, fy - b / 200.0], dim=-3)
    xyz = torch.where(f**3 > _EPS, f**3, (116.0 * f - 16.0) / _KAPPA)
    xyz = xyz * _T_WHITE.to(lab)[:, None, None]
    lin = torch.einsum("ij,...jhw->...ihw", _T_XYZ2RGB.to(lab), xyz).clamp(min=0)
    rgb = torch.where(lin > 0.0031308, 1.055 * lin.clamp(min=1e-8) ** (1 / 2.4) - 0.055,
                      12.92 * lin)
    return rgb.clamp(0.0, 1.0) if clip else rgb


# ---------------------------------------------------------------- fast 8-bit path (hot loop)
def rgb8_to_lab(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB ``(H, W, 3)`` to float32 Lab via OpenCV (a few ms per 720p frame)."""
    _check_last3(rgb, "rgb")
    if rgb.dtype != np.uint8:
        raise ValueError(f"rgb8_to_lab expects uint8; got {rgb.dtype}")
    return cv2.cvtColor(rgb.astype(np.float32) * (1.0 / 255.0), cv2.COLOR_RGB2Lab)


def lab_to_rgb8(lab: np.ndarray) -> np.ndarray:
    """float32 Lab ``(H, W, 3)`` to uint8 RGB via OpenCV, rounded and clipped."""
    _check_last3(lab, "lab")
    rgb = cv2.cvtColor(np.ascontiguousarray(lab, dtype=np.float32), cv2.COLOR_Lab2RGB)
    return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)


# A grey pixel (R=G=B=v) has a=b=0 and an L that depends on v alone, so a 256-entry table is exact.
_GREY_L = rgb_to_lab(np.repeat(np.arange(256, dtype=np.float64)[:, None] / 255.0, 3, 1))[:, 0]
GREY_TO_L = _GREY_L.astype(np.float32)


def grey_to_L(grey: np.ndarray) -> np.ndarray:
    """uint8 grey ``(..., H, W)`` to float32 L in ``[0, 100]``, exactly as rgb_to_lab would give."""
    if grey.dtype != np.uint8:
        raise ValueError(f"grey_to_L expects uint8; got {grey.dtype}")
    if grey.ndim == 2 and grey.size:  # OpenCV's table lookup: ~10x numpy's fancy indexing
        return cv2.LUT(grey, GREY_TO_L)
    return GREY_TO_L[grey]


def L_to_grey(L: np.ndarray) -> np.ndarray:
    """Invert :func:`grey_to_L`: L in ``[0, 100]`` to the nearest uint8 grey level."""
    idx = np.searchsorted(GREY_TO_L, np.asarray(L, dtype=np.float32)).clip(1, 255)
    lo = GREY_TO_L[idx - 1]
    hi = GREY_TO_L[idx]
    pick = np.where(np.abs(L - lo) <= np.abs(hi - L), idx - 1, idx)
    return pick.astype(np.uint8)


def rgb8_to_grey(rgb: np.ndarray) -> np.ndarray:
    """Colour uint8 RGB to the grey level whose L equals the frame's CIELAB L (not luma Y')."""
    return L_to_grey(rgb8_to_lab(rgb)[..., 0])


# ---------------------------------------------------------------- split, merge, chroma
def split_lab(lab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(..., 3)`` Lab to L ``(...)`` and ab ``(..., 2)``."""
    _check_last3(lab, "lab")
    return lab[..., 0], lab[..., 1:]


def apply_chroma(ab: np.ndarray, strength: float) -> np.ndarray:
    """Scale chroma: 0 gives grey, 1 the prediction, 2 double saturation.

    The range is :class:`restorer.look.Look`'s, which is where a user's value is checked; this
    guard only catches a caller that bypassed it.
    """
    if not 0.0 <= strength <= CHROMA_MAX:
        raise ValueError(f"chroma strength must be within 0..{CHROMA_MAX:g}; got {strength}")
    return ab * np.float32(strength)


_LIN_M = (_XYZ2RGB * _XYZ_WHITE[None, :]).astype(np.float32)


def _lab_to_linear(lab: np.ndarray, chroma_scale: np.ndarray) -> np.ndarray:
    """Unclipped linear RGB of ``(N, 3)`` Lab with ab scaled; OpenCV clips, hiding the excess."""
    fy = (lab[:, 0] + np.float32(16.0)) / np.float32(116.0)
    f = np.stack([fy + lab[:, 1] * chroma_scale / np.float32(500.0), fy,
                  fy - lab[:, 2] * chroma_scale / np.float32(200.0)], axis=-1)
    f3 = f * f * f
    xyz = np.where(f3 > _EPS, f3, (np.float32(116.0) * f - np.float32(16.0)) / np.float32(_KAPPA))
    # Written out: numpy's float32 (N, 3) @ (3, 3) takes a slow path, ~5x slower than this.
    x, y, z = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    m = _LIN_M
    return np.stack([m[i, 0] * x + m[i, 1] * y + m[i, 2] * z for i in range(3)], axis=-1)


_L_STEPS = 2  # table cells per L unit
_HUE_STEPS = 1  # table cells per degree of hue


@functools.cache
def _max_chroma_table() -> np.ndarray:
    """Largest in-gamut chroma per (L, hue) cell, the minimum over the cell's corners.

    Built once by bisection on the grid (about 70k points). Taking each cell's corner minimum (and
    a hair less) makes the lookup conservative, so a pixel scaled to it lands inside sRGB.
    """
    Ls = np.linspace(0.0, 100.0, 100 * _L_STEPS + 1, dtype=np.float32)
    hues = np.deg2rad(np.linspace(0.0, 360.0, 360 * _HUE_STEPS + 1, dtype=np.float32))
    LL, HH = np.meshgrid(Ls, hues, indexing="ij")
    lab = np.stack([LL.ravel(), np.cos(HH).ravel(), np.sin(HH).ravel()], -1).astype(np.float32)
    lo = np.zeros(len(lab), np.float32)
    hi = np.full(len(lab), 200.0, np.float32)
    for _ in range(16):  # 200 / 2**16: far below what 8 bits can show
        mid = (lo + hi) / 2
        lin = _lab_to_linear(lab, mid)
        ok = (lin >= 0.0).all(-1) & (lin <= 1.0).all(-1)
        lo = np.where(ok, mid, lo)
        hi = np.where(ok, hi, mid)
    grid = lo.reshape(LL.shape)
    cells = np.minimum(np.minimum(grid[:-1, :-1], grid[1:, :-1]),
                       np.minimum(grid[:-1, 1:], grid[1:, 1:]))
    return (cells * 0.995).astype(np.float32)


def fit_gamut(L: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """Scale each pixel's chroma down (hue and L kept) so that (L, a, b) lies inside sRGB."""
    return cv2.merge(_fit_gamut_planes(L, ab))


def _fit_gamut_planes(L: np.ndarray, ab: np.ndarray) -> list[np.ndarray]:
    """:func:`fit_gamut` as separate a and b planes (what the merge with L wants)."""
    table = _max_chroma_table()
    a, b = cv2.split(np.ascontiguousarray(ab, dtype=np.float32))
    chroma, hue = cv2.cartToPolar(a, b, angleInDegrees=True)
    # The (L, hue) cell holding each pixel, gathered by OpenCV's remap (~3x a numpy take with
    # its index arithmetic). Nearest-neighbour remap rounds; the half-cell shift makes that the
    # floor, except at exact cell edges, where either neighbour's corner minimum holds the point.
    hue -= np.float32(0.5 / _HUE_STEPS)
    hue *= np.float32(_HUE_STEPS)
    row = np.asarray(L, dtype=np.float32) * np.float32(_L_STEPS)
    row -= np.float32(0.5)
    limit = cv2.remap(table, hue, row, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
    # cv2.max takes a scalar for src2; stubs before OpenCV 5.1 list arrays only.
    scale = cv2.divide(limit, cv2.max(chroma, 1e-6))  # type: ignore[call-overload,unused-ignore]
    np.minimum(scale, 1.0, out=scale)
    return [cv2.multiply(a, scale), cv2.multiply(b, scale)]


def merge_L_ab(L: np.ndarray, ab: np.ndarray, chroma: float = 1.0) -> np.ndarray:
    """Merge full-resolution L ``(H, W)`` with ab ``(H, W, 2)`` into a uint8 RGB frame.

    Colours outside the sRGB gamut are pulled towards grey (chroma reduced, L kept) instead of
    being clipped per channel, because clipping would change the lightness the source gave us:
    converting the result back to L matches the input L within 1 unit (8-bit rounding).
    """
    return cv2.convertScaleAbs(merge_L_ab_float(L, ab, chroma), alpha=255.0)


def merge_L_ab_float(L: np.ndarray, ab: np.ndarray, chroma: float = 1.0) -> np.ndarray:
    """:func:`merge_L_ab` before rounding: float32 RGB in 0..1, for 16-bit stills."""
    if L.shape != ab.shape[:-1] or ab.shape[-1] != 2:
        raise ValueError(f"L {tuple(L.shape)} and ab {tuple(ab.shape)} do not match")
    L = L.astype(np.float32, copy=False)
    ab = ab.astype(np.float32, copy=False)
    lab = cv2.merge([L, *_fit_gamut_planes(L, apply_chroma(ab, chroma) if chroma != 1 else ab)])
    rgb = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)
    # The table lookup leaves almost nothing out of gamut; what remains (cells where the boundary
    # bends) is caught here. OpenCV clips out-of-gamut results to [0, 1], so each such pixel has
    # a channel at exactly 0 or 1 (true black/white ones too, which are left out below).
    # (numpy's reductions over a last axis of 3 are ~50x slower than inRange here.)
    inside = cv2.inRange(rgb, (1e-7, 1e-7, 1e-7), (1 - 1e-7, 1 - 1e-7, 1 - 1e-7))
    bad = np.flatnonzero(inside.ravel() == 0)
    lab_flat = lab.reshape(-1, 3)
    if bad.size:
        # Black and white pixels (L 0 or 100: no chroma fits) are exact as they are; a
        # letterboxed or faded frame has hundreds of thousands of them.
        sub = lab_flat.take(bad, axis=0)
        coloured = (sub[:, 1] != 0) | (sub[:, 2] != 0)
        bad, sub = bad[coloured], sub[coloured]
    if bad.size:
        rgb_flat = rgb.reshape(-1, 3)
        lo = np.zeros(len(sub), np.float32)
        hi = np.ones(len(sub), np.float32)
        # Bisection on the chroma scale: in gamut at lo (grey always is), out at hi.
        for _ in range(6):  # 1/64 of the chroma: finer is invisible
            mid = (lo + hi) / 2
            lin = _lab_to_linear(sub, mid)
            ok = (lin >= -1e-4).all(-1) & (lin <= 1 + 1e-4).all(-1)
            lo = np.where(ok, mid, lo)
            hi = np.where(ok, hi, mid)
        # Pixels in gamut at full chroma (pure black or white) keep it.
        full = _lab_to_linear(sub, hi)
        keep = (full >= -1e-4).all(-1) & (full <= 1 + 1e-4).all(-1)
        sub[:, 1:] *= np.where(keep, hi, lo)[:, None]
        rgb_flat[bad] = cv2.cvtColor(sub[:, None, :], cv2.COLOR_Lab2RGB)[:, 0, :]
    return rgb


def normalise_L(L: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    return L / L_SCALE - 1.0


def denormalise_ab(ab: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    return ab * AB_SCALE


def normalise_ab(ab: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    return ab / AB_SCALE
