"""render: the export job end to end, and every bad-input case it must survive."""

from __future__ import annotations

import re
import resource
import signal
import subprocess
import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from clips import FFMPEG
from skimage import color as skcolor

import restorer.media.writer as writer_mod
from restorer.errors import Cancelled, MediaError, ModelError, OutputError
from restorer.media import FrameReader, probe
from restorer.render import RenderJob, render, run


def audio_seconds(path: Path, stream: int = 0) -> float:
    err = subprocess.run([FFMPEG, "-hide_banner", "-i", str(path), "-map", f"0:a:{stream}",
                          "-f", "null", "-"], capture_output=True, text=True).stderr
    h, m, s = re.findall(r"time=(\d+):(\d+):([\d.]+)", err)[-1]
    return int(h) * 3600 + int(m) * 60 + float(s)


def test_end_to_end_keeps_count_rate_size_audio_and_L(clip_factory, tmp_path, tiny_colouriser):
    src = clip_factory("ep.mp4", fps="30000/1001", seconds=1.0, colour=False)
    dst = tmp_path / "ep_colour.mkv"
    events = list(render(RenderJob(src, dst, codec="ffv1"), colouriser=tiny_colouriser))
    assert events[-1].output == dst and events[-1].done == events[-1].total == 30
    a, b = probe(src), probe(dst)
    assert (b.frame_count, b.fps, b.width, b.height) == (30, Fraction(30000, 1001), 64, 48)
    assert len(b.audio) == 1 and b.audio[0].codec == "aac"
    assert audio_seconds(dst) == pytest.approx(audio_seconds(src), abs=0.03)
    greys = [g for _, g in FrameReader(a)]
    colours = [c for _, c in FrameReader(b, mode="rgb")]
    for g, c in zip(greys[::7], colours[::7], strict=True):
        lab = skcolor.rgb2lab(c)
        L_src = skcolor.rgb2lab(np.repeat(g[..., None], 3, -1))[..., 0]
        assert np.abs(lab[..., 0] - L_src).max() <= 1.0  # ffv1 is lossless: L preserved
        assert np.abs(lab[..., 1:]).mean() > 2.0  # and colour was added
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ep.mp4", "ep_colour.mkv"]


def test_compare_and_frame_range(clip_factory, tmp_path, tiny_colouriser):
    src = clip_factory("ep.mp4", seconds=2.0, colour=False)
    dst = tmp_path / "cmp.mp4"
    run(RenderJob(src, dst, start=10, end=35, compare=True), colouriser=tiny_colouriser)
    out = probe(dst)
    assert (out.width, out.height, out.frame_count) == (128, 48, 25)
    assert audio_seconds(dst) == pytest.approx(1.0, abs=0.05)


def test_cancel_leaves_nothing(clip_factory, tmp_path, tiny_colouriser):
    src = clip_factory("ep.mp4", seconds=2.0, colour=False)
    dst = tmp_path / "out.mp4"
    cancel = threading.Event()
    job = RenderJob(src, dst, batch_size=4)
    with pytest.raises(Cancelled):
        for ev in render(job, cancel, tiny_colouriser):
            if ev.done >= 8:
                cancel.set()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ep.mp4"]


def test_cancel_never_closes_the_decoder_under_the_reader_thread(clip_factory, tmp_path,
                                                                 tiny_colouriser, monkeypatch):
    """PyAV crashes the process (SIGSEGV, seen in CI on SIGTERM) when a container is closed by
    one thread while another decodes from it; a cancel must let the reader thread finish its
    frame and close the decoder itself."""
    import restorer.render as render_mod

    inside = threading.Event()
    clashes: list[str] = []

    class SlowReader(FrameReader):
        def __iter__(self):
            for item in super().__iter__():
                inside.set()
                time.sleep(0.02)  # widen the window in which a decode is under way
                inside.clear()
                yield item

        def close(self) -> None:
            if inside.is_set() and threading.current_thread().name != "restorer-reader":
                clashes.append(threading.current_thread().name)
            super().close()

    monkeypatch.setattr(render_mod, "FrameReader", SlowReader)
    src = clip_factory("ep.mp4", seconds=2.0, colour=False)
    for i in range(4):
        cancel = threading.Event()
        job = RenderJob(src, tmp_path / f"out{i}.mp4", batch_size=1)
        with pytest.raises(Cancelled):
            for ev in render(job, cancel, tiny_colouriser):
                if ev.done >= 2:
                    cancel.set()
    assert clashes == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ep.mp4"]


def test_refuses_to_overwrite_source_and_existing(grey_clip, tiny_colouriser):
    before = grey_clip.read_bytes()
    with pytest.raises(OutputError, match="refusing to overwrite the input"):
        run(RenderJob(grey_clip, grey_clip, overwrite=True), colouriser=tiny_colouriser)
    other = grey_clip.with_name("existing.mp4")
    other.write_bytes(b"keep me")
    with pytest.raises(OutputError, match="already exists"):
        run(RenderJob(grey_clip, other), colouriser=tiny_colouriser)
    assert grey_clip.read_bytes() == before and other.read_bytes() == b"keep me"


def test_disk_full_mid_export(clip_factory, tmp_path, tiny_colouriser, monkeypatch):
    src = clip_factory("ep.mkv", size=(160, 120), seconds=2.0, colour=False)
    dst = tmp_path / "out.mkv"
    dst.write_bytes(b"the previous export")

    def small_disk(cmd, **kw):
        def limit() -> None:  # the child sees EFBIG after 20 kB, as on a full disk
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

        return subprocess.Popen(cmd, preexec_fn=limit, **kw)

    monkeypatch.setattr(writer_mod, "spawn", small_disk)
    with pytest.raises(OutputError, match="disk full"):
        run(RenderJob(src, dst, codec="ffv1", overwrite=True), colouriser=tiny_colouriser)
    assert dst.read_bytes() == b"the previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ep.mkv", "out.mkv"]


def test_colour_source_is_converted_and_said(clip_factory, tmp_path, tiny_colouriser):
    src = clip_factory("colour.mp4", colour=True)
    events = list(render(RenderJob(src, tmp_path / "o.mp4"), colouriser=tiny_colouriser))
    assert any("source is in colour" in n for n in events[0].notes)


def test_odd_size_ten_bit_and_many_audio_streams(clip_factory, tmp_path, tiny_colouriser):
    src = clip_factory("odd.mkv", size=(65, 49), pix_fmt="yuv444p10le", audio_streams=3,
                       colour=False)
    dst = tmp_path / "odd_out.mkv"
    events = list(render(RenderJob(src, dst), colouriser=tiny_colouriser))
    notes = " ".join(events[0].notes)
    assert "10-bit" in notes and "odd size" in notes
    # Copied audio needs no note; only what was changed is told (see test_writer.py).
    assert "audio" not in " ".join(events[-1].notes)
    out = probe(dst)
    assert (out.width, out.height, out.frame_count) == (65, 49, 25)
    assert [(a.codec, a.language) for a in out.audio] == [(a.codec, a.language)
                                                          for a in probe(src).audio]


def test_variable_frame_rate_becomes_constant(tmp_path, tiny_colouriser):
    src = tmp_path / "vfr.mkv"
    subprocess.run([FFMPEG, "-v", "error", "-f", "lavfi", "-i",
                    "testsrc2=size=64x48:rate=25:duration=2", "-vf",
                    "select='lt(t,1)+not(mod(n,3))',format=gray", "-fps_mode", "vfr",
                    "-c:v", "libx264", str(src)], check=True)
    info = probe(src)
    assert info.vfr and info.fps == 25
    events = list(render(RenderJob(src, tmp_path / "cfr.mp4"), colouriser=tiny_colouriser))
    assert any("constant" in n for n in events[0].notes)
    out = probe(tmp_path / "cfr.mp4")
    assert out.frame_count == info.frame_count and not out.vfr


@pytest.mark.parametrize("kind", ["missing", "corrupt", "wrong-arch"])
def test_bad_model_files(grey_clip, tmp_path, tiny_model_file, kind):
    model = tmp_path / "m.safetensors"
    if kind == "corrupt":
        model.write_bytes(b"not a model at all" * 50)
    elif kind == "wrong-arch":
        from safetensors.torch import load_file, save_file

        from restorer.checkpoint import read_meta

        meta = read_meta(tiny_model_file)
        meta.arch = {"arch": "unet", "base": 8, "depth": 2}
        save_file(load_file(str(tiny_model_file)), str(model),
                  metadata={"restorer": meta.to_json()})
    with pytest.raises(ModelError):
        run(RenderJob(grey_clip, tmp_path / "o.mp4", model=model, device="cpu"))
    assert not (tmp_path / "o.mp4").exists()


def test_truncated_stream_is_an_error_not_a_short_master(clip_factory, tmp_path, tiny_colouriser,
                                                         monkeypatch):
    src = clip_factory("ep.mp4", seconds=1.0, colour=False)
    info = probe(src)
    # Pretend the container promised more frames than the stream holds.
    from dataclasses import replace

    monkeypatch.setattr("restorer.render.probe", lambda p: replace(info, frame_count=40))
    with pytest.raises(MediaError, match="truncated or damaged"):
        run(RenderJob(src, tmp_path / "o.mp4"), colouriser=tiny_colouriser)
    assert not (tmp_path / "o.mp4").exists()


def test_warmup_continues_the_stabilised_colour_of_the_frames_before(
        clip_factory, tmp_path: Path, tiny_model_file: Path) -> None:
    """A range rendered after warm-up frames (a farm chunk starting mid-shot) matches the same
    frames of a whole render; without warm-up its first frames do not."""
    from restorer.look import Look

    src = clip_factory("shot.mp4", size=(96, 72), seconds=1.6, colour=False)
    look = Look(stabilise=0.7)

    def frames(path: Path) -> np.ndarray:
        with FrameReader(probe(path), mode="rgb") as reader:
            return np.stack([f for _, f in reader]).astype(int)

    whole = run(RenderJob(src, tmp_path / "whole.mkv", model=tiny_model_file, look=look,
                          codec="ffv1", batch_size=4))
    warm = run(RenderJob(src, tmp_path / "warm.mkv", model=tiny_model_file, look=look,
                         codec="ffv1", batch_size=4, start=20, warmup=20, streams=False))
    cold = run(RenderJob(src, tmp_path / "cold.mkv", model=tiny_model_file, look=look,
                         codec="ffv1", batch_size=4, start=20))
    ref = frames(whole)[20:]
    assert probe(warm).frame_count == len(ref)
    assert not probe(warm).audio and len(probe(cold).audio) == 1, "streams=False: video only"
    assert np.abs(frames(warm) - ref).max() <= 1
    assert np.abs(frames(cold)[0] - ref[0]).max() > 4, "the test cannot tell warm from cold"
