"""Interlaced masters (PAL 576i, NTSC 480i): colourise field by field, keep the master interlaced.

A woven frame holds two fields captured a field period apart: rows ``0::2`` (the top field) and
rows ``1::2`` (the bottom field). Handed to the network as one picture, a moving edge is combed
(the two fields' edges alternate row by row): the network colours a ghost that exists at neither
instant, and the guided upsampling then spreads that colour along the combing. So each field is
made a picture of its own instant and colourised alone:

1. :func:`split_fields` bobs each field back to full height by linear interpolation between its
   own lines, at their true vertical positions (the bottom field sits half a frame line lower),
   so both fields of a still picture give nearly the same image, and the stabiliser's flow sees
   no false vertical jitter between them;
2. the network and the stabiliser run on the bobbed fields in temporal order (a stream at twice
   the frame rate), at the same working size as a progressive frame;
3. each field's ab is upsampled to full height, guided by its own bobbed L, and only the field's
   own rows are kept; :func:`weave_ab` weaves them back into one frame's ab;
4. that ab is merged with the L of the *original* woven frame, so L stays exact in both fields.

The two stages mirror the engine's, so the export loop keeps its threading:
:func:`predict_fields` (network and stabiliser, one caller, frames in order) and
:func:`finish_fields` (upsample, weave, merge: stateless, for a thread pool). The cost is two
network runs per frame, one per field.

:func:`measure_field_order` tells the field order (or that the picture is progressive) from the
frames themselves, for sources whose flags are missing or wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import cv2
import numpy as np

from restorer.color import grey_to_L, merge_L_ab
from restorer.engine import Colourised, Colouriser, Prediction
from restorer.look import Look
from restorer.media import FrameReader, VideoInfo
from restorer.media.probe import FieldOrder as StreamOrder

if TYPE_CHECKING:
    from restorer.temporal import ChromaStabiliser

#: Which field comes first in time: "tt" the top field (rows 0, 2, ...), "bb" the bottom field.
FieldOrder = Literal["tt", "bb"]
#: What :func:`measure_field_order` can find.
MeasuredOrder = Literal["tt", "bb", "progressive"]

#: A pixel moves when its two same-parity fields in neighbouring frames differ by more than this
#: (grey levels, after a 5x5 mean that keeps film grain below it).
MOTION_LEVEL = 6.0
#: A pair of frames counts when at least this fraction of its pixels moves.
MIN_MOVING = 0.002
#: Field dominance must make the motion this much smoother (relative: ``(b - a) / (a + b)``, see
#: :class:`FieldEvidence`) before the source is called interlaced.
MIN_ASYMMETRY = 0.1
#: Moving areas of woven frames whose adjacent-row differences are below this multiple of their
#: same-field ones show no combing (see :func:`combing`). Progressive footage measured 0.33-0.53
#: (franck, bikes, carphone, city, tree, kphotoalbum; asymmetry under 0.003); woven test
#: patterns 0.8 (96x64) to 2.7 (720x576), with asymmetry 0.22-0.40.
MIN_COMBING = 0.7


def _check_order(order: str) -> None:
    if order not in ("tt", "bb"):
        raise ValueError(f"field order must be 'tt' (top first) or 'bb' (bottom first); "
                         f"got {order!r}")


def _check_grey(grey: np.ndarray) -> None:
    if grey.ndim != 2 or grey.dtype != np.uint8:
        raise ValueError(f"expected a uint8 grey frame (H, W); got {grey.dtype} {grey.shape}")
    if grey.shape[0] < 2:
        raise ValueError(f"an interlaced frame needs at least 2 rows; got {grey.shape}")


def bob(grey: np.ndarray, parity: int) -> np.ndarray:
    """One field of uint8 ``grey`` ``(H, W)`` as a full-height picture ``(H, W)``.

    ``parity`` 0 takes the top field (rows ``0::2``), 1 the bottom field (rows ``1::2``). The
    field's own rows are copied exactly; each row between two of them is their rounded mean
    (linear interpolation at the true half-way position), and a row beyond the field's first or
    last line repeats it.
    """
    _check_grey(grey)
    if parity not in (0, 1):
        raise ValueError(f"parity must be 0 (top field) or 1 (bottom field); got {parity!r}")
    H = grey.shape[0]
    field = grey[parity::2]
    n = field.shape[0]
    y = np.arange(H) - parity
    # Own rows have y even: both indices are the row itself, and (2v + 1) >> 1 == v exactly.
    lo = np.clip(y // 2, 0, n - 1)
    hi = np.clip((y + 1) // 2, 0, n - 1)
    total = field[lo].astype(np.uint16) + field[hi] + np.uint16(1)
    return (total >> 1).astype(np.uint8)


def split_fields(grey: np.ndarray, order: FieldOrder) -> tuple[np.ndarray, np.ndarray]:
    """A woven uint8 frame ``(H, W)`` to its two fields, first and second in time, each bobbed to
    a full-height uint8 picture ``(H, W)`` (see :func:`bob`). Odd ``H`` is fine: the top field
    then has one line more."""
    _check_order(order)
    top, bottom = bob(grey, 0), bob(grey, 1)
    return (top, bottom) if order == "tt" else (bottom, top)


def weave_ab(ab_first: np.ndarray, ab_second: np.ndarray, order: FieldOrder) -> np.ndarray:
    """Weave two full-height pictures (ab ``(H, W, 2)``, or any ``(H, ...)`` array) of the first
    and second field into one frame: each field's own rows from its own picture."""
    _check_order(order)
    if ab_first.shape != ab_second.shape or ab_first.ndim < 2:
        raise ValueError(f"the fields' pictures must have one shape (H, W, ...); got "
                         f"{ab_first.shape} and {ab_second.shape}")
    top, bottom = (ab_first, ab_second) if order == "tt" else (ab_second, ab_first)
    out = np.empty_like(ab_first)
    out[0::2] = top[0::2]
    out[1::2] = bottom[1::2]
    return out


# ---------------------------------------------------------------- the two stages
@dataclass(frozen=True)
class FieldPrediction:
    """One woven frame between :func:`predict_fields` and :func:`finish_fields`."""

    grey: np.ndarray  #: the woven uint8 frame ``(H, W)``, whose L the output keeps
    order: FieldOrder
    first: Prediction  #: the engine's stage one for the bobbed first field
    second: Prediction  #: ... and for the second


def predict_fields(col: Colouriser, greys: Sequence[np.ndarray], look: Look | None = None,
                   stabiliser: ChromaStabiliser | None = None, order: FieldOrder = "tt"
                   ) -> list[FieldPrediction]:
    """Stage one for woven frames: both fields of each frame through :meth:`Colouriser.predict`
    in temporal order (first field of frame 0, second field of frame 0, first of frame 1, ...),
    so ``stabiliser`` sees one stream at twice the frame rate. Two network runs per frame.

    Runs on the caller's thread, one caller at a time, frames in order (the stabiliser's state
    carries over from one call to the next, as with :meth:`Colouriser.predict`).
    """
    _check_order(order)
    for g in greys:
        _check_grey(g)
    fields = [f for g in greys for f in split_fields(g, order)]
    preds = col.predict(fields, look, stabiliser)
    return [FieldPrediction(g, order, preds[2 * i], preds[2 * i + 1])
            for i, g in enumerate(greys)]


def finish_fields(frame: FieldPrediction, look: Look | None = None) -> Colourised:
    """Stage two for one woven frame: each field's ab upsampled (guided by its own bobbed L),
    woven, and merged with the woven frame's own L at ``look.chroma``. Keeps no state, so a
    thread pool may run it."""
    look = look if look is not None else Look()
    ab = weave_ab(Colouriser.upsample(frame.first), Colouriser.upsample(frame.second),
                  frame.order)
    return Colourised(ab, merge_L_ab(grey_to_L(frame.grey), ab, look.chroma))


def colourise_interlaced(col: Colouriser, greys: Sequence[np.ndarray], look: Look | None = None,
                         stabiliser: ChromaStabiliser | None = None, order: FieldOrder = "tt"
                         ) -> list[Colourised]:
    """Woven uint8 frames ``(H, W)`` to woven full-resolution ab and RGB, field by field:
    :func:`predict_fields` then :func:`finish_fields` for each frame."""
    return [finish_fields(p, look) for p in predict_fields(col, greys, look, stabiliser, order)]


# ---------------------------------------------------------------- measuring the field order
def combing(grey: np.ndarray, where: np.ndarray | None = None) -> float:
    """How combed a woven uint8 frame ``(H, W)`` is, over the pixels ``where`` is True (all when
    None): the mean squared difference of adjacent rows (always of opposite fields) over that of
    rows two apart (of one field).

    A progressive picture's neighbouring rows are closer than rows two apart, so it scores
    below 1 (about 0.25 for smooth content, 1 for pure grain); motion between the fields adds to
    the first term only, so a moving edge in a woven frame scores several times that. Fine still
    detail at the line rate scores high too, which is why :func:`measure_field_order` looks only
    where the picture moves.
    """
    _check_grey(grey)
    H = grey.shape[0]
    if H < 5:
        return 0.0
    x = grey.astype(np.float32)
    d1 = np.square(x[1:] - x[:-1])  # row y to y + 1
    d2 = np.square(x[2:] - x[:-2])  # row y to y + 2
    # Both centred on rows 2 .. H - 3, so a mask selects the same pixels for each.
    opposite = (d1[1:-2] + d1[2:-1]) * 0.5
    same = (d2[:-2] + d2[2:]) * 0.5
    if where is not None:
        if where.shape != grey.shape:
            raise ValueError(f"mask {where.shape} does not match the frame {grey.shape}")
        sel = where[2:-2]
        opposite, same = opposite[sel], same[sel]
    if opposite.size == 0:
        return 0.0
    return float(opposite.mean()) / max(float(same.mean()), 1e-6)


@dataclass(frozen=True)
class FieldEvidence:
    """What :func:`measure_field_order` decides on, over the pairs of consecutive frames that
    move, measured only where they move.

    For frames ``n`` and ``n + 1`` with bobbed fields ``T`` (top) and ``B`` (bottom): under
    top-first, ``B(n)`` and ``T(n+1)`` are one field period apart and ``T(n)`` and ``B(n+1)``
    three; under bottom-first the other way round; in a progressive picture both are one frame.
    """

    bottom_to_next_top: float  #: ``a``: mean |B(n) - T(n+1)| in grey levels
    top_to_next_bottom: float  #: ``b``: mean |T(n) - B(n+1)|
    asymmetry: float  #: median over moving pairs of ``(b - a) / (a + b)``: > 0 top first
    combing: float  #: median :func:`combing` of frame ``n`` of the moving pairs
    moving_pairs: int  #: pairs with more than :data:`MIN_MOVING` of their pixels moving


def field_evidence(greys: Sequence[np.ndarray]) -> FieldEvidence:
    """The measurements behind :func:`measure_field_order`, for logs and for tuning."""
    if len(greys) < 2:
        raise ValueError(f"measuring the field order needs at least 2 consecutive frames; "
                         f"got {len(greys)}")
    for g in greys:
        _check_grey(g)
    if len({g.shape for g in greys}) != 1:
        raise ValueError("the frames must all have one size")
    bobbed = [(bob(g, 0).astype(np.float32), bob(g, 1).astype(np.float32)) for g in greys]
    a_s, b_s, asym, comb = [], [], [], []
    for n in range(len(greys) - 1):
        (t0, b0), (t1, b1) = bobbed[n], bobbed[n + 1]
        # Motion from fields of one parity, which share their lines: the bob's interpolation
        # error on fine still detail cancels, and a still picture moves nowhere.
        motion = cv2.blur(cv2.absdiff(t0, t1) + cv2.absdiff(b0, b1), (5, 5)) * np.float32(0.5)
        where = motion > MOTION_LEVEL
        if where.mean() < MIN_MOVING:
            continue
        # Only where it moves: still pixels would add the bob's error to both sides alike and
        # dilute the difference.
        a = float(cv2.absdiff(b0, t1)[where].mean())
        b = float(cv2.absdiff(t0, b1)[where].mean())
        a_s.append(a)
        b_s.append(b)
        asym.append((b - a) / max(a + b, 1e-6))
        comb.append(combing(greys[n], where))
    if not asym:
        return FieldEvidence(0.0, 0.0, 0.0, 0.0, 0)
    # Medians: a scene cut between two frames is one large, symmetric pair; it must not outvote
    # the rest.
    return FieldEvidence(float(np.mean(a_s)), float(np.mean(b_s)), float(np.median(asym)),
                         float(np.median(comb)), len(asym))


def measure_field_order(greys: Sequence[np.ndarray]) -> MeasuredOrder:
    """Field dominance of consecutive uint8 grey frames ``(H, W)``, from the pictures alone.

    "progressive" when nothing moves (a still interlaced picture has no combing to harm the
    colour), when the moving areas show no combing (:data:`MIN_COMBING`), or when neither field
    order makes the motion smoother than the other (:data:`MIN_ASYMMETRY`), as with
    progressive-segmented film; else "tt" (top field first) or "bb". Hand it a few dozen
    consecutive frames with motion; pairs of still frames count for nothing. Motion of more than
    the width of the moving detail in one field period makes both orders look alike.
    """
    ev = field_evidence(greys)
    if ev.moving_pairs == 0 or ev.combing < MIN_COMBING or abs(ev.asymmetry) < MIN_ASYMMETRY:
        return "progressive"
    return "tt" if ev.asymmetry > 0 else "bb"


# Frames read to measure interlacing: enough motion to judge, little time before frame 0.
FIELD_SAMPLE = 24


def field_order_for(info: VideoInfo, start: int = 0, end: int | None = None
                    ) -> tuple[StreamOrder, str | None]:
    """The field order to render with, from the stream's flag checked against the frames
    (sampled from the middle of the range), and a note when the two disagree or the flag was
    missing. A measurement that sees no combing leaves a flag saying interlaced alone (still
    or film-like passages look progressive)."""
    end = info.frame_count if end is None else end
    first = start + max(0, (end - start - FIELD_SAMPLE) // 2)
    with FrameReader(info, first, min(end, first + FIELD_SAMPLE)) as reader:
        measured = measure_field_order([f for _, f in reader])
    flag = info.field_order
    names = {"tt": "top field first", "bb": "bottom field first"}
    if measured == "progressive":
        if flag == "unknown":
            return "progressive", None
        return flag, None
    if flag == measured:
        return flag, None
    said = {"unknown": "no field order flag", "progressive": "a progressive flag",
            "tt": "a top-field-first flag", "bb": "a bottom-field-first flag"}[flag]
    return measured, (f"the source has {said} but its frames are interlaced, "
                      f"{names[measured]}: rendered as such")
