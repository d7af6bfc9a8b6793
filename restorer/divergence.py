"""Jensen-Shannon divergence of histograms: one definition for the metrics and the cut detector.

The quality metric (CDC, :mod:`restorer.metrics`) reports it in nats, as the papers it is
compared with do; the cut detector (:mod:`restorer.scenes`) wants bits, whose range is ``0..1``.
The two differ only by a constant factor: ``bits = nats / ln 2``.
"""

from __future__ import annotations

import math

import numpy as np


def _log(x: np.ndarray, base: float) -> np.ndarray:
    # The dedicated functions for the bases in use, so each caller's figures are bit-for-bit
    # those of the formula it was written with (log2 and log / ln 2 differ in the last place).
    if base == 2:
        return np.log2(x)
    if base == math.e:
        return np.log(x)
    return np.log(x) / math.log(base)


def js_divergence(p: np.ndarray, q: np.ndarray, base: float = math.e) -> np.ndarray:
    """Jensen-Shannon divergence of normalised histograms along the last axis.

    Parameters
    ----------
    p, q
        Histograms that each sum to 1 along the last axis (broadcastable shapes).
    base
        Base of the logarithm: ``math.e`` (the default) gives nats, in ``[0, ln 2]``; ``2``
        gives bits, in ``[0, 1]``.

    Returns
    -------
    numpy.ndarray
        The divergence per histogram pair: shape ``p.shape[:-1]`` (0-d for 1-D inputs). 0 for
        identical histograms, the maximum for disjoint ones.
    """
    if base <= 0 or base == 1:
        raise ValueError(f"logarithm base must be positive and not 1; got {base}")
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    m = 0.5 * (p + q)

    def kl(a: np.ndarray) -> np.ndarray:
        # KL(a || m); m > 0 wherever a > 0, and 0 * log 0 counts as 0.
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(a > 0, a * _log(a / np.where(m > 0, m, 1.0), base), 0.0)
        return t.sum(-1)

    return 0.5 * kl(p) + 0.5 * kl(q)
