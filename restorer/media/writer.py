"""Encode RGB frames with ffmpeg and mux the source's audio and subtitles; atomic by construction.

ffmpeg writes to a hidden temporary file in the destination folder (same filesystem, so the final
``os.replace`` is atomic). :meth:`VideoWriter.commit` renames it into place; :meth:`abort` (also
run on any exception inside a ``with`` block) deletes it. A reader of the destination therefore
sees either the previous file or the complete new one, never a partial one.

What the source says about its picture is kept: pixel aspect, colour tags and field order are set
on the frames in the filter chain, because ffmpeg (7 and later) takes an encoder's colour
description and field order from the frames it receives and ignores the matching output options.
Every audio and subtitle stream is carried over, converted only where the container demands it,
and each conversion or drop is reported in :attr:`Encoding.notes`.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from restorer.errors import OutputError
from restorer.formats import H264_CRF, H264_PRESET
from restorer.fsutil import set_default_mode, temp_file_beside
from restorer.media.probe import AudioStream, ColourTags, SubtitleStream, VideoInfo, ffmpeg_exe
from restorer.media.stderr import StderrDrain

CODECS = ("h264", "prores", "ffv1")
FIELD_ORDERS = ("progressive", "tt", "bb", "unknown")

# Audio codecs each container takes as they are. PCM is left out of MP4 on purpose: ffmpeg can
# write ISO PCM there, but few players read it, so PCM goes in as ALAC (just as lossless).
_COPYABLE_AUDIO = {
    ".mp4": {"aac", "mp3", "mp2", "ac3", "eac3", "dts", "truehd", "alac", "opus", "flac"},
    ".m4v": {"aac", "mp3", "ac3", "eac3", "alac"},
    ".mov": {"aac", "mp3", "mp2", "ac3", "eac3", "dts", "alac", "pcm_s16le", "pcm_s24le",
             "pcm_s32le", "pcm_s16be", "pcm_s24be", "pcm_s32be", "pcm_f32le", "pcm_f32be",
             "pcm_f64le", "pcm_f64be", "pcm_u8"},
    ".avi": {"aac", "mp3", "mp2", "ac3", "eac3", "dts", "flac", "pcm_s16le", "pcm_s24le",
             "pcm_s32le", "pcm_f32le", "pcm_u8", "pcm_alaw", "pcm_mulaw"},
}  # Matroska takes every audio codec ffmpeg knows, so .mkv copies everything.
_LOSSLESS_AUDIO = {"flac", "alac", "wavpack", "tta", "truehd", "mlp", "ape", "tak", "shorten"}
_TEXT_SUBS = {"subrip", "srt", "ass", "ssa", "webvtt", "mov_text", "text"}
_BITMAP_SUBS = {"dvd_subtitle", "hdmv_pgs_subtitle", "dvb_subtitle"}
_MKV_SUBS = {"subrip", "srt", "ass", "ssa", "webvtt"} | _BITMAP_SUBS
_MP4_FAMILY = {".mp4", ".m4v", ".mov"}
_CONTAINERS = {"h264": {".mp4", ".mov", ".mkv", ".m4v"}, "prores": {".mov", ".mkv"},
               "ffv1": {".mkv", ".avi"}}
_DISK_FULL = ("No space left on device", "File too large", "Disk quota exceeded")
# QuickTime (.mov, unlike .mp4) stores a language as a Macintosh code; ffmpeg's table of them has
# one of the ISO 639-2 bibliographic/terminology twins, and drops the other one.
_QT_LANGUAGE = {"deu": "ger", "fre": "fra", "nld": "dut", "ell": "gre", "isl": "ice",
                "zho": "chi", "rum": "ron", "cze": "ces", "slo": "slk", "mkd": "mac",
                "hye": "arm", "kat": "geo", "bod": "tib", "mya": "bur", "msa": "may",
                "cym": "wel", "eus": "baq", "sqi": "alb"}

# YCbCr matrices swscale can convert to, under the names every build of its scale filter accepts
# (older ones know BT.470 BG and BT.2020 NCL only as "bt470" and "bt2020").
_SCALE_MATRIX = {"bt709": "bt709", "smpte170m": "smpte170m", "bt470bg": "bt470", "fcc": "fcc",
                 "smpte240m": "smpte240m", "bt2020nc": "bt2020"}
_MATRIX_ALIASES = {"bt601": "smpte170m", "bt470": "bt470bg", "bt2020": "bt2020nc",
                   "bt2020-ncl": "bt2020nc", "itu709": "bt709", "itu601": "smpte170m",
                   "itu624": "bt470bg"}
_PRIMARIES = {"bt709", "bt470m", "bt470bg", "smpte170m", "smpte240m", "film", "bt2020",
              "smpte428", "smpte431", "smpte432", "jedec-p22", "ebu3213"}
_TRANSFERS = {"bt709", "bt470m", "bt470bg", "smpte170m", "smpte240m", "linear", "log100",
              "log316", "iec61966-2-4", "bt1361e", "iec61966-2-1", "bt2020-10", "bt2020-12",
              "smpte2084", "smpte428", "arib-std-b67"}
_TRANSFER_ALIASES = {"gamma22": "bt470m", "gamma28": "bt470bg", "srgb": "iec61966-2-1"}
# Primaries and transfer a YCbCr matrix implies when the source names only its matrix.
_IMPLIED = {"bt709": ("bt709", "bt709"), "bt470bg": ("bt470bg", "bt709"),
            "smpte240m": ("smpte240m", "smpte240m"), "fcc": ("bt470m", "bt709"),
            "bt2020nc": ("bt2020", "bt2020-10")}

# Tests replace this to simulate a full disk; production uses the plain Popen.
Spawn = Callable[..., subprocess.Popen[bytes]]
spawn: Spawn = subprocess.Popen


@dataclass(frozen=True)
class Encoding:
    """What the writer will write, for logs and the user's information."""

    codec: str
    pix_fmt: str
    colour: ColourTags
    #: One line per audio stream that could not be copied as it is: which, from what, to what, why.
    audio_notes: tuple[str, ...]
    #: The same for subtitle streams converted or dropped, and for the picture (interlacing).
    stream_notes: tuple[str, ...] = ()
    sar: Fraction = Fraction(1)
    #: "progressive", "tt" (top field first) or "bb", as encoded.
    field_order: str = "progressive"

    @property
    def notes(self) -> tuple[str, ...]:
        """Every note, audio first: what the caller shows the user."""
        return self.audio_notes + self.stream_notes


def default_colour(height: int) -> ColourTags:
    """What we tag untagged sources with: BT.709 for HD, BT.601 (SMPTE 170M) for SD."""
    if height >= 720:
        return ColourTags("tv", "bt709", "bt709", "bt709")
    return ColourTags("tv", "smpte170m", "bt470bg" if height in (576, 288) else "smpte170m",
                      "bt709")


def _name(value: str | None, aliases: dict[str, str]) -> str | None:
    # PyAV and ffmpeg spell some names with "_" where ffmpeg's options use "-".
    if not value:
        return None
    v = value.strip().lower().replace("_", "-")
    return aliases.get(v, v)


def output_colour(source: ColourTags | None, height: int, rgb: bool = False) -> ColourTags:
    """The colour tags to write: the source's where they describe the output, else defaults.

    ``rgb`` is for an RGB output (FFV1's gbrp): full range and the "gbr" matrix, keeping the
    source's primaries and transfer. A YCbCr output keeps the source's matrix when swscale can
    encode to it; an RGB source ("gbr"), an unknown or an unusable matrix gets
    :func:`default_colour` for the height instead. Missing primaries and transfer are filled from
    the matrix, else from the default.
    """
    src = source or ColourTags()
    default = default_colour(height)
    matrix = _name(src.matrix, _MATRIX_ALIASES)
    primaries = _name(src.primaries, {})
    transfer = _name(src.transfer, _TRANSFER_ALIASES)
    primaries = primaries if primaries in _PRIMARIES else None
    transfer = transfer if transfer in _TRANSFERS else None
    usable = matrix in _SCALE_MATRIX
    implied: tuple[str | None, str | None]
    if usable and matrix == "smpte170m":
        implied = (default.primaries if height < 720 else "smpte170m", "bt709")
    elif usable:
        implied = _IMPLIED[str(matrix)]
    else:
        implied = (default.primaries, default.transfer)
    primaries = primaries or implied[0]
    transfer = transfer or implied[1]
    if rgb:
        return ColourTags("pc", "gbr", primaries, transfer)
    # An RGB source is full range by nature; that says nothing about the YCbCr made from it.
    rng = src.range if src.range in ("tv", "pc") and matrix not in ("gbr", "rgb") else "tv"
    return ColourTags(rng, matrix if usable else default.matrix, primaries, transfer)


def _picture_format(codec: str, w: int, h: int, interlaced: bool) -> tuple[str, list[str]]:
    """Pixel format and codec arguments: subsampled chroma wherever the size allows it."""
    if codec == "h264":
        # x264 codes 4:2:0 only on even sizes, and interlaced 4:2:0 only on heights of 4n.
        full = w % 2 == 1 or h % (4 if interlaced else 2) != 0
        pix = "yuv444p" if full else "yuv420p"
        return pix, ["-profile:v", "high444"] if full else []
    if codec == "prores":
        # 422 HQ where the width allows 4:2:2, else 4444 (keeps the exact size).
        odd = w % 2 == 1
        return ("yuv444p10le" if odd else "yuv422p10le"), ["-profile:v", "4" if odd else "3"]
    return "gbrp", []  # FFV1: planar RGB, lossless for exactly the frames we computed


def _video_args(codec: str, crf: int | None, w: int, h: int, tags: ColourTags,
                sar: Fraction = Fraction(1), field_order: str = "progressive"
                ) -> tuple[list[str], str]:
    """The video filter chain and encoder arguments for RGB24 frames of ``w`` x ``h``."""
    if codec not in CODECS:
        raise OutputError(f"unknown codec {codec!r}; choose one of {', '.join(CODECS)}")
    interlaced = field_order in ("tt", "bb")
    pix, extra = _picture_format(codec, w, h, interlaced)
    chain: list[str] = []
    if pix != "gbrp":
        # interl: 4:2:0 chroma is then averaged within each field, not across the two.
        chain.append(f"scale=out_color_matrix={_SCALE_MATRIX[str(tags.matrix)]}"
                     f":out_range={'full' if tags.range == 'pc' else 'limited'}"
                     f"{':interl=1' if interlaced else ''}"
                     ":flags=bicubic+accurate_rnd+full_chroma_int")
    # setsar reduces the ratio to terms of at most "max" (100 by default): NTSC's 4320/4739
    # would be rounded without a larger bound.
    chain.append(f"setsar=sar={sar.numerator}/{sar.denominator}"
                 f":max={max(100, sar.numerator, sar.denominator)}")
    if interlaced:
        chain.append(f"setfield={'tff' if field_order == 'tt' else 'bff'}")
    # scale tags only matrix and range; primaries and transfer must be set on the frames too.
    chain.append(f"setparams=range={tags.range}:colorspace={tags.matrix}"
                 f":color_primaries={tags.primaries}:color_trc={tags.transfer}")
    args = ["-vf", ",".join(chain)]
    if codec == "h264":
        args += ["-c:v", "libx264", "-preset", H264_PRESET,
                 "-crf", str(H264_CRF if crf is None else crf), "-pix_fmt", pix, *extra]
        if interlaced:
            args += ["-flags", "+ildct+ilme",
                     "-x264-params", "tff=1" if field_order == "tt" else "bff=1"]
    elif codec == "prores":
        args += ["-c:v", "prores_ks", *extra, "-vendor", "apl0", "-pix_fmt", pix]
        if crf is not None:
            args += ["-qscale:v", str(max(1, min(32, crf // 2 or 1)))]
        if interlaced:
            args += ["-flags", "+ildct"]
    else:
        args += ["-c:v", "ffv1", "-level", "3", "-g", "1", "-slicecrc", "1", "-pix_fmt", pix]
    # No -colorspace, -color_trc or -field_order: ffmpeg's encoder set-up replaces them with the
    # frames' own (set above). For flagged frames it writes the container's field order as
    # "interleaved, top/bottom first" (Matroska FieldOrder 9/14, QuickTime fiel 0x0209/0x020e),
    # which is what woven frames are.
    return args, pix


def _label(kind: str, k: int, n: int, stream: AudioStream | SubtitleStream) -> str:
    """``audio stream 2 of 3 (eng, "Commentary")``: enough for the user to find it."""
    about = ", ".join(x for x in (stream.language, f'"{stream.title}"' if stream.title else None)
                      if x)
    return f"{kind} stream {k + 1} of {n}" + (f" ({about})" if about else "")


def _metadata_args(kind: str, k: int, stream: AudioStream | SubtitleStream, suffix: str
                   ) -> list[str]:
    """Language and title of output stream ``k`` of ``kind`` ("a", "s"), set explicitly: a
    converted stream has no input stream whose metadata ffmpeg would copy in every container."""
    args = []
    if stream.language:
        lang = _QT_LANGUAGE.get(stream.language, stream.language) if suffix == ".mov" else \
            stream.language
        args += [f"-metadata:s:{kind}:{k}", f"language={lang}"]
    if stream.title:
        args += [f"-metadata:s:{kind}:{k}", f"title={stream.title}"]
        if suffix in _MP4_FAMILY:
            # MP4 keeps the title in a udta box few players read; they show the handler's name.
            args += [f"-metadata:s:{kind}:{k}", f"handler_name={stream.title}"]
    return args


def _stream_line(src: Path, index: int) -> str:
    """ffmpeg's one-line summary of stream ``index`` of ``src`` ("" when it cannot say)."""
    try:
        done = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(src)], capture_output=True,
                              start_new_session=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    m = re.search(rf"Stream #0:{index}(?![0-9])[^\n]*", done.stderr.decode("utf-8", "replace"))
    return m.group(0) if m else ""


def _sample_depth(stream: AudioStream, src: Path) -> tuple[int, bool]:
    """Bits per sample of an audio stream and whether they are floating point."""
    m = re.match(r"pcm_([suf])(\d+)", stream.codec)
    if m:
        return int(m.group(2)), m.group(1) == "f"
    # The decoder's sample format and depth ("s32 (24 bit)") are in ffmpeg's summary of the
    # file; a probe's description need not carry them.
    for text in (stream.description, _stream_line(src, stream.index)):
        bits = re.search(r"\((\d+) bit\)", text)
        fmt = re.search(r"\b(u8|s16|s32|s64|flt|dbl)p?\b", text)
        if fmt:
            name = fmt.group(1)
            size = {"u8": 8, "s16": 16, "s32": 32, "s64": 64, "flt": 32, "dbl": 64}[name]
            return (int(bits.group(1)) if bits else size), name in ("flt", "dbl")
    return 24, False


def _pcm_for(bits: int, is_float: bool) -> str:
    if is_float:
        return "pcm_f32le" if bits <= 32 else "pcm_f64le"
    return "pcm_s16le" if bits <= 16 else "pcm_s24le" if bits <= 24 else "pcm_s32le"


def _audio_plan(stream: AudioStream, k: int, n: int, suffix: str, src: Path
                ) -> tuple[list[str], str | None]:
    """Codec arguments for output audio stream ``k``, and a note when it is not a copy."""
    copyable = _COPYABLE_AUDIO.get(suffix)
    if copyable is None or stream.codec in copyable:
        return [f"-c:a:{k}", "copy"], None
    label = _label("audio", k, n, stream)
    why = f"{stream.codec} cannot go in a {suffix} file"
    if stream.codec.startswith("pcm_") and suffix in (".mp4", ".m4v"):
        why = f"{stream.codec} in a {suffix} file plays in few players"
    lossless = (stream.codec.startswith("pcm_") or stream.codec in _LOSSLESS_AUDIO
                or (stream.codec == "dts" and "DTS-HD MA" in stream.description))
    if lossless:
        bits, is_float = _sample_depth(stream, src)
        if suffix in (".mp4", ".m4v"):
            exact = "" if bits <= 24 and not is_float else (
                f" (ALAC holds at most 24-bit integers: the {bits}-bit "
                f"{'float ' if is_float else ''}samples are rounded)")
            return ([f"-c:a:{k}", "alac"],
                    f"{label}: {why}; re-encoded losslessly as ALAC{exact} "
                    "(use .mkv to keep it as is)")
        pcm = _pcm_for(bits, is_float)
        return ([f"-c:a:{k}", pcm],
                f"{label}: {why}; re-encoded losslessly as PCM ({pcm}) "
                "(use .mkv to keep it as is)")
    return ([f"-c:a:{k}", "aac", f"-b:a:{k}", "320k"],
            f"{label}: {why}; re-encoded as AAC 320k, which is lossy "
            "(use .mkv to keep it as is)")


def _subtitle_plan(sub: SubtitleStream, j: int, n: int, suffix: str
                   ) -> tuple[str | None, str | None]:
    """The output codec for a subtitle stream ("copy"), or None to drop it; and a note."""
    label = _label("subtitle", j, n, sub)
    if suffix in _MP4_FAMILY:
        if sub.codec == "mov_text":
            return "copy", None
        if sub.codec in _TEXT_SUBS:
            lost = ", losing its styling" if sub.codec in ("ass", "ssa") else ""
            return "mov_text", (f"{label}: {sub.codec} cannot go in a {suffix} file; converted "
                                f"to mov_text{lost} (use .mkv to keep it as is)")
        kind = "bitmap subtitles" if sub.codec in _BITMAP_SUBS else "this subtitle format"
        return None, (f"{label}: dropped: {sub.codec} ({kind}) cannot go in a {suffix} file; "
                      "export to .mkv to keep it")
    if suffix == ".mkv":
        if sub.codec in _MKV_SUBS:
            return "copy", None
        if sub.codec in _TEXT_SUBS:
            return "srt", (f"{label}: {sub.codec} cannot go in a .mkv file; converted to SubRip")
        return None, f"{label}: dropped: {sub.codec} subtitles cannot go in a .mkv file"
    return None, (f"{label}: dropped: a {suffix} file cannot hold subtitles; export to .mkv to "
                  "keep it")


@dataclass(frozen=True)
class StreamPlan:
    """How a source's audio and subtitles go into an output: ffmpeg arguments and notes.

    ``input_args`` (the source as ffmpeg's input 1, cut to the range) go with the inputs;
    ``maps`` and ``codec_args`` with the output, after the video's map.
    """

    input_args: list[str]
    maps: list[str]
    codec_args: list[str]
    audio_notes: tuple[str, ...] = ()
    stream_notes: tuple[str, ...] = ()


def source_streams(source: VideoInfo | None, suffix: str, fps: Fraction,
                   audio_start: float = 0.0, audio_duration: float | None = None) -> StreamPlan:
    """Carry every audio and subtitle stream of ``source`` into a ``suffix`` file, as input 1.

    Shared by :class:`VideoWriter` (video from a pipe) and the render farm's assembly (video
    copied from finished chunks), so a master carries its source's streams the same either way.
    """
    audio_notes: list[str] = []
    stream_notes: list[str] = []
    stream_args: list[str] = []
    maps: list[str] = []
    inputs: list[str] = []
    if source is not None:
        n_audio = len(source.audio)
        for k, stream in enumerate(source.audio):
            maps += ["-map", f"1:{stream.index}"]
            args, note = _audio_plan(stream, k, n_audio, suffix, source.path)
            stream_args += args + _metadata_args("a", k, stream, suffix)
            if note:
                audio_notes.append(note)
        n_subs = len(source.subtitles)
        kept = 0
        for j, sub in enumerate(source.subtitles):
            how, note = _subtitle_plan(sub, j, n_subs, suffix)
            if note:
                stream_notes.append(note)
            if how is None:
                continue
            maps += ["-map", f"1:{sub.index}"]
            stream_args += [f"-c:s:{kept}", how] + _metadata_args("s", kept, sub, suffix)
            kept += 1
    if maps:
        assert source is not None
        # Input options, so they cut audio and subtitles of the source alike.
        if audio_start > 0:
            inputs += ["-ss", f"{audio_start:.6f}"]
            # A seek lands on the keyframe before; ffmpeg would copy the packets from
            # there, which Matroska keeps as a lead-in of audio the range does not have.
            stream_args += ["-copypriorss", "0"]
        if audio_duration is not None:
            inputs += ["-t", f"{audio_duration:.6f}"]
            # An input's -t stops decoded audio with a trim filter; converted subtitles
            # pass no filter, so the output is capped too, half a frame past the range's
            # end (clear of the last frame, which starts a whole frame before it).
            cap = audio_duration + 0.5 / float(fps)
            stream_args += ["-t", f"{cap:.6f}"]
        inputs += ["-i", str(source.path)]
    return StreamPlan(inputs, maps, stream_args, tuple(audio_notes), tuple(stream_notes))


def check_destination(dst: Path, sources: tuple[Path, ...] = (), overwrite: bool = True) -> None:
    """Refuse a destination that is a source, an existing file (unless allowed), or unwritable."""
    for src in sources:
        if dst.resolve() == Path(src).resolve() or (
            dst.exists() and Path(src).exists() and os.path.samefile(dst, src)
        ):
            raise OutputError(f"refusing to overwrite the input {src}; choose another output path")
    if dst.exists() and not overwrite:
        raise OutputError(f"{dst} already exists; pass --overwrite to replace it")
    if dst.is_dir():
        raise OutputError(f"{dst} is a folder; give a file name such as {dst / 'out.mp4'}")
    parent = dst.parent if str(dst.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"output folder does not exist: {parent}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write to folder {parent}: permission denied")


class VideoWriter:
    """Write uint8 RGB ``(H, W, 3)`` frames to ``dst`` at exactly ``fps``, with source streams.

    Parameters
    ----------
    dst, width, height, fps
        The file to write (its suffix picks the container) and the frames' size and rate.
    codec, crf
        One of :data:`CODECS`; quality for H.264 (CRF) and ProRes (scaled to its qscale).
    audio_from, streams_from
        The source whose audio and subtitle streams are carried over (two names for one thing;
        ``audio_from`` is the older). ``audio_start`` and ``audio_duration`` (seconds) cut them
        to the range being exported.
    colour
        The source's colour tags; see :func:`output_colour` for what is written.
    sar
        Pixel aspect ratio of the frames as given, written on the stream and into the
        container's display size.
    field_order
        "tt" or "bb" encodes interlaced with that field first; "progressive" or "unknown" not.
        The frames are not rotated here: pass them upright, no display matrix is written.
    """

    def __init__(self, dst: str | os.PathLike[str], width: int, height: int, fps: Fraction,
                 codec: str = "h264", crf: int | None = None,
                 audio_from: VideoInfo | None = None, audio_start: float = 0.0,
                 audio_duration: float | None = None, colour: ColourTags | None = None,
                 sources: tuple[Path, ...] = (), overwrite: bool = True,
                 sar: Fraction = Fraction(1), field_order: str = "progressive",
                 streams_from: VideoInfo | None = None) -> None:
        self.dst = Path(dst)
        if codec not in CODECS:
            raise OutputError(f"unknown codec {codec!r}; choose one of {', '.join(CODECS)}")
        if field_order not in FIELD_ORDERS:
            raise OutputError(f"unknown field order {field_order!r}; choose one of "
                              f"{', '.join(FIELD_ORDERS)}")
        if audio_from is not None and streams_from is not None and audio_from is not streams_from:
            raise TypeError("pass the source as streams_from or audio_from, not both")
        source = streams_from if streams_from is not None else audio_from
        suffix = self.dst.suffix.lower()
        if suffix not in _CONTAINERS[codec]:
            raise OutputError(
                f"{codec} cannot go in a {suffix or 'suffix-less'} file; use one of "
                f"{', '.join(sorted(_CONTAINERS[codec]))}"
            )
        check_destination(self.dst, sources, overwrite)
        self.width, self.height, self.fps = width, height, Fraction(fps)
        sar = Fraction(sar) if sar and sar > 0 else Fraction(1)
        stream_notes: list[str] = []
        if field_order == "unknown":
            field_order = "progressive"
        if field_order != "progressive" and codec == "h264" and height % 2:
            stream_notes.append(f"encoded progressive: H.264 cannot code interlaced frames of "
                                 f"odd height ({height} lines)")
            field_order = "progressive"
        if codec == "prores":
            # ProRes is limited range by definition, and QuickTime's colr atom cannot say "full".
            tags = output_colour(colour, height)
            tags = ColourTags("tv", tags.matrix, tags.primaries, tags.transfer)
        else:
            tags = output_colour(colour, height, rgb=codec == "ffv1")
        vargs, pix = _video_args(codec, crf, width, height, tags, sar, field_order)
        try:
            self.tmp = temp_file_beside(self.dst, suffix)
        except OSError as exc:
            raise OutputError(f"cannot write to folder {self.dst.parent}: {exc.strerror}") from exc
        set_default_mode(self.tmp)  # ffmpeg rewrites this file in place, keeping its mode
        rate = f"{self.fps.numerator}/{self.fps.denominator}"
        cmd = [ffmpeg_exe(), "-hide_banner", "-v", "error", "-y",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
               "-framerate", rate, "-i", "-"]
        plan = source_streams(source, suffix, self.fps, audio_start, audio_duration)
        cmd += plan.input_args
        maps, stream_args = plan.maps, plan.codec_args
        stream_notes += plan.stream_notes
        audio_notes = list(plan.audio_notes)
        cmd += ["-map", "0:v:0", *maps, *vargs, "-fps_mode", "passthrough", *stream_args]
        if suffix in _MP4_FAMILY:
            cmd += ["-movflags", "+faststart"]
        cmd += ["-f", {".mkv": "matroska", ".avi": "avi", ".mov": "mov"}.get(suffix, "mp4"),
                str(self.tmp)]
        self.encoding = Encoding(codec, pix, tags, tuple(audio_notes), tuple(stream_notes),
                                 sar, field_order)
        self.frames = 0
        self._done = False
        try:
            # Own session: a terminal Ctrl-C reaches Python, which then aborts this cleanly.
            self._proc = spawn(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                               start_new_session=True,
                               stderr=subprocess.PIPE)
        except OSError as exc:
            self.tmp.unlink(missing_ok=True)
            raise OutputError(f"cannot start ffmpeg: {exc}") from exc
        self._stderr = StderrDrain(self._proc.stderr)

    def _failure(self, what: str) -> OutputError:
        self._stderr.join(timeout=5)
        text = self._stderr.text
        if any(s in text for s in _DISK_FULL):
            return OutputError(f"disk full while writing {self.dst.name}; free space and retry "
                               "(nothing was written)")
        last = text.splitlines()[-1] if text else f"ffmpeg exited with {self._proc.returncode}"
        return OutputError(f"encoding {self.dst.name} failed {what}: {last}")

    def write(self, frame: np.ndarray) -> None:
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise ValueError(f"expected uint8 frame of shape {(self.height, self.width, 3)}; "
                             f"got {frame.dtype} {frame.shape}")
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(np.ascontiguousarray(frame).data)
        except (BrokenPipeError, OSError) as exc:
            self._proc.wait()
            err = self._failure(f"at frame {self.frames}")
            self.abort()
            raise err from exc
        self.frames += 1

    def commit(self) -> Path:
        """Finish encoding and move the file into place atomically."""
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        rc = self._proc.wait()
        if rc != 0 or not self.tmp.exists() or self.tmp.stat().st_size == 0:
            err = self._failure("while finishing")
            self.abort()
            raise err
        try:
            os.replace(self.tmp, self.dst)
        except OSError as exc:
            self.abort()
            raise OutputError(f"cannot move the finished file to {self.dst}: {exc}") from exc
        self._done = True
        return self.dst

    def abort(self) -> None:
        """Stop ffmpeg and delete the temporary file; the destination is left as it was."""
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdin and not self._proc.stdin.closed:
            try:
                self._proc.stdin.close()
            except OSError:
                pass
        self.tmp.unlink(missing_ok=True)
        self._done = True

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if not self._done:
            if exc_type is None:
                self.commit()
            else:
                self.abort()



#: The container a master of each codec goes in when only a folder is named (the render farm).
MASTER_SUFFIX = {"h264": ".mp4", "prores": ".mov", "ffv1": ".mkv"}
