"""Networks: the U-Net generator and the patch discriminator, built by name from a config dict."""

from restorer.nets.registry import ARCHS, available, build_net

__all__ = ["ARCHS", "available", "build_net"]
