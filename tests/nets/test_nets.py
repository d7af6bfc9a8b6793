from __future__ import annotations

import pytest
import torch

from restorer.errors import ModelError
from restorer.nets import build_net
from restorer.nets.registry import available


def test_registry_lists_generator_and_discriminator() -> None:
    assert {"unet", "patchgan"} <= set(available())


@pytest.mark.parametrize("hw", [(32, 32), (37, 53), (8, 120)])
def test_unet_any_size_and_range(hw: tuple[int, int]) -> None:
    net = build_net({"arch": "unet", "base": 4, "depth": 3}).eval()
    y = net(torch.randn(2, 1, *hw))
    assert y.shape == (2, 2, *hw)
    assert y.abs().max() <= 1.0


def test_unet_skip_connections_carry_detail() -> None:
    """With skips, a one-pixel change in L changes the output at that pixel."""
    torch.manual_seed(0)
    net = build_net({"arch": "unet", "base": 4, "depth": 2}).eval()
    x = torch.zeros(1, 1, 32, 32)
    x2 = x.clone()
    x2[..., 5, 7] = 1.0
    diff = (net(x2) - net(x)).abs()[0].sum(0)
    assert diff[5, 7] > 0 and diff[5, 7] >= diff.max() * 0.1


def test_spec_rebuilds_same_architecture() -> None:
    net = build_net({"arch": "unet", "base": 6, "depth": 2})
    twin = build_net(net.spec())
    assert [p.shape for p in net.parameters()] == [p.shape for p in twin.parameters()]


def test_discriminator_outputs_patch_logits() -> None:
    d = build_net({"arch": "patchgan", "base": 8, "layers": 3})
    assert d(torch.randn(2, 3, 64, 64)).shape[:2] == (2, 1)


def test_unknown_arch_and_bad_kwargs_are_clear() -> None:
    with pytest.raises(ModelError, match="unknown architecture 'nope'"):
        build_net({"arch": "nope"})
    with pytest.raises(ModelError, match="bad arguments"):
        build_net({"arch": "unet", "widht": 3})
    with pytest.raises(ModelError, match="'arch'"):
        build_net({"base": 3})
