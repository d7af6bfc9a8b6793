"""seeker: in-process random access must give exactly what sequential decoding gives."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from clips import FFMPEG

from restorer.errors import MediaError
from restorer.media import FrameReader, probe, read_frame
from restorer.media import decode as decode_mod
from restorer.media import seeker as seeker_mod
from restorer.media.seeker import FrameSeeker

# Backwards, forwards, repeats, steps, long hops across keyframes, both ends.
ORDER = [37, 36, 35, 0, 1, 2, 3, 59, 58, 12, 13, 25, 24, 47, 48, 49, 50, 11, 30, 30, 5, 44]


def _clip(path: Path, *, size: tuple[int, int] = (64, 48), fps: str = "25",
          seconds: float = 2.4, codec: list[str] = ("-c:v", "libx264")) -> Path:
    """A clip whose every frame differs (brightness steps with the frame number N)."""
    w, h = size
    src = (f"nullsrc=s={w}x{h}:r={fps}:d={seconds},"
           f"geq=lum='mod(2*X+Y+3*N,256)':cb=128:cr=128")
    subprocess.run([FFMPEG, "-v", "error", "-y", "-f", "lavfi", "-i", src, *codec, str(path)],
                   check=True)
    return path


def _sequential(path: Path) -> tuple[object, list[np.ndarray]]:
    info = probe(path)
    frames = [f.copy() for _, f in FrameReader(info)]
    assert len(frames) == info.frame_count
    return info, frames


@pytest.mark.parametrize("name, kwargs", [
    # Long-ish GOP with B-frames: MP4 edit list, reordered timestamps.
    ("bframes.mp4", {"codec": ["-c:v", "libx264", "-bf", "3", "-g", "20"]}),
    ("ntsc.mov", {"fps": "30000/1001", "codec": ["-c:v", "prores_ks"]}),     # intra, 10-bit
    ("odd.mkv", {"size": (65, 49), "codec": ["-c:v", "ffv1", "-pix_fmt", "gray"]}),
    ("ten.mkv", {"codec": ["-c:v", "libx264", "-pix_fmt", "yuv420p10le", "-bf", "2"]}),
    # No index, lands on any packet; MPEG-2 open GOPs: broadcast captures.
    ("open_gop.ts", {"codec": ["-c:v", "mpeg2video", "-g", "12", "-bf", "2", "-q:v", "4"]}),
    ("h264.ts", {"codec": ["-c:v", "libx264", "-g", "25", "-bf", "3"]}),
])
def test_random_order_matches_sequential(tmp_path, name, kwargs) -> None:
    info, frames = _sequential(_clip(tmp_path / name, **kwargs))
    kept: dict[int, np.ndarray] = {}
    with FrameSeeker(info) as sk:
        for n in [k % info.frame_count for k in ORDER]:
            got = sk.frame(n, keep=kept.__setitem__)
            assert sk.backend == "pyav"
            assert got.shape == (info.height, info.width) and got.dtype == np.uint8
            np.testing.assert_array_equal(got, frames[n], err_msg=f"{name} frame {n}")
    # The frames handed to a cache on the way are exact too.
    for n, f in kept.items():
        np.testing.assert_array_equal(f, frames[n], err_msg=f"{name} kept frame {n}")
    # Every frame differs, so an off-by-one could not pass.
    assert len({f.tobytes() for f in frames}) == len(frames)


def test_long_gop_keeps_frames_decoded_on_the_way(tmp_path) -> None:
    info, frames = _sequential(_clip(tmp_path / "gop.mp4", seconds=3.0,
                                     codec=["-c:v", "libx264", "-g", "50", "-keyint_min", "50",
                                            "-sc_threshold", "0"]))
    kept: dict[int, np.ndarray] = {}
    with FrameSeeker(info, keep_last=10) as sk:
        sk.frame(70, keep=kept.__setitem__)
    # Frame 70 lies 20 past the keyframe at 50: only the 10 before it are handed over.
    assert sorted(kept) == list(range(60, 70))
    np.testing.assert_array_equal(kept[65], frames[65])


def test_variable_frame_rate_numbered_like_the_reader(tmp_path, monkeypatch) -> None:
    src = tmp_path / "vfr.mkv"
    # Dense for a second, then every third frame: slots after 1 s repeat the last real frame.
    subprocess.run([FFMPEG, "-v", "error", "-f", "lavfi", "-i",
                    "testsrc2=size=64x48:rate=25:duration=2", "-vf",
                    "select='lt(t,1)+not(mod(n,3))',format=gray", "-fps_mode", "vfr",
                    "-c:v", "libx264", "-g", "8", str(src)], check=True)
    info, frames = _sequential(src)
    assert info.vfr
    order = [40, 3, 30, 31, 32, 48, 26, 25, 24, 0, 47]
    with FrameSeeker(info) as sk:
        for n in order:
            np.testing.assert_array_equal(sk.frame(n), frames[n], err_msg=f"frame {n}")
            assert sk.backend == "pyav"
    for margin in (10.0, 0.3):  # from the top, and from an input seek with the grid anchored
        monkeypatch.setattr(decode_mod, "SEEK_MARGINS_S", (margin,))
        for n in order:  # the fresh-read path (read_frame) agrees
            np.testing.assert_array_equal(read_frame(info, n), frames[n],
                                          err_msg=f"frame {n}, margin {margin}")
        segment = [f.copy() for _, f in FrameReader(info, 30, 45)]
        np.testing.assert_array_equal(np.stack(segment), np.stack(frames[30:45]))


def test_without_a_kept_open_container_falls_back_to_the_reader(tmp_path, monkeypatch) -> None:
    info, frames = _sequential(_clip(tmp_path / "c.mp4"))
    monkeypatch.setattr(seeker_mod, "av", None)
    with FrameSeeker(info) as sk:
        np.testing.assert_array_equal(sk.frame(17), frames[17])
        assert sk.backend == "reader"


def test_out_of_range_is_a_clear_error(tmp_path) -> None:
    info = probe(_clip(tmp_path / "c.mp4", seconds=1.0))
    with FrameSeeker(info) as sk:
        with pytest.raises(MediaError, match="outside"):
            sk.frame(info.frame_count)
        sk.frame(3)
        assert sk.backend == "pyav"  # a bad request does not give up on in-process decoding


@pytest.mark.parametrize("ccw", [90, 180, 270])
def test_rotated_source_upright_like_the_reader(tmp_path, ccw) -> None:
    """PyAV does not autorotate; the seeker turns frames as ffmpeg's reader does."""
    coded = _clip(tmp_path / "coded.mp4", size=(64, 48), seconds=1.2,
                  codec=["-c:v", "libx264", "-g", "10"])
    src = tmp_path / f"rot{ccw}.mp4"
    subprocess.run([FFMPEG, "-v", "error", "-display_rotation", str(ccw), "-i", str(coded),
                    "-c", "copy", str(src)], check=True)
    info, frames = _sequential(src)
    assert info.rotation == (360 - ccw) % 360
    w, h = info.display_size
    assert (w, h) == ((48, 64) if ccw != 180 else (64, 48))
    with FrameSeeker(info) as sk:
        for n in (0, 1, 17, 5, info.frame_count - 1):
            got = sk.frame(n)
            assert sk.backend == "pyav"
            assert got.shape == (h, w) and got.flags.c_contiguous
            np.testing.assert_array_equal(got, frames[n], err_msg=f"frame {n}")


@pytest.mark.parametrize("flags, rotation, size", [
    (["-display_hflip"], 0, (64, 48)),                            # a mirror, not a turn
    (["-display_rotation", "90", "-display_hflip"], 270, (48, 64)),
    (["-display_rotation", "30"], 0, (64, 48)),                   # ffmpeg rotates in place
])
def test_mirrored_or_odd_display_matrix_takes_the_reader_path(tmp_path, flags, rotation,
                                                              size) -> None:
    coded = _clip(tmp_path / "coded.mp4", size=(64, 48), seconds=0.8)
    src = tmp_path / "odd.mp4"
    subprocess.run([FFMPEG, "-v", "error", *flags, "-i", str(coded), "-c", "copy", str(src)],
                   check=True)
    info, frames = _sequential(src)
    assert (info.rotation, info.display_size) == (rotation, size)
    assert frames[0].shape == (size[1], size[0])
    with FrameSeeker(info) as sk:
        np.testing.assert_array_equal(sk.frame(7), frames[7])
        assert sk.backend == "reader"  # numpy's rot90 cannot mirror: the reader answers
