"""VideoWriter keeps what the source says: aspect, colour, fields, audio and subtitle streams.

Every test reads back the file actually written (PyAV, or ffmpeg's own summary and decoders).
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from clips import FFMPEG, make_clip

from restorer.errors import OutputError
from restorer.media import VideoWriter, probe
from restorer.media.probe import ColourTags, SubtitleStream, VideoInfo
from restorer.media.writer import default_colour

BT709 = ColourTags("tv", "bt709", "bt709", "bt709")


def _write(dst: Path, w: int = 64, h: int = 48, n: int = 3, rgb: tuple[int, int, int] | None = None,
           **kw) -> VideoWriter:
    """Write ``n`` frames (a gradient, or one flat colour) and return the committed writer."""
    if rgb is None:
        ramp = np.linspace(0, 255, w * h * 3).reshape(h, w, 3).astype(np.uint8)
    else:
        ramp = np.empty((h, w, 3), np.uint8)
        ramp[:] = rgb
    with VideoWriter(dst, w, h, kw.pop("fps", Fraction(25)), **kw) as vw:
        for _ in range(n):
            vw.write(ramp)
    return vw


def _summary(path: Path) -> str:
    """ffmpeg's description of ``path`` (there is no ffprobe in the static build)."""
    return subprocess.run([FFMPEG, "-hide_banner", "-i", str(path)], capture_output=True,
                          text=True).stderr


def _video_line(path: Path) -> str:
    return next(line for line in _summary(path).splitlines() if "Video:" in line)


def _tags(path: Path) -> tuple[str, str, str, str]:
    """(range, matrix, primaries, transfer) as ffmpeg reports the written stream."""
    m = re.search(r"(?:yuv|gbr|bgr)\w*\((tv|pc), ([\w/-]+)", _video_line(path))
    assert m, _video_line(path)
    trio = m.group(2).split("/")
    matrix, primaries, transfer = trio * 3 if len(trio) == 1 else trio
    return m.group(1), matrix, primaries, transfer


def _field_flags(path: Path, frames: int = 3) -> list[str]:
    """What the decoder says of each frame: "T" top field first, "B" bottom first, "P"."""
    text = subprocess.run([FFMPEG, "-hide_banner", "-i", str(path), "-frames:v", str(frames),
                           "-vf", "showinfo", "-f", "null", "-"],
                          capture_output=True, text=True).stderr
    return re.findall(r"\bi:([TBP])\b", text)


def _decoded_rgb(path: Path) -> np.ndarray:
    """The first frame as ffmpeg decodes it to RGB, following the file's own colour tags."""
    info = probe(path)
    raw = subprocess.run([FFMPEG, "-v", "error", "-i", str(path), "-frames:v", "1",
                          "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(info.height, info.width, 3)


def _srt(path: Path, cues: list[tuple[float, float, str]]) -> Path:
    def ts(t: float) -> str:
        ms = round(t * 1000)
        return f"00:00:{ms // 1000:02d},{ms % 1000:03d}"

    path.write_text("".join(f"{i + 1}\n{ts(a)} --> {ts(b)}\n{text}\n\n"
                            for i, (a, b, text) in enumerate(cues)))
    return path


def _cues(path: Path, stream: int = 0) -> list[tuple[float, str]]:
    """(start seconds, text) of each cue of subtitle stream ``stream``, via ffmpeg's SRT writer."""
    text = subprocess.run([FFMPEG, "-v", "error", "-i", str(path), "-map", f"0:s:{stream}",
                           "-f", "srt", "-"], capture_output=True, text=True, check=True).stdout
    out = []
    for m in re.finditer(r"(\d+):(\d+):(\d+),(\d+) --> [^\n]*\n(.*)", text):
        h, mi, s, ms = (int(g) for g in m.groups()[:4])
        out.append((h * 3600 + mi * 60 + s + ms / 1000, m.group(5).strip()))
    return out


def _streams(path: Path, kind: str) -> list[tuple[str, str | None, str | None]]:
    """(codec, language, title) of each ``kind`` ("audio", "subtitle") stream written.

    MP4 and MOV keep a track's title in its udta "name" box and, for players, its handler name;
    both must say it there.
    """
    out = []
    with av.open(str(path)) as c:
        for s in c.streams:
            if s.type != kind:
                continue
            title = s.metadata.get("title")
            if path.suffix in (".mp4", ".mov"):
                title = s.metadata.get("name") or title
                assert s.metadata.get("handler_name") == title
            out.append((s.codec_context.codec.canonical_name, s.metadata.get("language"), title))
    return out


# --- 1. pixel aspect ------------------------------------------------------------------------


@pytest.mark.parametrize("codec, ext", [("h264", ".mp4"), ("h264", ".mkv"), ("prores", ".mov"),
                                        ("ffv1", ".mkv")])
@pytest.mark.parametrize("sar, dar", [(Fraction(16, 15), "4:3"), (Fraction(64, 45), "16:9")])
def test_pixel_aspect_is_written(tmp_path: Path, codec, ext, sar, dar) -> None:
    dst = tmp_path / f"pal{ext}"
    vw = _write(dst, 720, 576, n=2, codec=codec, sar=sar)
    assert vw.encoding.sar == sar
    with av.open(str(dst)) as c:
        assert c.streams.video[0].sample_aspect_ratio == sar
    assert f"DAR {dar}" in _video_line(dst)  # the container's display size says so too


def test_pixel_aspect_keeps_exact_ntsc_ratio(tmp_path: Path) -> None:
    # setsar would round 4320/4739 to terms under 100 unless told otherwise.
    dst = tmp_path / "ntsc.mkv"
    _write(dst, 720, 480, n=1, sar=Fraction(4320, 4739))
    with av.open(str(dst)) as c:
        assert c.streams.video[0].sample_aspect_ratio == Fraction(4320, 4739)


def test_square_pixels_by_default(tmp_path: Path) -> None:
    dst = tmp_path / "sq.mp4"
    _write(dst)
    with av.open(str(dst)) as c:
        assert c.streams.video[0].sample_aspect_ratio in (None, Fraction(1))


# --- 2. colour tags --------------------------------------------------------------------------


@pytest.mark.parametrize("codec, ext", [("h264", ".mp4"), ("h264", ".mkv"), ("prores", ".mov")])
def test_bt709_source_comes_out_bt709(tmp_path: Path, codec, ext) -> None:
    dst = tmp_path / f"hd{ext}"
    vw = _write(dst, codec=codec, colour=BT709)
    assert _tags(dst) == ("tv", "bt709", "bt709", "bt709")
    assert vw.encoding.colour == BT709
    with av.open(str(dst)) as c:  # and in the decoded frames, not only the container
        f = next(c.decode(video=0))
        assert (f.colorspace, f.color_primaries, f.color_trc, f.color_range) == (1, 1, 1, 1)


@pytest.mark.parametrize("h, expected", [(576, ("tv", "smpte170m", "bt470bg", "bt709")),
                                         (480, ("tv", "smpte170m", "smpte170m", "bt709")),
                                         (720, ("tv", "bt709", "bt709", "bt709"))])
def test_untagged_source_gets_every_tag(tmp_path: Path, h, expected) -> None:
    dst = tmp_path / "sd.mp4"
    _write(dst, 64, h, n=1, colour=ColourTags())
    assert _tags(dst) == expected
    d = default_colour(h)
    assert expected == (d.range, d.matrix, d.primaries, d.transfer)


def test_partial_tags_are_completed_from_the_matrix(tmp_path: Path) -> None:
    dst = tmp_path / "part.mkv"
    _write(dst, 64, 576, n=1, colour=ColourTags(None, "bt709", None, None))
    assert _tags(dst) == ("tv", "bt709", "bt709", "bt709")


def test_full_range_is_kept_for_h264_and_limited_for_prores(tmp_path: Path) -> None:
    full = ColourTags("pc", "bt709", "bt709", "bt709")
    _write(tmp_path / "full.mp4", colour=full)
    assert _tags(tmp_path / "full.mp4")[0] == "pc"
    vw = _write(tmp_path / "full.mov", codec="prores", colour=full)
    assert _tags(tmp_path / "full.mov")[0] == "tv" and vw.encoding.colour.range == "tv"


@pytest.mark.parametrize("colour", [BT709, ColourTags("tv", "smpte170m", "smpte170m", "bt709"),
                                    ColourTags("pc", "bt470bg", "bt470bg", "bt709")])
def test_tags_describe_the_pixels(tmp_path: Path, colour) -> None:
    # A saturated colour decoded by the file's own tags comes back as written: a tag that
    # disagreed with the conversion matrix would shift it by tens of levels.
    dst = tmp_path / "patch.mkv"
    _write(dst, n=1, rgb=(200, 40, 90), colour=colour, codec="h264", crf=0)
    got = _decoded_rgb(dst)[8:-8, 8:-8].reshape(-1, 3).mean(0)
    np.testing.assert_allclose(got, (200, 40, 90), atol=3)


# --- 3. RGB sources --------------------------------------------------------------------------


@pytest.mark.parametrize("codec, ext", [("h264", ".mp4"), ("prores", ".mov"), ("h264", ".mkv")])
def test_rgb_source_exports_to_yuv(tmp_path: Path, codec, ext) -> None:
    # The project's own lossless master: FFV1 in planar RGB, tagged "gbr".
    master = tmp_path / "master.mkv"
    _write(master, codec="ffv1")
    info = probe(master)
    assert _tags(master)[1] == "gbr"
    src_colour = info.colour if info.colour.matrix else ColourTags("pc", "gbr", None, None)
    dst = tmp_path / f"out{ext}"
    vw = _write(dst, codec=codec, colour=src_colour)
    d = default_colour(48)
    assert _tags(dst) == ("tv", d.matrix, d.primaries, d.transfer)
    assert vw.encoding.colour.matrix == d.matrix


@pytest.mark.parametrize("matrix", ["rgb", "gbr", "ycgco", "bt2020c", "unknown-thing"])
def test_unusable_matrix_falls_back_to_default(tmp_path: Path, matrix) -> None:
    dst = tmp_path / "out.mp4"
    _write(dst, n=1, colour=ColourTags("pc", matrix, "bt709", "bt709"))
    # An RGB source's full range says nothing of the YCbCr made from it; another source's does.
    rng = "tv" if matrix in ("rgb", "gbr") else "pc"
    assert _tags(dst) == (rng, "smpte170m", "bt709", "bt709")  # primaries stay the source's


def test_ffv1_stays_rgb_with_the_source_primaries(tmp_path: Path) -> None:
    dst = tmp_path / "master.mkv"
    vw = _write(dst, codec="ffv1", colour=BT709)
    assert vw.encoding.pix_fmt == "gbrp"
    assert _tags(dst) == ("pc", "gbr", "bt709", "bt709")


# --- 4. interlacing --------------------------------------------------------------------------


@pytest.mark.parametrize("codec, ext", [("h264", ".mp4"), ("h264", ".mkv"), ("prores", ".mov"),
                                        ("ffv1", ".mkv")])
@pytest.mark.parametrize("order, flag, words", [("tt", "T", "top"), ("bb", "B", "bottom")])
def test_interlaced_encode(tmp_path: Path, codec, ext, order, flag, words) -> None:
    dst = tmp_path / f"i{ext}"
    vw = _write(dst, 64, 48, codec=codec, field_order=order)
    assert vw.encoding.field_order == order
    assert _field_flags(dst) == [flag] * 3  # the coded frames are interlaced, that field first
    assert f"{words} " in _video_line(dst)  # and the stream says so: "top first", "top coded.."
    assert "progressive" not in _video_line(dst)


def test_progressive_by_default(tmp_path: Path) -> None:
    dst = tmp_path / "p.mp4"
    assert _write(dst).encoding.field_order == "progressive"
    assert _field_flags(dst) == ["P"] * 3


def test_interlaced_h264_on_awkward_heights(tmp_path: Path) -> None:
    # 50 lines, like NTSC D1's 486: x264's interlaced 4:2:0 needs a height of 4n, so 4:4:4.
    vw = _write(tmp_path / "d1.mp4", 64, 50, n=2, field_order="bb")
    assert vw.encoding.pix_fmt == "yuv444p"
    assert _field_flags(tmp_path / "d1.mp4", 2) == ["B", "B"]
    # An odd height cannot be coded as fields at all: progressive, and the writer says so.
    vw = _write(tmp_path / "odd.mp4", 64, 49, n=2, field_order="tt")
    assert vw.encoding.field_order == "progressive"
    assert any("progressive" in n for n in vw.encoding.notes)
    assert _field_flags(tmp_path / "odd.mp4", 2) == ["P", "P"]


def test_unknown_field_order_is_progressive_and_nonsense_is_refused(tmp_path: Path) -> None:
    assert _write(tmp_path / "u.mkv", n=1, field_order="unknown").encoding.field_order == \
        "progressive"
    with pytest.raises(OutputError, match="field order"):
        VideoWriter(tmp_path / "x.mkv", 64, 48, Fraction(25), field_order="tb")


# --- 5. audio --------------------------------------------------------------------------------


def _audio_source(path: Path, codecs: list[tuple[str, list[str]]], seconds: float = 1.0,
                  names: list[tuple[str, str]] | None = None) -> VideoInfo:
    """A clip with one audio stream per (codec, extra args), tagged with ``names``' language and
    title; returned as probed, with the language and title the new probe will report."""
    cmd = [FFMPEG, "-v", "error", "-y", "-f", "lavfi", "-i",
           f"testsrc2=size=64x48:rate=25:duration={seconds}"]
    # A rising level, t/4, to see where a cut lands.
    cmd += ["-f", "lavfi", "-i", f"aevalsrc=t/4:d={seconds}:s=48000"] * len(codecs)
    cmd += ["-map", "0:v"] + [x for k in range(len(codecs)) for x in ("-map", f"{k + 1}:a")]
    cmd += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    for k, (codec, extra) in enumerate(codecs):
        cmd += [f"-c:a:{k}", codec, *[a.replace("{k}", str(k)) for a in extra]]
        if names:
            cmd += [f"-metadata:s:a:{k}", f"language={names[k][0]}",
                    f"-metadata:s:a:{k}", f"title={names[k][1]}"]
    subprocess.run([*cmd, str(path)], check=True)
    info = probe(path)
    if names:
        info = dataclasses.replace(info, audio=tuple(
            dataclasses.replace(a, language=lang, title=title)
            for a, (lang, title) in zip(info.audio, names, strict=True)))
    return info


def _black(dst: Path, src: VideoInfo, **kw) -> VideoWriter:
    with VideoWriter(dst, 64, 48, src.fps, **kw) as vw:
        for _ in range(src.frame_count):
            vw.write(np.zeros((48, 64, 3), np.uint8))
    return vw


def test_pcm_into_mp4_becomes_alac_with_names_kept(tmp_path: Path) -> None:
    names = [("fra", "Version française"), ("eng", "Commentary")]
    src = _audio_source(tmp_path / "src.mkv",
                        [("pcm_s16le", []), ("pcm_s24le", [])], names=names)
    dst = tmp_path / "out.mp4"
    vw = _black(dst, src, audio_from=src)
    assert _streams(dst, "audio") == [("alac", "fra", "Version française"),
                                      ("alac", "eng", "Commentary")]
    with av.open(str(dst)) as c:  # lossless: the 24-bit stream kept its 24 bits
        assert "24 bit" in _summary(dst).split("Stream #0:2")[1].splitlines()[0]
        assert c.streams.audio[0].codec_context.format.name.startswith("s16")
    one, two = vw.encoding.audio_notes
    assert one.startswith('audio stream 1 of 2 (fra, "Version française"): pcm_s16le')
    assert "losslessly as ALAC" in one and ".mkv" in one
    assert two.startswith('audio stream 2 of 2 (eng, "Commentary"): pcm_s24le')


@pytest.mark.parametrize("fmt, pcm", [("s16", "pcm_s16le"), ("s32", "pcm_s24le")])
def test_flac_into_mov_becomes_pcm_of_the_same_depth(tmp_path: Path, fmt, pcm) -> None:
    src = _audio_source(tmp_path / "src.mkv", [("flac", ["-sample_fmt:a:{k}", fmt])],
                        names=[("deu", "Deutsch")])
    dst = tmp_path / "out.mov"
    vw = _black(dst, src, audio_from=src)
    # QuickTime knows German by its other ISO 639-2 code only; "deu" would be lost.
    assert _streams(dst, "audio") == [(pcm, "ger", "Deutsch")]
    (note,) = vw.encoding.audio_notes
    assert note.startswith('audio stream 1 of 1 (deu, "Deutsch"): flac cannot go in a .mov')
    assert f"losslessly as PCM ({pcm})" in note


def test_lossy_audio_that_cannot_be_copied_becomes_aac(tmp_path: Path) -> None:
    src = _audio_source(tmp_path / "src.mkv", [("libopus", [])], names=[("ita", "Italiano")])
    dst = tmp_path / "out.mov"
    vw = _black(dst, src, audio_from=src)
    assert _streams(dst, "audio") == [("aac", "ita", "Italiano")]
    (note,) = vw.encoding.audio_notes
    assert "opus cannot go in a .mov" in note and "AAC 320k" in note and "lossy" in note


def test_every_audio_stream_is_copied_where_it_fits(tmp_path: Path) -> None:
    names = [("eng", "Main"), ("spa", "Español")]
    src = _audio_source(tmp_path / "src.mp4", [("aac", []), ("aac", [])], names=names)
    for ext in (".mp4", ".mov", ".mkv"):
        dst = tmp_path / f"out{ext}"
        vw = _black(dst, src, audio_from=src)
        assert _streams(dst, "audio") == [("aac", "eng", "Main"), ("aac", "spa", "Español")]
        assert vw.encoding.notes == ()


def test_audio_is_trimmed_for_a_range(tmp_path: Path) -> None:
    src = _audio_source(tmp_path / "src.mkv", [("pcm_s16le", [])], seconds=3.0)
    dst = tmp_path / "range.mkv"
    with VideoWriter(dst, 64, 48, src.fps, audio_from=src, audio_start=1.0,
                     audio_duration=1.0) as vw:
        for _ in range(25):
            vw.write(np.zeros((48, 64, 3), np.uint8))
    with av.open(str(dst)) as c:
        samples = np.concatenate([f.to_ndarray().ravel() for f in c.decode(audio=0)])
    assert abs(len(samples) - 48000) <= 1024
    # The source's amplitude is t/4: the first sample kept is the one at 1 s, not at the
    # keyframe the seek landed on (0 s).
    assert samples[0] / 32768 * 4 == pytest.approx(1.0, abs=0.05)


# --- 6. subtitles ----------------------------------------------------------------------------


CUES = [(0.2, 0.6, "one"), (1.2, 1.6, "two"), (2.2, 2.6, "three")]


def _subtitled_source(tmp_path: Path, seconds: float = 3.0) -> VideoInfo:
    """An .mkv with video, one audio stream (index 1) and a SubRip stream (index 2)."""
    clip = make_clip(tmp_path / "plain.mkv", seconds=seconds)
    srt = _srt(tmp_path / "subs.srt", CUES)
    src = tmp_path / "src.mkv"
    subprocess.run([FFMPEG, "-v", "error", "-y", "-i", str(clip), "-i", str(srt),
                    "-map", "0", "-map", "1", "-c", "copy",
                    "-metadata:s:s:0", "language=eng", "-metadata:s:s:0", "title=SDH",
                    str(src)], check=True)
    return dataclasses.replace(probe(src), subtitles=(SubtitleStream(2, "subrip", "eng", "SDH"),))


def test_subtitles_are_copied_into_mkv(tmp_path: Path) -> None:
    src = _subtitled_source(tmp_path)
    dst = tmp_path / "out.mkv"
    vw = _black(dst, src, audio_from=src)
    assert _streams(dst, "subtitle") == [("subrip", "eng", "SDH")]
    assert [t for _, t in _cues(dst)] == ["one", "two", "three"]
    assert vw.encoding.notes == ()


@pytest.mark.parametrize("ext", [".mp4", ".mov"])
def test_text_subtitles_become_mov_text_and_bitmaps_are_dropped(tmp_path: Path, ext) -> None:
    src = _subtitled_source(tmp_path)
    # A DVD bitmap track (never mapped, since it is dropped: the stream need not exist here).
    src = dataclasses.replace(src, subtitles=src.subtitles + (
        SubtitleStream(9, "dvd_subtitle", "fra", "Forcés"),))
    dst = tmp_path / f"out{ext}"
    vw = _black(dst, src, streams_from=src)
    assert _streams(dst, "subtitle") == [("mov_text", "eng", "SDH")]
    assert [t for _, t in _cues(dst)] == ["one", "two", "three"]
    converted, dropped = vw.encoding.stream_notes
    assert converted.startswith('subtitle stream 1 of 2 (eng, "SDH"): subrip')
    assert "mov_text" in converted
    assert dropped.startswith('subtitle stream 2 of 2 (fra, "Forcés"): dropped')
    assert "dvd_subtitle" in dropped and ".mkv" in dropped
    assert vw.encoding.notes == vw.encoding.audio_notes + vw.encoding.stream_notes


@pytest.mark.parametrize("ext", [".mkv", ".mp4"])
def test_subtitles_are_trimmed_with_the_range(tmp_path: Path, ext) -> None:
    src = _subtitled_source(tmp_path)
    dst = tmp_path / f"range{ext}"
    with VideoWriter(dst, 64, 48, src.fps, audio_from=src, audio_start=1.0,
                     audio_duration=1.0) as vw:
        for _ in range(25):
            vw.write(np.zeros((48, 64, 3), np.uint8))
    cues = _cues(dst)
    assert [t for _, t in cues] == ["two"]
    assert cues[0][0] == pytest.approx(0.2, abs=0.05)


def test_mov_text_becomes_subrip_in_mkv(tmp_path: Path) -> None:
    mkv = _subtitled_source(tmp_path)
    mp4 = tmp_path / "src.mp4"
    subprocess.run([FFMPEG, "-v", "error", "-y", "-i", str(mkv.path), "-map", "0",
                    "-c:v", "copy", "-c:a", "aac", "-c:s", "mov_text", str(mp4)], check=True)
    src = dataclasses.replace(probe(mp4), subtitles=(SubtitleStream(2, "mov_text", "eng"),))
    dst = tmp_path / "out.mkv"
    vw = _black(dst, src, streams_from=src)
    assert _streams(dst, "subtitle") == [("subrip", "eng", None)]
    assert [t for _, t in _cues(dst)] == ["one", "two", "three"]
    (note,) = vw.encoding.stream_notes
    assert note.startswith("subtitle stream 1 of 1 (eng): mov_text") and "SubRip" in note


def test_avi_copies_what_it_can_and_drops_subtitles(tmp_path: Path) -> None:
    src = _subtitled_source(tmp_path)  # PCM audio and SubRip
    dst = tmp_path / "out.avi"
    vw = _black(dst, src, codec="ffv1", streams_from=src)
    assert _streams(dst, "audio") == [("pcm_s16le", None, None)]
    assert _streams(dst, "subtitle") == []
    (note,) = vw.encoding.notes
    assert "dropped" in note and ".mkv" in note


def test_source_with_only_subtitles(tmp_path: Path) -> None:
    src = dataclasses.replace(_subtitled_source(tmp_path), audio=())
    dst = tmp_path / "out.mkv"
    _black(dst, src, streams_from=src)
    assert _streams(dst, "audio") == []
    assert _streams(dst, "subtitle") == [("subrip", "eng", "SDH")]


def test_audio_from_and_streams_from_are_one_parameter(tmp_path: Path, grey_clip: Path) -> None:
    a, b = probe(grey_clip), probe(grey_clip)
    with pytest.raises(TypeError, match="not both"):
        VideoWriter(tmp_path / "x.mp4", 64, 48, Fraction(25), audio_from=a, streams_from=b)


# --- 7. no rotation is written ----------------------------------------------------------------


def test_no_display_matrix_is_written(tmp_path: Path, grey_clip: Path) -> None:
    rotated = tmp_path / "rotated.mp4"
    subprocess.run([FFMPEG, "-v", "error", "-y", "-display_rotation", "90", "-i", str(grey_clip),
                    "-c", "copy", str(rotated)], check=True)
    assert "rotation" in _summary(rotated).lower()  # the source does carry one
    src = dataclasses.replace(probe(rotated), rotation=90)
    dst = tmp_path / "upright.mp4"
    _black(dst, src, audio_from=src)
    text = _summary(dst).lower()
    assert "rotation" not in text and "displaymatrix" not in text
    with av.open(str(dst)) as c:
        assert next(c.decode(video=0)).rotation == 0
