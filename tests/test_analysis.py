"""Is a source already in colour? Decided on a few decoded frames."""

from __future__ import annotations

from restorer.analysis import looks_colour
from restorer.media import probe


def test_looks_colour(clip_factory) -> None:
    colour = probe(clip_factory("colour.mp4", audio=False))
    grey = probe(clip_factory("grey.mp4", audio=False, colour=False))
    assert looks_colour(colour) is True
    assert looks_colour(grey) is False
