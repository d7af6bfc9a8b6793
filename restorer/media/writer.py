"""Encode RGB frames with ffmpeg and mux the source's audio; atomic by construction.

ffmpeg writes to a hidden temporary file in the destination folder (same filesystem, so the final
``os.replace`` is atomic). :meth:`VideoWriter.commit` renames it into place; :meth:`abort` (also
run on any exception inside a ``with`` block) deletes it. A reader of the destination therefore
sees either the previous file or the complete new one, never a partial one.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from restorer.errors import OutputError
from restorer.fsutil import set_default_mode, temp_file_beside
from restorer.media.probe import ColourTags, VideoInfo, ffmpeg_exe
from restorer.media.stderr import StderrDrain

CODECS = ("h264", "prores", "ffv1")
_COPYABLE = {
    ".mp4": {"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"},
    ".m4v": {"aac", "mp3", "ac3", "eac3", "alac"},
    ".mov": {"aac", "mp3", "ac3", "eac3", "alac", "pcm_s16le", "pcm_s24le", "pcm_s32le",
             "pcm_s16be", "pcm_s24be", "pcm_f32le", "pcm_u8"},
}
_CONTAINERS = {"h264": {".mp4", ".mov", ".mkv", ".m4v"}, "prores": {".mov", ".mkv"},
               "ffv1": {".mkv", ".avi"}}
_DISK_FULL = ("No space left on device", "File too large", "Disk quota exceeded")

# Tests replace this to simulate a full disk; production uses the plain Popen.
Spawn = Callable[..., subprocess.Popen[bytes]]
spawn: Spawn = subprocess.Popen


@dataclass(frozen=True)
class Encoding:
    """What the writer will write, for logs and the user's information."""

    codec: str
    pix_fmt: str
    colour: ColourTags
    audio_notes: tuple[str, ...]


def default_colour(height: int) -> ColourTags:
    """What we tag untagged sources with: BT.709 for HD, BT.601 (SMPTE 170M) for SD."""
    if height >= 720:
        return ColourTags("tv", "bt709", "bt709", "bt709")
    return ColourTags("tv", "smpte170m", "bt470bg" if height in (576, 288) else "smpte170m",
                      "bt709")


def _video_args(codec: str, crf: int | None, w: int, h: int, tags: ColourTags
                ) -> tuple[list[str], str]:
    odd = w % 2 == 1 or h % 2 == 1
    if codec == "h264":
        pix = "yuv444p" if odd else "yuv420p"
        args = ["-c:v", "libx264", "-preset", "veryfast", "-crf", str(18 if crf is None else crf),
                "-pix_fmt", pix]
        if odd:
            args += ["-profile:v", "high444"]
    elif codec == "prores":
        # 422 HQ where the width allows 4:2:2, else 4444 (keeps the exact size).
        pix = "yuv444p10le" if w % 2 else "yuv422p10le"
        args = ["-c:v", "prores_ks", "-profile:v", "4" if w % 2 else "3", "-vendor", "apl0",
                "-pix_fmt", pix]
        if crf is not None:
            args += ["-qscale:v", str(max(1, min(32, crf // 2 or 1)))]
    elif codec == "ffv1":
        # Planar RGB: lossless for exactly the frames we computed.
        pix = "gbrp"
        args = ["-c:v", "ffv1", "-level", "3", "-g", "1", "-slicecrc", "1", "-pix_fmt", pix]
    else:
        raise OutputError(f"unknown codec {codec!r}; choose one of {', '.join(CODECS)}")
    if pix != "gbrp":
        m = tags.matrix or "bt709"
        rng = tags.range or "tv"
        out_range = "full" if rng == "pc" else "limited"
        args = ["-vf", f"scale=out_color_matrix={m}:out_range={out_range}"
                ":flags=bicubic+accurate_rnd+full_chroma_int", *args,
                "-colorspace", m, "-color_range", rng]
        if tags.primaries:
            args += ["-color_primaries", tags.primaries]
        if tags.transfer:
            args += ["-color_trc", tags.transfer]
    return args, pix


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
    """Write uint8 RGB ``(H, W, 3)`` frames to ``dst`` at exactly ``fps``, with source audio."""

    def __init__(self, dst: str | os.PathLike[str], width: int, height: int, fps: Fraction,
                 codec: str = "h264", crf: int | None = None,
                 audio_from: VideoInfo | None = None, audio_start: float = 0.0,
                 audio_duration: float | None = None, colour: ColourTags | None = None,
                 sources: tuple[Path, ...] = (), overwrite: bool = True) -> None:
        self.dst = Path(dst)
        if codec not in CODECS:
            raise OutputError(f"unknown codec {codec!r}; choose one of {', '.join(CODECS)}")
        suffix = self.dst.suffix.lower()
        if suffix not in _CONTAINERS[codec]:
            raise OutputError(
                f"{codec} cannot go in a {suffix or 'suffix-less'} file; use one of "
                f"{', '.join(sorted(_CONTAINERS[codec]))}"
            )
        check_destination(self.dst, sources, overwrite)
        self.width, self.height, self.fps = width, height, Fraction(fps)
        tags = colour if colour and colour.matrix else default_colour(height)
        if colour and colour.range and tags is not colour:
            tags = ColourTags(colour.range, tags.matrix, tags.primaries, tags.transfer)
        vargs, pix = _video_args(codec, crf, width, height, tags)
        try:
            self.tmp = temp_file_beside(self.dst, suffix)
        except OSError as exc:
            raise OutputError(f"cannot write to folder {self.dst.parent}: {exc.strerror}") from exc
        set_default_mode(self.tmp)  # ffmpeg rewrites this file in place, keeping its mode
        rate = f"{self.fps.numerator}/{self.fps.denominator}"
        cmd = [ffmpeg_exe(), "-hide_banner", "-v", "error", "-y",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
               "-framerate", rate, "-i", "-"]
        notes: list[str] = []
        if audio_from is not None and audio_from.audio:
            if audio_start > 0:
                cmd += ["-ss", f"{audio_start:.6f}"]
            if audio_duration is not None:
                cmd += ["-t", f"{audio_duration:.6f}"]
            cmd += ["-i", str(audio_from.path)]
        cmd += ["-map", "0:v:0"]
        if audio_from is not None and audio_from.audio:
            copyable = _COPYABLE.get(suffix)
            for k, stream in enumerate(audio_from.audio):
                cmd += ["-map", f"1:{stream.index}"]
                if copyable is None or stream.codec in copyable:
                    cmd += [f"-c:a:{k}", "copy"]
                else:
                    cmd += [f"-c:a:{k}", "aac", f"-b:a:{k}", "320k"]
                    notes.append(f"audio stream {k} ({stream.codec}) cannot be copied into "
                                 f"{suffix}; re-encoded as AAC 320k (use .mkv to keep it as is)")
        cmd += vargs + ["-fps_mode", "passthrough"]
        if suffix in (".mp4", ".mov", ".m4v"):
            cmd += ["-movflags", "+faststart"]
        cmd += ["-f", {".mkv": "matroska", ".avi": "avi", ".mov": "mov"}.get(suffix, "mp4"),
                str(self.tmp)]
        self.encoding = Encoding(codec, pix, tags, tuple(notes))
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
