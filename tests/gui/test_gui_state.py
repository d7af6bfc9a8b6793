"""The desk's plain models, tested without any Qt widget."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from restorer.gui.cache import LRUCache
from restorer.gui.state import Generation, ViewState, preset_size


def loaded(frames: int = 100, fps: float = 25.0) -> ViewState:
    s = ViewState()
    s.reset(frames, fps)
    return s


def test_navigation_clamps_and_notifies_once():
    s = loaded()
    events = []
    s.changed.connect(lambda name, value: events.append((name, value)))
    assert s.step(1) and s.frame == 1
    s.jump_seconds(1.0)
    assert s.frame == 26
    s.end()
    assert s.frame == 99
    assert not s.step(1)  # clamped: no change, no event
    s.home()
    assert s.frame == 0
    s.set_frame(-5)
    assert s.frame == 0
    assert [e for e in events if e[0] == "frame"] == [("frame", 1), ("frame", 26),
                                                      ("frame", 99), ("frame", 0)]


def test_marks_and_export_range():
    s = loaded()
    assert s.export_range() == (0, 100)
    s.set_frame(10)
    s.mark_in()
    s.set_frame(29)
    s.mark_out()
    assert (s.in_point, s.out_point) == (10, 29)
    assert s.export_range() == (10, 30)  # out is inclusive, the range end exclusive
    assert s.export_range(use_marks=False) == (0, 100)
    s.mark_in(50)  # past the out point: the out point goes
    assert (s.in_point, s.out_point) == (50, None)
    assert s.export_range() == (50, 100)
    s.clear_marks()
    assert not s.has_marks


def test_shuttle_and_play():
    s = loaded()
    s.shuttle("L")
    assert s.speed == 1.0 and s.playing
    s.shuttle("L")
    s.shuttle("L")
    assert s.speed == 4.0
    s.shuttle("J")
    assert s.speed == -1.0
    s.shuttle("K")
    assert not s.playing
    s.toggle_play()
    assert s.speed == 1.0
    s.toggle_play()
    assert s.speed == 0.0
    with pytest.raises(ValueError):
        s.shuttle("X")


def test_chroma_preset_mode():
    s = loaded()
    s.set_chroma(3.0)
    assert s.chroma == 2.0
    s.set_chroma(-1)
    assert s.chroma == 0.0
    s.set_model_size(256)
    s.set_preset("fast")
    assert s.working_size == 128
    assert preset_size("best", 256) == 512
    with pytest.raises(ValueError):
        s.set_mode("upside-down")
    s.set_mode("wipe")
    assert s.mode == "wipe"


def test_state_holds_one_look_and_names_each_change():
    from restorer.look import Look

    s = loaded()
    seen = []
    # A view that reads the look while handling the event sees the new one already.
    s.changed.connect(lambda name, value: seen.append((name, value, s.look)))
    assert s.look == Look(chroma=1.0, working_size=160, stabilise=0.0)
    first = s.look
    assert s.set_chroma(0.5) and not s.set_chroma(0.5)
    s.set_stabilise(0.3)
    s.set_model_size(256)
    s.set_preset("best")
    assert first == Look(working_size=160)  # the old value never changes
    assert s.look == Look(chroma=0.5, working_size=512, stabilise=0.3)
    assert (s.chroma, s.stabilise, s.working_size) == (0.5, 0.3, 512)
    assert [(n, v) for n, v, _ in seen] == [("chroma", 0.5), ("stabilise", 0.3),
                                            ("model_size", 256), ("preset", "best")]
    assert [lk for _, _, lk in seen] == [Look(0.5, 160), Look(0.5, 160, 0.3),
                                         Look(0.5, 256, 0.3), Look(0.5, 512, 0.3)]
    s.set_stabilise(7)  # clamped to the look's range, as a slider's input
    assert s.look.stabilise == 1.0


def test_generation_drops_stale():
    g = Generation()
    a = g.next()
    b = g.next()
    assert not g.is_current(a) and g.is_current(b)


def test_lru_cache_bounded_by_bytes_and_thread_safe():
    c = LRUCache(max_bytes=3 * 1000)
    for k in range(5):
        c.put(k, np.zeros(1000, np.uint8))
    assert len(c) == 3 and c.nbytes == 3000
    assert c.get(0) is None and c.get(4) is not None
    c.get(2)
    c.put(5, np.zeros(1000, np.uint8))  # evicts 3, the least recently used
    assert 3 not in c and 2 in c

    def hammer(offset: int) -> None:
        for k in range(200):
            c.put((offset, k), np.zeros(100, np.uint8))
            c.get((offset, k - 1))

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert c.nbytes <= 3000


def test_preview_engine_caches_and_remerges(grey_clip, tiny_colouriser):
    from restorer.gui.preview import PreviewEngine, merge
    from restorer.media import probe, read_frame

    engine = PreviewEngine(probe(grey_clip), tiny_colouriser)
    a = engine.render(3)
    assert a.rgb.shape == (48, 64, 3) and not a.cached
    np.testing.assert_array_equal(a.grey, read_frame(engine.info, 3))
    b = engine.render(3)
    assert b.cached and engine.predictions == 1
    grey = merge(a.grey, a.ab, 0.0).astype(int)
    assert np.abs(grey - a.grey[..., None].astype(int)).max() <= 2


def test_preview_engine_scrubs_in_process_and_caches_the_way(clip_factory, tiny_colouriser):
    from restorer.gui.preview import PreviewEngine
    from restorer.media import FrameReader, probe

    info = probe(clip_factory("gop.mp4", seconds=2.0, audio=False, colour=False))
    frames = [f.copy() for _, f in FrameReader(info)]
    engine = PreviewEngine(info, tiny_colouriser)
    for n in (30, 7, 45):
        np.testing.assert_array_equal(engine.grey(n), frames[n])
        assert engine.decoder == "pyav"
    # Frames decoded between the keyframe (36; GOP 12) and 45 were cached on the way: stepping
    # back is a cache hit, and exact.
    before = len(engine.frames)
    for n in (44, 43, 40, 37, 36):
        assert engine.frames.get(n) is not None, n
        np.testing.assert_array_equal(engine.grey(n), frames[n])
    assert len(engine.frames) == before
    engine.close()
    assert engine.decoder == ""


def test_preview_engine_plays_forward_and_backward(grey_clip, tiny_colouriser):
    from restorer.gui.preview import PreviewEngine
    from restorer.media import probe

    engine = PreviewEngine(probe(grey_clip), tiny_colouriser)
    cancel = threading.Event()
    fwd = [r.n for r in engine.play(20, 8.0, cancel)]
    assert fwd and fwd[0] == 20 and fwd == sorted(fwd) and fwd[-1] <= 24
    back = []
    for r in engine.play(4, -8.0, cancel):
        back.append(r.n)
    assert back[0] == 4 and back == sorted(back, reverse=True) and back[-1] >= 0


def test_preview_engine_stabilises_sequential_frames(grey_clip, tiny_colouriser):
    from restorer.gui.preview import PreviewEngine
    from restorer.look import Look
    from restorer.media import probe

    info = probe(grey_clip)
    plain = PreviewEngine(info, tiny_colouriser)
    raw = [plain.render(n).ab for n in (0, 1, 2)]
    engine = PreviewEngine(info, tiny_colouriser)
    steady = Look(stabilise=1.0)
    out = [engine.render(n, steady) for n in (0, 1, 2)]
    assert engine.predictions == 3 and all(not r.cached for r in out)
    assert np.abs(out[0].ab - raw[0]).max() < 1e-3  # the first frame of a run is untouched
    assert engine._stab is not None and engine._stab.frames == 3  # fed in order
    resets = []
    engine._stab.reset = lambda orig=engine._stab.reset: (resets.append(1), orig())[1]
    engine.render(3, steady)  # the next frame: continues the run
    engine.render(20, steady)  # a jump: the history is dropped
    assert resets == [1]
