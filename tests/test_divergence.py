"""The one Jensen-Shannon divergence: known answers, both bases, and the shapes it takes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from restorer.divergence import js_divergence


def _direct(p: np.ndarray, q: np.ndarray) -> float:
    """JS in nats straight from the definition, for strictly positive 1-D histograms."""
    m = (p + q) / 2
    return float(0.5 * np.sum(p * np.log(p / m)) + 0.5 * np.sum(q * np.log(q / m)))


def test_js_divergence_bounds() -> None:
    p = np.array([1.0, 0.0])
    q = np.array([0.0, 1.0])
    assert js_divergence(p, p, base=2) == pytest.approx(0.0)
    assert js_divergence(p, q, base=2) == pytest.approx(1.0)


def test_disjoint_is_ln2_nats_and_one_bit() -> None:
    p = np.array([0.5, 0.5, 0.0, 0.0])
    q = np.array([0.0, 0.0, 0.25, 0.75])
    assert float(js_divergence(p, q)) == pytest.approx(math.log(2), rel=1e-12)
    assert float(js_divergence(p, q, base=2)) == pytest.approx(1.0, rel=1e-12)


def test_matches_the_definition_in_both_bases() -> None:
    rng = np.random.default_rng(0)
    p, q = rng.random(64) + 0.01, rng.random(64) + 0.01
    p, q = p / p.sum(), q / q.sum()
    nats = _direct(p, q)
    assert 0 < nats < math.log(2)
    assert float(js_divergence(p, q)) == pytest.approx(nats, rel=1e-12)
    assert float(js_divergence(p, q, base=2)) == pytest.approx(nats / math.log(2), rel=1e-12)
    assert float(js_divergence(p, q, base=10)) == pytest.approx(nats / math.log(10), rel=1e-12)
    assert float(js_divergence(p, q)) == pytest.approx(float(js_divergence(q, p)), rel=1e-15)


def test_along_the_last_axis() -> None:
    # Per-channel histograms, as restorer.metrics.cdc gives them: one divergence per channel.
    p = np.array([[1.0, 0.0], [0.5, 0.5]])
    q = np.array([[0.0, 1.0], [0.5, 0.5]])
    out = js_divergence(p, q)
    assert out.shape == (2,)
    assert out == pytest.approx([math.log(2), 0.0])
    with pytest.raises(ValueError, match="base"):
        js_divergence(p, q, base=1)
