"""Restorer: colourise black-and-white film and TV from a show's surviving colour episodes."""

__version__ = "0.1.0"
