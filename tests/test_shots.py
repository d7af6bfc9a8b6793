"""Shots and per-shot chroma: bounds, settings that trim each other, and export applying them."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import color as skcolor

from restorer.errors import RestorerError
from restorer.look import Look
from restorer.media import FrameReader, probe
from restorer.render import RenderJob, run
from restorer.shots import (
    ShotChroma,
    check_shots,
    chroma_at,
    shot_bounds,
    shot_number,
    with_shot,
)


def test_bounds_and_numbers():
    cuts = [10, 25]
    assert shot_bounds(cuts, 40, 0) == (0, 10)
    assert shot_bounds(cuts, 40, 9) == (0, 10)
    assert shot_bounds(cuts, 40, 10) == (10, 25)
    assert shot_bounds(cuts, 40, 39) == (25, 40)
    assert shot_bounds([], 40, 17) == (0, 40)
    assert [shot_number(cuts, n) for n in (0, 9, 10, 24, 25, 39)] == [1, 1, 2, 2, 3, 3]


def test_settings_trim_each_other_and_clear():
    shots = with_shot((), 10, 25, 0.5)
    assert shots == (ShotChroma(10, 25, 0.5),)
    shots = with_shot(shots, 20, 30, 1.5)  # overlaps the end of the first
    assert shots == (ShotChroma(10, 20, 0.5), ShotChroma(20, 30, 1.5))
    assert [chroma_at(shots, n, 1.0) for n in (9, 10, 19, 20, 29, 30)] == \
        [1.0, 0.5, 0.5, 1.5, 1.5, 1.0]
    assert with_shot(shots, 20, 30, None) == (ShotChroma(10, 20, 0.5),)
    assert with_shot(shots, 0, 100, 9.0) == (ShotChroma(0, 100, 2.0),)  # clamped to the range


def test_bad_settings_say_why():
    with pytest.raises(RestorerError, match="at least one frame"):
        ShotChroma(5, 5, 1.0)
    with pytest.raises(RestorerError, match="chroma"):
        ShotChroma(0, 5, 3.0)
    with pytest.raises(RestorerError, match="overlap"):
        check_shots([ShotChroma(0, 10, 1.0), ShotChroma(5, 12, 0.5)])
    with pytest.raises(RestorerError, match="past the episode"):
        check_shots([ShotChroma(0, 10, 1.0)], frame_count=8)
    with pytest.raises(RestorerError, match="start"):
        ShotChroma.from_dict({"end": 3, "chroma": 1})


def _frames(path):
    return [rgb.astype(np.int16) for _, rgb in FrameReader(probe(path), mode="rgb")]


def test_export_applies_each_shots_chroma(clip_factory, tmp_path, tiny_colouriser):
    """Frames 5..9 at chroma 0 come out grey and 10..14 exactly as a whole export at 0.5 makes
    them; the rest exactly as an export with no shot settings (FFV1 is lossless)."""
    src = clip_factory("ep.mp4", seconds=0.8, colour=False)  # 20 frames
    plain, half, shot = tmp_path / "plain.mkv", tmp_path / "half.mkv", tmp_path / "shot.mkv"
    run(RenderJob(src, plain, codec="ffv1"), colouriser=tiny_colouriser)
    run(RenderJob(src, half, codec="ffv1", look=Look(chroma=0.5)), colouriser=tiny_colouriser)
    job = RenderJob(src, shot, codec="ffv1",
                    shots=(ShotChroma(10, 15, 0.5), ShotChroma(5, 10, 0.0)))
    assert job.shots[0].start == 5  # sorted when the job is made
    run(job, colouriser=tiny_colouriser)
    a, h, b = _frames(plain), _frames(half), _frames(shot)
    assert len(b) == 20
    for n in range(20):
        if 5 <= n < 10:
            lab = skcolor.rgb2lab(b[n].astype(np.uint8))
            assert np.abs(lab[..., 1:]).max() < 1.5, n  # grey
            assert not np.array_equal(b[n], a[n])
        elif 10 <= n < 15:
            assert np.array_equal(b[n], h[n]), n
            assert not np.array_equal(b[n], a[n])
        else:
            assert np.array_equal(b[n], a[n]), n
