"""probe: typed stream facts from PyAV, counted without decoding, agreeing with the reader."""

from __future__ import annotations

import importlib
import os
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from clips import FFMPEG, make_clip

from restorer.errors import MediaError
from restorer.media import FrameReader, probe
from restorer.media.probe import nominal_rate, timeline

# The package re-exports the function ``probe``, which shadows the module of the same name.
probe_mod = importlib.import_module("restorer.media.probe")


def _ff(*args: str) -> None:
    subprocess.run([FFMPEG, "-v", "error", "-y", *args], check=True)


def _src(size: str = "64x48", rate: str = "25", seconds: float = 1.0) -> list[str]:
    return ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds}"]


def _read_all(info) -> list[np.ndarray]:
    return [f.copy() for _, f in FrameReader(info)]


# ----------------------------------------------------------------------------- rate and count
@pytest.mark.parametrize("rate, ext, codec", [
    ("30000/1001", ".mp4", "libx264"), ("30000/1001", ".mkv", "libx264"),
    ("24000/1001", ".ts", "libx264"), ("25", ".mkv", "ffv1"), ("25", ".avi", "mpeg4"),
])
def test_exact_rate_and_count_match_the_reader(clip_factory, rate, ext, codec) -> None:
    info = probe(clip_factory(f"c{ext}", fps=rate, seconds=1.0, codec=codec, audio=False))
    assert info.fps == Fraction(rate)
    assert not info.vfr
    assert info.frame_count == len(_read_all(info)) == round(Fraction(rate))
    assert info.declared_frames == info.frame_count


def test_constant_rate_probe_decodes_one_frame(clip_factory, monkeypatch) -> None:
    """One demux pass: no ffmpeg child, and no decode pass over the frames to count them."""
    clip = clip_factory("c.mp4", seconds=1.0)

    def no_pass(*a: object, **k: object) -> None:
        raise AssertionError("probe decoded the whole of a constant-rate file")

    monkeypatch.setattr(probe_mod, "_decoded_count", no_pass)
    monkeypatch.setattr(subprocess, "run", no_pass)
    monkeypatch.setattr(subprocess, "Popen", no_pass)
    assert probe(clip).frame_count == 25


@pytest.mark.parametrize("ext", [".mp4", ".ts"])
def test_container_is_ffmpegs_demuxer_name(clip_factory, ext) -> None:
    want = {".mp4": "mov", ".ts": "mpegts"}[ext]
    assert probe(clip_factory(f"c{ext}", audio=False)).container == want


# ----------------------------------------------------------------------------- colour
@pytest.mark.parametrize("params, want", [
    ("range=tv:color_primaries=bt709:color_trc=bt709:colorspace=bt709",
     ("tv", "bt709", "bt709", "bt709")),
    ("range=pc:color_primaries=bt470bg:color_trc=smpte170m:colorspace=smpte170m",
     ("pc", "smpte170m", "bt470bg", "smpte170m")),
    ("range=tv:color_primaries=smpte240m:color_trc=smpte240m:colorspace=smpte240m",
     ("tv", "smpte240m", "smpte240m", "smpte240m")),
])
@pytest.mark.parametrize("ext", [".mp4", ".mkv"])
def test_colour_tags_named_as_ffmpeg_names_them(tmp_path, params, want, ext) -> None:
    clip = tmp_path / f"c{ext}"
    _ff(*_src(), "-vf", f"setparams={params}", "-c:v", "libx264", "-pix_fmt", "yuv420p",
        str(clip))
    c = probe(clip).colour
    assert (c.range, c.matrix, c.primaries, c.transfer) == want


def test_bt2020_and_untagged(tmp_path, clip_factory) -> None:
    clip = tmp_path / "hdr.mkv"
    _ff(*_src(), "-vf", "setparams=color_primaries=bt2020:color_trc=smpte2084:colorspace=bt2020nc",
        "-c:v", "libx264", "-pix_fmt", "yuv420p10le", str(clip))
    c = probe(clip).colour
    assert (c.matrix, c.primaries, c.transfer) == ("bt2020nc", "bt2020", "smpte2084")
    plain = probe(clip_factory("plain.mp4", audio=False)).colour
    assert (plain.matrix, plain.primaries, plain.transfer) == (None, None, None)


@pytest.mark.parametrize("codec, pix_fmt", [("ffv1", "gbrp"), ("png", None)])
def test_rgb_sources_report_matrix_gbr(clip_factory, codec, pix_fmt) -> None:
    # As ffmpeg's own listing did: matrix "gbr" (AVCOL_SPC_RGB), full range, nothing else.
    info = probe(clip_factory("rgb.mkv", codec=codec, pix_fmt=pix_fmt, audio=False))
    assert (info.colour.range, info.colour.matrix) == ("pc", "gbr")
    assert info.colour.primaries is None and info.colour.transfer is None


def test_jpeg_range_and_bit_depth(clip_factory) -> None:
    info = probe(clip_factory("j.mkv", codec="mjpeg", pix_fmt="yuvj420p", audio=False))
    assert info.colour.range == "pc" and info.bit_depth == 8
    assert probe(clip_factory("p.mov", codec="prores_ks", audio=False)).bit_depth == 10


# ----------------------------------------------------------------------------- geometry
@pytest.mark.parametrize("sar, ext", [("16/15", ".mp4"), ("64/45", ".mkv")])
def test_sample_aspect_ratio(tmp_path, sar, ext) -> None:
    clip = tmp_path / f"pal{ext}"
    _ff(*_src("720x576", seconds=0.2), "-vf", f"setsar={sar}", "-c:v", "libx264",
        "-preset", "ultrafast", str(clip))
    info = probe(clip)
    assert (info.width, info.height, info.sar) == (720, 576, Fraction(sar))


def test_square_pixels_by_default(clip_factory) -> None:
    assert probe(clip_factory("c.mkv", codec="ffv1", audio=False)).sar == Fraction(1)


def _rotated(tmp_path: Path, degrees: int) -> tuple[Path, Path]:
    plain = make_clip(tmp_path / "plain.mp4", size=(64, 48), seconds=0.4, audio=False)
    turned = tmp_path / f"rot{degrees}.mp4"
    _ff("-display_rotation", str(degrees), "-i", str(plain), "-c", "copy", str(turned))
    return plain, turned


@pytest.mark.parametrize("ccw, clockwise", [(90, 270), (180, 180), (270, 90)])
def test_rotation_and_upright_reader_frames(tmp_path, ccw, clockwise) -> None:
    """``-display_rotation`` is counter-clockwise; ``rotation`` is the clockwise turn to upright."""
    plain, turned = _rotated(tmp_path, ccw)
    base, info = probe(plain), probe(turned)
    assert info.rotation == clockwise
    assert (info.width, info.height) == (64, 48)  # coded size, as decoded
    assert info.display_size == ((48, 64) if clockwise in (90, 270) else (64, 48))
    upright = _read_all(info)
    assert len(upright) == info.frame_count == base.frame_count
    assert upright[0].shape == (info.display_size[1], info.display_size[0])
    # The same coded pictures, turned clockwise by ``rotation`` (np.rot90 turns anticlockwise).
    for got, coded in zip(upright, _read_all(base), strict=True):
        np.testing.assert_array_equal(got, np.rot90(coded, k=-clockwise // 90))


# ----------------------------------------------------------------------------- field order
@pytest.mark.parametrize("args, want", [
    (["-vf", "setfield=tff", "-c:v", "libx264", "-flags", "+ildct+ilme"], "tt"),
    (["-vf", "setfield=bff", "-c:v", "libx264", "-flags", "+ildct+ilme"], "bb"),
    (["-vf", "setfield=tff", "-c:v", "mpeg2video", "-flags", "+ildct+ilme"], "tt"),
    (["-vf", "setfield=bff", "-c:v", "mpeg2video", "-flags", "+ildct+ilme"], "bb"),
    (["-c:v", "libx264"], "progressive"),
    (["-c:v", "mpeg2video"], "progressive"),
    (["-c:v", "rawvideo", "-pix_fmt", "yuv420p"], "unknown"),  # nothing says either way
])
def test_field_order(tmp_path, args, want) -> None:
    ext = ".ts" if "mpeg2video" in args else ".avi" if "rawvideo" in args else ".mkv"
    clip = tmp_path / f"f{ext}"
    _ff(*_src(), *args, str(clip))
    assert probe(clip).field_order == want


# ----------------------------------------------------------------------------- streams
def test_audio_and_subtitle_streams_with_language_and_title(tmp_path) -> None:
    srt = tmp_path / "subs.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:00,500\nHello\n\n"
                   "2\n00:00:00,500 --> 00:00:01,000\nWorld\n")
    clip = tmp_path / "multi.mkv"
    _ff(*_src(), "-f", "lavfi", "-i", "sine=duration=1",
        "-f", "lavfi", "-i", "sine=frequency=880:duration=1", "-i", str(srt),
        "-map", "0:v", "-map", "1:a", "-map", "2:a", "-map", "3:s",
        "-c:v", "libx264", "-c:a:0", "aac", "-c:a:1", "pcm_s16le", "-c:s", "srt",
        "-metadata:s:a:0", "language=eng", "-metadata:s:a:0", "title=Main",
        "-metadata:s:s:0", "language=fre", str(clip))
    info = probe(clip)
    first, second = info.audio
    assert (first.index, first.codec, first.language, first.title) == (1, "aac", "eng", "Main")
    assert (second.index, second.codec, second.title) == (2, "pcm_s16le", None)
    assert second.language in (None, "und")
    assert "Hz" in first.description and first.description.startswith("aac")
    (sub,) = info.subtitles
    assert (sub.index, sub.codec, sub.language, sub.title) == (3, "subrip", "fre", None)


def test_no_audio_no_subtitles(clip_factory) -> None:
    info = probe(clip_factory("c.mp4", audio=False))
    assert info.audio == () and info.subtitles == ()


# ----------------------------------------------------------------------------- cut short
@pytest.mark.parametrize("name, extra", [("fast.mp4", ["-movflags", "+faststart"]),
                                         ("cut.mkv", [])])
def test_truncated_file_reports_declared_frames(tmp_path, name, extra) -> None:
    whole = make_clip(tmp_path / name, seconds=4.0, extra=extra)
    full = probe(whole)
    assert full.declared_frames == full.frame_count == 100
    data = whole.read_bytes()
    cut = tmp_path / f"cut_{name}"
    cut.write_bytes(data[: len(data) * 6 // 10])
    info = probe(cut)  # reports, does not raise
    assert not info.vfr
    assert info.frame_count == len(_read_all(info))
    assert info.declared_frames == 100
    assert info.declared_frames > info.frame_count + 10


def test_truncated_mp4_without_index_still_raises(clip_factory, tmp_path) -> None:
    data = clip_factory("slow.mp4", seconds=1.0).read_bytes()  # moov at the end
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 6 // 10])
    with pytest.raises(MediaError, match=r"is truncated or incomplete \(its index is missing\)"):
        probe(cut)


# ----------------------------------------------------------------------------- variable rate
def _jittery(tmp_path: Path) -> Path:
    clip = tmp_path / "jitter.mkv"
    _ff(*_src(seconds=2), "-vf", "setpts='N/25/TB+0.004*sin(N)/TB'", "-fps_mode", "passthrough",
        "-c:v", "libx264", str(clip))
    return clip


def test_jittery_timestamps_are_resampled_at_the_nominal_rate(tmp_path) -> None:
    info = probe(_jittery(tmp_path))
    assert info.fps == 25 and info.vfr
    assert info.frame_count == len(_read_all(info))


def test_odd_guessed_rate_snaps_to_the_standard_one(tmp_path, monkeypatch) -> None:
    """Where ffmpeg falls back to frames/duration (e.g. 642083/25771) the median frame wins."""
    clip = _jittery(tmp_path)
    monkeypatch.setattr(probe_mod, "_guessed_rate", lambda stream: Fraction(642083, 25771))
    info = probe(clip)
    assert info.fps == 25 and info.vfr  # the reader resamples to 25 with the fps filter
    assert info.frame_count == len(_read_all(info))


def test_nominal_rate() -> None:
    assert nominal_rate(Fraction(30000, 1001), 1 / 25) == Fraction(30000, 1001)  # clean: kept
    assert nominal_rate(Fraction(642083, 25771), 0.04) == 25
    assert nominal_rate(Fraction(2500, 99), 1001 / 24000) == Fraction(24000, 1001)
    assert nominal_rate(Fraction(2500, 99), 1 / 22.2) == Fraction(2500, 99)  # nothing near
    assert nominal_rate(None, 1 / 16.02) == 16
    assert nominal_rate(None, None) is None


def test_timeline() -> None:
    # 29.97 in a 1 ms time base: rounded timestamps are still on the grid.
    ntsc = [round(n * 1001 / 30) for n in range(300)]
    line = timeline(ntsc, Fraction(1, 1000) * Fraction(30000, 1001))
    assert line.constant and line.slots == 300
    jitter = [round(40 * n + 4 * np.sin(n)) for n in range(100)]
    assert not timeline(jitter, Fraction(25, 1000)).on_grid
    sparse = [40 * n for n in list(range(25)) + list(range(25, 50, 3))]
    assert timeline(sparse, Fraction(25, 1000)).gaps > 0
    cut = [40 * n for n in range(40) if n not in (36, 37)]  # B-frames lost at a cut
    line = timeline(cut, Fraction(25, 1000))
    assert line.constant and line.tail_gaps == 2 and line.slots == 40
    assert timeline([0, 40, 40, 80], Fraction(25, 1000)).shared


def test_variable_rate_counts_after_resampling(tmp_path) -> None:
    src = tmp_path / "vfr.mkv"
    _ff(*_src(seconds=2), "-vf", "select='lt(t,1)+not(mod(n,3))'", "-fps_mode", "vfr",
        "-c:v", "libx264", str(src))
    info = probe(src)
    assert info.vfr and info.fps == 25
    assert info.frame_count == len(_read_all(info))


# ----------------------------------------------------------------------------- tiny sources
@pytest.mark.parametrize("size, codec, pix_fmt, ext", [
    ((1, 1), "ffv1", None, ".mkv"), ((2, 2), "ffv1", None, ".mkv"),
    ((2, 2), "png", None, ".mkv"), ((1, 1), "libx264", "yuv444p", ".mp4"),
    ((2, 2), "libx264", "yuv444p", ".mp4"),
])
def test_tiny_sources(clip_factory, size, codec, pix_fmt, ext) -> None:
    info = probe(clip_factory(f"t{ext}", size=size, codec=codec, pix_fmt=pix_fmt, audio=False))
    assert (info.width, info.height) == size
    frames = _read_all(info)
    assert len(frames) == info.frame_count == 25
    assert frames[0].shape == (size[1], size[0])


# ----------------------------------------------------------------------------- errors
def _garbage_h264(tmp_path: Path) -> Path:
    """A real H.264 stream layout whose packets hold random bytes: demuxes, never decodes."""
    import av

    good = make_clip(tmp_path / "good.mp4", seconds=0.4, audio=False)
    bad = tmp_path / "garbage.mkv"
    rng = np.random.default_rng(0)
    with av.open(str(good)) as src, av.open(str(bad), "w") as out:
        stream = src.streams.video[0]
        dst = out.add_stream_from_template(stream)
        for packet in src.demux(stream):
            if packet.size == 0:
                continue
            junk = av.Packet(rng.integers(0, 256, packet.size, dtype=np.uint8).tobytes())
            junk.pts, junk.dts, junk.time_base = packet.pts, packet.dts, packet.time_base
            junk.is_keyframe = packet.is_keyframe
            junk.stream = dst
            out.mux(junk)
    return bad


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "absent.mp4", "file not found"),
    (lambda p: (p / "dir.mp4").mkdir() or p / "dir.mp4", "is a folder, not a video file"),
    (lambda p: (p / "text.mp4").write_text("hello, not a video") and p / "text.mp4",
     "is not a video ffmpeg can read"),
    (lambda p: (p / "empty.mkv").write_bytes(b"") is not None and p / "empty.mkv",
     "is not a video ffmpeg can read"),
    (lambda p: (p / "empty.y4m").write_bytes(b"YUV4MPEG2 W64 H48 F25:1 Ip A1:1 C420jpeg\n")
     and p / "empty.y4m", "contains no video frames"),
    (_garbage_h264, r"has no decodable video frames \("),
])
def test_one_line_errors(tmp_path, make, message) -> None:
    with pytest.raises(MediaError, match=message) as err:
        probe(make(tmp_path))
    assert "\n" not in str(err.value)


def test_audio_only(tmp_path) -> None:
    path = tmp_path / "sound.m4a"
    _ff("-f", "lavfi", "-i", "sine=duration=0.5", str(path))
    with pytest.raises(MediaError, match="has no video stream"):
        probe(path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_permission_denied(clip_factory) -> None:
    clip = clip_factory("c.mp4", audio=False)
    clip.chmod(0)
    try:
        with pytest.raises(MediaError, match="permission denied"):
            probe(clip)
    finally:
        clip.chmod(0o644)
