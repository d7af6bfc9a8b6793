"""Typed errors. Each message is one line a user can act on; the CLI prints it, the GUI shows it."""

from __future__ import annotations


class RestorerError(Exception):
    """Base class for every error Restorer raises on purpose."""


class MediaError(RestorerError):
    """A video could not be probed, decoded or encoded."""


class ModelError(RestorerError):
    """A model file is missing, corrupt, or of an unknown or mismatched architecture."""


class DatasetError(RestorerError):
    """A dataset is empty, corrupt, or unusable for training."""


class OutputError(RestorerError):
    """The destination cannot be written: same as the input, unwritable, or the disk is full."""


class Cancelled(RestorerError):
    """The user cancelled a long job; nothing partial was left behind."""


class FarmError(RestorerError):
    """A render-farm run cannot start or go on: no cluster, storage a node cannot see, a chunk
    that failed every retry."""
