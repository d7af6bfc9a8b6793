"""media: probe, streaming and random-access reads, atomic writes with audio."""

from __future__ import annotations

import os
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from clips import FFMPEG

from restorer.errors import MediaError, OutputError
from restorer.media import FrameReader, VideoWriter, probe, read_frame
from restorer.media import decode as decode_mod


def test_probe_exact_ntsc_rate_and_count(clip_factory) -> None:
    clip = clip_factory("ntsc.mp4", fps="30000/1001", seconds=1.0, audio_streams=2)
    info = probe(clip)
    assert info.fps == Fraction(30000, 1001)
    assert info.frame_count == 30
    assert (info.width, info.height) == (64, 48)
    assert [a.codec for a in info.audio] == ["aac", "aac"]
    assert info.pix_fmt == "yuv420p" and info.bit_depth == 8
    assert info.timecode(31) == "00:00:01:01"


def test_probe_ten_bit(clip_factory) -> None:
    info = probe(clip_factory("ten.mkv", pix_fmt="yuv420p10le", audio=False))
    assert info.bit_depth == 10


def test_random_access_matches_sequential(clip_factory) -> None:
    clip = clip_factory("seq.mp4", seconds=2.0, fps="30000/1001")
    info = probe(clip)
    frames = [f.copy() for _, f in FrameReader(info)]
    assert len(frames) == info.frame_count == 60
    for n in (0, 1, 11, 12, 13, 30, 59):
        np.testing.assert_array_equal(read_frame(info, n), frames[n])
    # Consecutive frames differ, so a one-off seek error could not pass.
    assert not np.array_equal(frames[12], frames[13])


def test_random_access_in_transport_stream(tmp_path: Path, monkeypatch) -> None:
    """MPEG-TS has no index: a plain input seek starts at the next keyframe, not at frame n."""
    clip = tmp_path / "broadcast.ts"
    subprocess.run([FFMPEG, "-v", "error", "-f", "lavfi", "-i",
                    "nullsrc=s=64x48:r=25:d=4,geq=lum='mod(2*X+Y+3*N,256)':cb=128:cr=128",
                    "-c:v", "mpeg2video", "-g", "12", "-bf", "2", "-q:v", "4", str(clip)],
                   check=True)
    info = probe(clip)
    assert info.container == "mpegts"
    frames = [f.copy() for _, f in FrameReader(info)]
    assert len({f.tobytes() for f in frames}) == len(frames) == info.frame_count == 100
    monkeypatch.setattr(decode_mod, "SEEK_MARGINS_S", (1.0,))  # one seek, 1 s early
    for n in (5, 30, 55, 61, 99):
        np.testing.assert_array_equal(read_frame(info, n), frames[n], err_msg=f"frame {n}")
    segment = [f.copy() for _, f in FrameReader(info, 61, 70)]
    np.testing.assert_array_equal(np.stack(segment), np.stack(frames[61:70]))


def test_reader_range_and_rgb_and_scaling(clip_factory) -> None:
    info = probe(clip_factory("c.mp4", seconds=1.0))
    got = [(n, f.shape) for n, f in FrameReader(info, 5, 9, mode="rgb", size=(32, 24))]
    assert got == [(n, (24, 32, 3)) for n in range(5, 9)]
    with pytest.raises(MediaError, match="outside"):
        FrameReader(info, 20, 30)


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "absent.mp4", "not found"),
    (lambda p: (p / "text.mp4").write_text("hello, not a video") and p / "text.mp4",
     "not a video"),
    (lambda p: (p / "empty.y4m").write_bytes(b"YUV4MPEG2 W64 H48 F25:1 Ip A1:1 C420jpeg\n")
     and p / "empty.y4m", "no video frames"),
])
def test_probe_bad_inputs(tmp_path: Path, make, message: str) -> None:
    with pytest.raises(MediaError, match=message):
        probe(make(tmp_path))


def test_probe_audio_only(tmp_path: Path) -> None:
    import subprocess

    from clips import FFMPEG

    path = tmp_path / "sound.m4a"
    subprocess.run([FFMPEG, "-v", "error", "-f", "lavfi", "-i", "sine=duration=0.5", str(path)],
                   check=True)
    with pytest.raises(MediaError, match="no video stream"):
        probe(path)


def test_probe_truncated_mp4(clip_factory, tmp_path: Path) -> None:
    whole = clip_factory("whole.mp4", seconds=1.0).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(MediaError):
        probe(cut)


@pytest.mark.parametrize("size", [(400, 300), (401, 301)])
@pytest.mark.parametrize("codec, ext", [("h264", ".mp4"), ("ffv1", ".mkv"), ("prores", ".mov")])
def test_writer_keeps_exact_size_rate_and_count(tmp_path: Path, size, codec, ext) -> None:
    w, h = size
    dst = tmp_path / f"out{ext}"
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(5)]
    with VideoWriter(dst, w, h, Fraction(30000, 1001), codec=codec) as vw:
        for f in frames:
            vw.write(f)
    info = probe(dst)
    assert (info.width, info.height, info.frame_count) == (w, h, 5)
    assert info.fps == Fraction(30000, 1001)
    if codec == "ffv1":  # lossless: exactly what we wrote
        got = [f for _, f in FrameReader(info, mode="rgb")]
        np.testing.assert_array_equal(got[3], frames[3])
    assert [p.name for p in tmp_path.iterdir()] == [dst.name]


def test_writer_copies_every_audio_stream(clip_factory, tmp_path: Path) -> None:
    src = probe(clip_factory("src.mkv", audio_streams=2))
    assert [a.codec for a in src.audio] == ["pcm_s16le", "pcm_s16le"]
    dst = tmp_path / "out.mkv"
    with VideoWriter(dst, 64, 48, src.fps, audio_from=src) as vw:
        for _ in range(src.frame_count):
            vw.write(np.zeros((48, 64, 3), np.uint8))
    out = probe(dst)
    assert [a.codec for a in out.audio] == ["pcm_s16le", "pcm_s16le"]  # stream copy
    # MP4 cannot hold PCM: it is re-encoded, and the writer says so.
    vw = VideoWriter(tmp_path / "o.mp4", 64, 48, src.fps, audio_from=src)
    assert len(vw.encoding.audio_notes) == 2 and "re-encoded" in vw.encoding.audio_notes[0]
    vw.abort()


def test_abort_leaves_previous_file_untouched(tmp_path: Path) -> None:
    dst = tmp_path / "keep.mp4"
    dst.write_bytes(b"previous master")
    vw = VideoWriter(dst, 64, 48, Fraction(25), overwrite=True)
    vw.write(np.zeros((48, 64, 3), np.uint8))
    vw.abort()
    assert dst.read_bytes() == b"previous master"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.mp4"]


def test_writer_refuses_bad_destinations(tmp_path: Path, grey_clip: Path) -> None:
    with pytest.raises(OutputError, match="refusing to overwrite the input"):
        VideoWriter(grey_clip, 64, 48, Fraction(25), sources=(grey_clip,))
    with pytest.raises(OutputError, match="already exists"):
        VideoWriter(grey_clip, 64, 48, Fraction(25), overwrite=False)
    with pytest.raises(OutputError, match="does not exist"):
        VideoWriter(tmp_path / "nope" / "o.mp4", 64, 48, Fraction(25))
    with pytest.raises(OutputError, match="cannot go in"):
        VideoWriter(tmp_path / "o.mp4", 64, 48, Fraction(25), codec="ffv1")


def test_unwritable_filesystem() -> None:
    # /proc refuses new files even to root, so this holds in CI containers too.
    with pytest.raises(OutputError, match="cannot write to folder /proc"):
        VideoWriter(Path("/proc/restorer-test.mp4"), 64, 48, Fraction(25))


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions")
def test_unwritable_folder(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="permission denied"):
            VideoWriter(ro / "o.mp4", 64, 48, Fraction(25))
    finally:
        ro.chmod(0o700)
