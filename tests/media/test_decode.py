"""The in-process reader numbers and shows frames exactly as ffmpeg's CLI decodes them.

Until decoding moved into the process the reader was an ffmpeg child writing raw frames; every
frame number in the product (the desk's seeker, scene cuts, exported masters) was that child's.
Each test here decodes the same file both ways and compares every frame.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import av
import numpy as np
import pytest
from clips import FFMPEG

from restorer.errors import MediaError
from restorer.media import FrameReader, probe, read_frame
from restorer.media.decode import _luma_lut, gray_array
from restorer.media.reader import deinterlaced


def _ff(*args: str) -> None:
    subprocess.run([FFMPEG, "-v", "error", "-y", *args], check=True)


def _cli_frames(src: Path, shape: tuple[int, ...], vf: str = "") -> np.ndarray:
    """What ``ffmpeg -i src -f rawvideo -pix_fmt gray -`` gives: the old reader's frames."""
    cmd = [FFMPEG, "-v", "error", "-i", str(src), "-map", "0:v:0",
           *(["-vf", vf] if vf else []), "-f", "rawvideo", "-pix_fmt", "gray", "-"]
    raw = subprocess.run(cmd, capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, *shape)


def _ours(src: Path, **kw: object) -> tuple[np.ndarray, int]:
    info = probe(src)
    frames = [f for _, f in FrameReader(info, **kw)]  # type: ignore[arg-type]
    return np.stack(frames), info.frame_count


def _moving(tmp_path: Path, name: str, *, seconds: float = 2.0, args: tuple[str, ...] = (),
            vf: str = "") -> Path:
    """Every frame different (a moving ramp), so a frame off by one cannot pass."""
    src = tmp_path / name
    lavfi = (f"nullsrc=s=64x48:r=25:d={seconds},"
             "geq=lum='mod(2*X+Y+5*N,256)':cb=128:cr=128" + (f",{vf}" if vf else ""))
    _ff("-f", "lavfi", "-i", lavfi, *args, str(src))
    return src


@pytest.mark.parametrize("name, args", [
    ("bframes.mp4", ("-c:v", "libx264", "-g", "10", "-bf", "3")),
    ("broadcast.ts", ("-c:v", "mpeg2video", "-g", "12", "-bf", "2", "-q:v", "4")),
    ("master.mkv", ("-c:v", "ffv1")),
])
def test_constant_rate_sources_match_the_cli(tmp_path: Path, name: str,
                                              args: tuple[str, ...]) -> None:
    src = _moving(tmp_path, name, args=args)
    ours, count = _ours(src)
    cli = _cli_frames(src, (48, 64))
    assert len(ours) == count == len(cli) == 50
    np.testing.assert_array_equal(ours, cli)


def test_variable_rate_source_matches_the_cli_fps_filter(tmp_path: Path) -> None:
    """Dense for a second, then every third frame: held slots repeat, as ffmpeg's fps filter."""
    src = _moving(tmp_path, "vfr.mp4", vf="select='lt(t\\,1)+not(mod(n\\,3))'",
                  args=("-fps_mode", "vfr", "-c:v", "libx264", "-g", "8"))
    info = probe(src)
    assert info.vfr
    ours, count = _ours(src)
    cli = _cli_frames(src, (48, 64), vf=f"fps={info.fps.numerator}/{info.fps.denominator}")
    assert len(ours) == count == len(cli)
    np.testing.assert_array_equal(ours, cli)
    # A seek into the sparse part shows the frame held there, not the next one.
    np.testing.assert_array_equal(read_frame(info, 31), cli[31])


def test_dropped_frame_holds_the_previous_one(tmp_path: Path) -> None:
    """A constant-rate file missing frame 20 in the middle: slot 20 repeats frame 19.

    ffmpeg's constant-rate output fills a one-slot gap with the *next* frame shown early (and a
    longer one with the previous): the one rule here holds the previous frame, as its fps
    filter does for variable-rate sources. Every other slot is the CLI's."""
    src = _moving(tmp_path, "gap.mkv", vf="select='not(eq(n\\,20))'",
                  args=("-fps_mode", "passthrough", "-c:v", "ffv1"))
    ours, count = _ours(src)
    cli = _cli_frames(src, (48, 64))
    assert len(ours) == count == len(cli) == 50
    np.testing.assert_array_equal(ours[20], ours[19])
    assert not np.array_equal(ours[21], ours[19])
    keep = [i for i in range(50) if i != 20]
    np.testing.assert_array_equal(ours[keep], cli[keep])
    info = probe(src)
    np.testing.assert_array_equal(read_frame(info, 20), ours[19])


@pytest.mark.parametrize("matrix", [
    ("-display_rotation", "90"), ("-display_rotation", "270"), ("-display_rotation", "180"),
    ("-display_hflip",), ("-display_vflip",), ("-display_rotation", "90", "-display_hflip"),
])
def test_display_matrix_is_applied_as_the_cli_applies_it(tmp_path: Path,
                                                         matrix: tuple[str, ...]) -> None:
    plain = _moving(tmp_path, "plain.mp4", seconds=0.4, args=("-c:v", "libx264"))
    src = tmp_path / "turned.mp4"
    _ff(*matrix, "-i", str(plain), "-c", "copy", str(src))
    info = probe(src)
    ours, _ = _ours(src)
    w, h = info.display_size
    assert ours.shape[1:] == (h, w)
    np.testing.assert_array_equal(ours, _cli_frames(src, (h, w)))


def test_scaled_rgb_matches_the_cli_scale_filter(tmp_path: Path) -> None:
    src = tmp_path / "colour.mp4"
    _ff("-f", "lavfi", "-i", "testsrc2=size=96x64:rate=25:d=0.4", "-c:v", "libx264", str(src))
    info = probe(src)
    ours = np.stack([f for _, f in FrameReader(info, mode="rgb", size=(48, 32))])
    cmd = [FFMPEG, "-v", "error", "-i", str(src), "-vf", "scale=48:32:flags=area",
           "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    raw = subprocess.run(cmd, capture_output=True, check=True).stdout
    np.testing.assert_array_equal(ours, np.frombuffer(raw, np.uint8).reshape(-1, 32, 48, 3))


def test_deinterlaced_fields_match_the_cli_bwdif(tmp_path: Path) -> None:
    src = _moving(tmp_path, "woven.mkv", vf="interlace=scan=tff",
                  args=("-c:v", "ffv1", "-field_order", "tt"))
    info = probe(src)
    read, filters = deinterlaced(info, "tt")
    ours = np.stack([f for _, f in FrameReader(read, filters=filters)])
    cli = _cli_frames(src, (48, 64), vf=",".join(filters))
    assert len(ours) == len(cli) == 2 * info.frame_count
    # The very first and last fields (no neighbour frame) follow the edge rule of the bwdif in
    # PyAV's own libavfilter, which is not the static ffmpeg's; every field between is the CLI's.
    np.testing.assert_array_equal(ours[1:-1], cli[1:-1])
    # From the middle: the same fields as a read from the top.
    middle = np.stack([f for _, f in FrameReader(read, 8, 14, filters=filters)])
    np.testing.assert_array_equal(middle, cli[8:14])


def test_cover_art_is_not_read_as_the_video(tmp_path: Path) -> None:
    """An attached picture listed first: the probe and the reader both take the real video."""
    video = _moving(tmp_path, "v.mkv", seconds=0.4, args=("-c:v", "ffv1"))
    cover = tmp_path / "cover.png"
    _ff("-f", "lavfi", "-i", "color=red:s=32x32", "-frames:v", "1", str(cover))
    src = tmp_path / "with_cover.mp4"
    _ff("-i", str(cover), "-i", str(video), "-map", "0", "-map", "1", "-c:v:0", "png",
        "-c:v:1", "libx264", "-disposition:v:0", "attached_pic", str(src))
    info = probe(src)
    assert (info.width, info.height) == (64, 48)
    frames = [f for _, f in FrameReader(info)]
    assert len(frames) == info.frame_count == 10
    assert frames[0].shape == (48, 64)


def test_damaged_middle_is_skipped_and_said(tmp_path: Path) -> None:
    """Garbage in the middle of an MPEG-TS: the reader goes on past it and keeps the error."""
    src = _moving(tmp_path, "clean.ts", seconds=4.0,
                  args=("-c:v", "mpeg2video", "-g", "12", "-q:v", "4"))
    data = bytearray(src.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 4000] = bytes(range(256)) * 15 + bytes(160)
    bad = tmp_path / "damaged.ts"
    bad.write_bytes(bytes(data))
    info = probe(bad)
    reader = FrameReader(info)
    frames = [n for n, _ in reader]
    assert frames == list(range(len(frames)))
    assert len(frames) > 50  # went on past the damage


def test_unreadable_file_is_one_line(tmp_path: Path) -> None:
    src = _moving(tmp_path, "c.mp4", seconds=0.4, args=("-c:v", "libx264"))
    info = probe(src)
    src.write_bytes(b"not a video any more")
    with pytest.raises(MediaError, match=r"cannot open c\.mp4") as err:
        FrameReader(info)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("tags, lookup", [
    (("-pix_fmt", "yuv420p"), True),                                   # untagged, limited
    (("-pix_fmt", "yuvj420p"), True),                                  # full range
    (("-pix_fmt", "yuv422p", "-colorspace", "bt470bg"), True),
    # BT.709 limited: swscale's grey moves with chroma too, so it is not a lookup of luma.
    (("-pix_fmt", "yuv420p", "-colorspace", "bt709", "-color_primaries", "bt709",
      "-color_trc", "bt709"), False),
])
def test_fast_grey_is_swscales_grey(tmp_path: Path, tags: tuple[str, ...], lookup: bool) -> None:
    """The luma lookup gives the bytes swscale's conversion gives, on a colourful picture."""
    src = tmp_path / "colour.mkv"
    _ff("-f", "lavfi", "-i", "testsrc2=size=98x66:rate=25:d=0.2", *tags, "-c:v", "ffv1",
        str(src))
    with av.open(str(src)) as c:
        for frame in c.decode(video=0):
            key = (frame.format.name, int(frame.colorspace), int(frame.color_range))
            assert (_luma_lut(*key) is not None) == lookup
            np.testing.assert_array_equal(gray_array(frame), frame.to_ndarray(format="gray"))
