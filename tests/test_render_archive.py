"""Archive transfers end to end: interlaced, anamorphic, rotated, truncated and tagged sources
come out as the source says, or the export refuses them in one line."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from clips import FFMPEG
from skimage import color as skcolor

from restorer.errors import MediaError
from restorer.media import FrameReader, probe
from restorer.render import RenderJob, render


def _ffmpeg(*args: str) -> None:
    subprocess.run([FFMPEG, "-v", "error", "-y", *args], check=True)


def _interlaced(dst: Path, order: str = "tff", flag: bool = True) -> Path:
    """A woven grey clip from a 50 fps moving pattern: two fields per frame, 25 fps."""
    field = "tff" if order == "tff" else "bff"
    vf = f"format=gray,interlace=scan={field}"
    enc = ["-flags", "+ildct+ilme", "-x264-params", f"{field}=1"] if flag else []
    if not flag:
        vf += ",setfield=prog"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=96x64:rate=50:duration=1.2", "-vf", vf,
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", *enc, str(dst))
    return dst


def _greys(path: Path) -> list[np.ndarray]:
    return [g.copy() for _, g in FrameReader(probe(path))]


def _L_pairs(src: Path, dst: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """(source L, output L) per frame: the source's grey as L, the lossless output's RGB as L."""
    greys = _greys(src)
    colours = [c.copy() for _, c in FrameReader(probe(dst), mode="rgb")]
    assert len(greys) == len(colours)
    return [(skcolor.rgb2lab(np.repeat(g[..., None], 3, -1))[..., 0], skcolor.rgb2lab(c)[..., 0])
            for g, c in zip(greys, colours, strict=True)]


def test_interlaced_master_stays_interlaced_with_exact_L(tmp_path: Path,
                                                         tiny_colouriser) -> None:
    src = _interlaced(tmp_path / "576i.mp4")
    assert probe(src).field_order == "tt"
    dst = tmp_path / "out.mkv"
    events = list(render(RenderJob(src, dst, codec="ffv1"), colouriser=tiny_colouriser))
    notes = " ".join(events[-1].notes)
    assert "interlaced source (top field first)" in notes
    out = probe(dst)
    assert out.field_order == "tt" and out.frame_count == probe(src).frame_count
    # L exact in both fields: the lossless master's luma is the source's.
    for a, b in _L_pairs(src, dst)[::5]:
        for rows in (slice(0, None, 2), slice(1, None, 2)):
            assert np.abs(a[rows] - b[rows]).max() <= 1.0
    rgb = [f for _, f in FrameReader(out, mode="rgb")]
    assert max(float(np.ptp(f.astype(int), axis=-1).mean()) for f in rgb) > 2  # coloured


def test_interlaced_h264_is_flagged(tmp_path: Path, tiny_colouriser) -> None:
    src = _interlaced(tmp_path / "480i.mp4", "bff")
    dst = tmp_path / "out.mp4"
    list(render(RenderJob(src, dst), colouriser=tiny_colouriser))
    assert probe(dst).field_order == "bb"


def test_combed_frames_flagged_progressive_are_found(tmp_path: Path, tiny_colouriser) -> None:
    src = _interlaced(tmp_path / "mislabelled.mp4", flag=False)
    assert probe(src).field_order in ("progressive", "unknown")
    dst = tmp_path / "out.mkv"
    events = list(render(RenderJob(src, dst, codec="ffv1"), colouriser=tiny_colouriser))
    assert "but its frames are interlaced, top field first" in " ".join(events[-1].notes)
    assert probe(dst).field_order == "tt"


def test_progressive_source_stays_progressive(clip_factory, tmp_path: Path,
                                              tiny_colouriser) -> None:
    src = clip_factory("p.mp4", size=(96, 64), colour=False)
    events = list(render(RenderJob(src, tmp_path / "o.mp4"), colouriser=tiny_colouriser))
    assert "interlaced" not in " ".join(events[-1].notes)
    assert probe(tmp_path / "o.mp4").field_order == "progressive"


@pytest.mark.parametrize("sar", [Fraction(16, 15), Fraction(64, 45)])
def test_pixel_aspect_is_kept(sar: Fraction, tmp_path: Path, tiny_colouriser) -> None:
    src = tmp_path / "sd.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=720x576:rate=25:duration=0.2", "-vf",
            f"format=gray,setsar={sar.numerator}/{sar.denominator}", "-c:v", "libx264",
            "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(src))
    dst = tmp_path / "out.mp4"
    list(render(RenderJob(src, dst), colouriser=tiny_colouriser))
    assert probe(dst).sar == sar


@pytest.mark.parametrize("degrees", [90, 270])
def test_rotated_source_is_written_upright(degrees: int, clip_factory, tmp_path: Path,
                                           tiny_colouriser) -> None:
    flat = clip_factory("flat.mp4", size=(64, 48), colour=False, audio=False)
    src = tmp_path / "phone.mp4"
    # -display_rotation is counter-clockwise; the probe reports the clockwise turn to apply.
    _ffmpeg("-display_rotation", str(360 - degrees), "-i", str(flat), "-c", "copy", str(src))
    info = probe(src)
    assert info.rotation == degrees and info.display_size == (48, 64)
    dst = tmp_path / "out.mkv"
    events = list(render(RenderJob(src, dst, codec="ffv1"), colouriser=tiny_colouriser))
    assert any("written upright" in n for n in events[-1].notes)
    out = probe(dst)
    assert (out.width, out.height, out.rotation) == (48, 64, 0)
    for a, b in _L_pairs(src, dst)[::5]:
        assert a.shape == b.shape == (64, 48)
        assert np.abs(a - b).max() <= 1.0  # the same picture, upright


def _truncated(clip_factory, tmp_path: Path, name: str, extra: tuple[str, ...] = ()) -> Path:
    whole = clip_factory(name, size=(96, 64), seconds=4.0, colour=False, audio=False,
                         extra=extra)
    cut = tmp_path / f"cut_{name}"
    data = whole.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.6)])
    return cut


@pytest.mark.parametrize("name,extra", [("fast.mp4", ("-movflags", "+faststart")),
                                        ("cut.mkv", ())])
def test_truncated_file_is_an_error_unless_allowed(name: str, extra: tuple[str, ...],
                                                   clip_factory, tmp_path: Path,
                                                   tiny_colouriser) -> None:
    src = _truncated(clip_factory, tmp_path, name, extra)
    dst = tmp_path / "out.mkv"
    with pytest.raises(MediaError, match="is truncated: it declares 100 frames"):
        list(render(RenderJob(src, dst), colouriser=tiny_colouriser))
    assert not dst.exists()
    events = list(render(RenderJob(src, dst, allow_truncated=True),
                         colouriser=tiny_colouriser))
    decodable = probe(src).frame_count
    assert 0 < decodable < 100 and probe(dst).frame_count == decodable
    assert any(f"rendering the {decodable} that decode" in n for n in events[-1].notes)


def test_colour_tags_are_kept(tmp_path: Path, tiny_colouriser) -> None:
    src = tmp_path / "hd.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=128x72:rate=25:duration=0.2", "-vf",
            "format=gray", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
            "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709",
            str(src))
    dst = tmp_path / "out.mp4"
    list(render(RenderJob(src, dst), colouriser=tiny_colouriser))
    c = probe(dst).colour
    assert (c.matrix, c.primaries, c.transfer) == ("bt709", "bt709", "bt709")


@pytest.mark.parametrize("codec,suffix", [("h264", ".mp4"), ("prores", ".mov")])
def test_rgb_source_exports_to_yuv_codecs(codec: str, suffix: str, tmp_path: Path,
                                          tiny_colouriser) -> None:
    src = tmp_path / "master.mkv"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=0.2", "-c:v", "ffv1",
            "-pix_fmt", "gbrp", str(src))
    dst = tmp_path / f"out{suffix}"
    list(render(RenderJob(src, dst, codec=codec), colouriser=tiny_colouriser))
    assert probe(dst).frame_count == probe(src).frame_count


def test_deinterlace_writes_progressive_frames_at_field_rate(tmp_path: Path,
                                                             tiny_colouriser) -> None:
    src = _interlaced(tmp_path / "576i.mp4")
    a = probe(src)
    dst = tmp_path / "out.mp4"
    events = list(render(RenderJob(src, dst, deinterlace=True, start=5, end=25),
                         colouriser=tiny_colouriser))
    assert "deinterlaced with bwdif: 40 progressive frames" in " ".join(events[-1].notes)
    out = probe(dst)
    assert (out.fps, out.frame_count, out.field_order) == (a.fps * 2, 40, "progressive")
    assert events[-1].done == events[-1].total == 40
