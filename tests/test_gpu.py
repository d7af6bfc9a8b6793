"""GPU checks, opt-in: ``pytest -m gpu`` on a machine with CUDA."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from restorer.engine import Colouriser

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def test_cuda_colourise_matches_cpu(tiny_net_meta) -> None:
    net, meta = tiny_net_meta
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (96, 128), dtype=np.uint8) for _ in range(4)]
    cpu = Colouriser.from_net(net, meta, device="cpu").colourise(frames)
    gpu = Colouriser.from_net(net, meta, device="cuda").colourise(frames)  # fp16 autocast
    for a, b in zip(cpu, gpu, strict=True):
        assert np.abs(a.astype(int) - b.astype(int)).mean() < 2.0
