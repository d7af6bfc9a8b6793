"""The look of a colourisation: how strong the colour is, the network's working size, and how
much the colour is steadied from frame to frame.

A :class:`Look` is a frozen value: the desk's state holds one, an export job carries one, and
every engine call is handed one, so no caller sets attributes on a shared engine and a preview
and an export of the same frame with the same Look give the same pixels. Its ranges are checked
once, here, when it is made.
"""

from __future__ import annotations

import dataclasses
import math
import operator
from dataclasses import dataclass
from typing import Any, Protocol

from restorer.errors import RestorerError

#: Working short side of a model whose file does not say what it was trained at.
DEFAULT_WORKING_SIZE = 160
#: Chroma strength bounds: 0 is grey, 1 the prediction, 2 doubled saturation.
CHROMA_MAX = 2.0
#: Stabilisation strength bounds (see :class:`restorer.temporal.ChromaStabiliser`).
STABILISE_MAX = 1.0
#: Working sizes the engine accepts: below 16 the U-Net has nothing to see, above 4096 it would
#: only upscale the frame.
WORKING_SIZE_MIN, WORKING_SIZE_MAX = 16, 4096


class HasWorkingSize(Protocol):
    """What :meth:`Look.size_for` needs of a model: its metadata's ``working_size``."""

    @property
    def working_size(self) -> int: ...


def _number(name: str, value: Any, high: float) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise RestorerError(f"{name} must be a number within 0..{high:g}; got {value!r}") from None
    if not (math.isfinite(x) and 0.0 <= x <= high):
        raise RestorerError(f"{name} must be within 0..{high:g}; got {value}")
    return x


@dataclass(frozen=True)
class Look:
    """Chroma strength, working size and temporal stabilisation for one render or preview.

    Parameters
    ----------
    chroma
        ``0..2``: 0 gives grey, 1 the colour as predicted, 2 doubled saturation.
    working_size
        Short side in pixels the network runs at (``16..4096``); None: the model's own (what it
        was trained at). Frames are never scaled up to it.
    stabilise
        ``0..1`` temporal chroma stabilisation; 0 is off.

    Raises
    ------
    RestorerError
        A value out of range, with a one-line message naming it.
    """

    chroma: float = 1.0
    working_size: int | None = None
    stabilise: float = 0.0
    # Later: per-shot hints (reference colours, masks) join here as further frozen fields.

    def __post_init__(self) -> None:
        # Frozen: the checked, normalised values are written once, through object.__setattr__.
        object.__setattr__(self, "chroma", _number("chroma", self.chroma, CHROMA_MAX))
        object.__setattr__(self, "stabilise",
                           _number("stabilisation strength", self.stabilise, STABILISE_MAX))
        if self.working_size is not None:
            try:
                if isinstance(self.working_size, bool):
                    raise TypeError
                size = operator.index(self.working_size)
            except TypeError:
                raise RestorerError(
                    f"working size must be a whole number of pixels within "
                    f"{WORKING_SIZE_MIN}..{WORKING_SIZE_MAX}; got {self.working_size!r}"
                ) from None
            if not WORKING_SIZE_MIN <= size <= WORKING_SIZE_MAX:
                raise RestorerError(f"working size must be within {WORKING_SIZE_MIN}.."
                                    f"{WORKING_SIZE_MAX}; got {size}")
            object.__setattr__(self, "working_size", size)

    def replace(self, **changes: Any) -> Look:
        """A copy with ``changes`` applied (and checked), e.g. ``look.replace(chroma=0.5)``."""
        return dataclasses.replace(self, **changes)

    def size_for(self, model: HasWorkingSize) -> int:
        """The working short side to run ``model`` (a :class:`~restorer.checkpoint.ModelMeta`)
        at: this Look's, or the model's own when it leaves it open."""
        if self.working_size is not None:
            return self.working_size
        return int(model.working_size)
