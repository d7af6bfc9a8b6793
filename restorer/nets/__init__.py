"""Networks: the U-Net generator and the patch discriminator, built by name from a config dict."""

from restorer.nets.registry import build_net, register

__all__ = ["build_net", "register"]
