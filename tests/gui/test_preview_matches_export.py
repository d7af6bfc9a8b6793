"""What the desk shows is what an export writes: one engine pipeline, one Look."""

from __future__ import annotations

import numpy as np
import pytest

from restorer.engine import Colouriser
from restorer.gui.preview import PreviewEngine
from restorer.look import Look
from restorer.media import FrameReader, probe
from restorer.render import RenderJob, run

LOOKS = [
    Look(),  # the model's own working size (32): the 96x72 frames are scaled to 40x32
    Look(chroma=1.4, working_size=48),  # stronger colour: the gamut fitting has work to do
    Look(chroma=0.6, working_size=40, stabilise=0.7),  # the stabiliser fed frames in order
]


def _export(src, dst, colouriser: Colouriser, look: Look) -> list[np.ndarray]:
    # FFV1 is written as planar RGB (gbrp) and read back as rgb24: the same bytes, no YUV step.
    out = run(RenderJob(src, dst, look=look, codec="ffv1"), colouriser=colouriser)
    return [f.copy() for _, f in FrameReader(probe(out), mode="rgb")]


@pytest.mark.parametrize("look", LOOKS, ids=["model-own", "chroma-1.4", "stabilised"])
def test_preview_and_export_give_identical_pixels(clip_factory, tmp_path, tiny_net_meta,
                                                  look: Look) -> None:
    src = clip_factory("ep.mp4", size=(96, 72), seconds=0.5, colour=False, audio=False)
    net, meta = tiny_net_meta
    # The preview runs the network one frame at a time; so does this export. (See the next
    # test for an export in batches.)
    col = Colouriser.from_net(net, meta, device="cpu", batch_size=1)
    exported = _export(src, tmp_path / "ep.mkv", col, look)
    assert len(exported) == 13
    engine = PreviewEngine(probe(src), col)
    # In order, as the export streams, so a stabilising look carries the same history.
    for n, frame in enumerate(exported):
        shown = engine.render(n, look)
        assert shown.look == look and not shown.cached
        np.testing.assert_array_equal(shown.rgb, frame, err_msg=f"frame {n}")
    assert engine.predictions == len(exported)
    # The chroma slider re-merges the cached ab (no network) and matches an export at that look.
    stronger = look.replace(chroma=1.8)
    if look.stabilise == 0:
        again = engine.render(5, stronger)
        assert again.cached and engine.predictions == len(exported)
        exported = _export(src, tmp_path / "ep18.mkv", col, stronger)
        np.testing.assert_array_equal(again.rgb, exported[5])


def test_export_in_batches_matches_the_preview_to_the_last_float_bit(clip_factory, tmp_path,
                                                                     tiny_colouriser) -> None:
    """Exports run the network on batches (4 frames here); CPU convolution kernels may sum in
    another order for another batch size, so the predicted ab can differ from a one-frame run in
    its last float bit (about 1e-7 relative). After 8-bit rounding that moves at most one level,
    on a handful of the 13 x 96 x 72 x 3 values, never more."""
    src = clip_factory("ep.mp4", size=(96, 72), seconds=0.5, colour=False, audio=False)
    look = Look(chroma=1.2, working_size=40)
    assert tiny_colouriser.batch_size == 4
    exported = _export(src, tmp_path / "ep.mkv", tiny_colouriser, look)
    engine = PreviewEngine(probe(src), tiny_colouriser)
    diff = np.stack([engine.render(n, look).rgb.astype(int) - f for n, f in enumerate(exported)])
    assert np.abs(diff).max() <= 1
    assert np.count_nonzero(diff) <= 1e-4 * diff.size


@pytest.mark.parametrize("look", [Look(), Look(chroma=0.6, working_size=40, stabilise=0.7)],
                         ids=["model-own", "stabilised"])
def test_interlaced_preview_is_colourised_field_by_field_as_exported(tmp_path, tiny_net_meta,
                                                                     look: Look) -> None:
    import subprocess

    from clips import FFMPEG

    src = tmp_path / "576i.mp4"
    subprocess.run([FFMPEG, "-v", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc2=size=96x64:rate=50:duration=0.5", "-vf",
                    "format=gray,interlace=scan=tff", "-c:v", "libx264", "-preset", "ultrafast",
                    "-flags", "+ildct+ilme", "-x264-params", "tff=1", str(src)], check=True)
    net, meta = tiny_net_meta
    col = Colouriser.from_net(net, meta, device="cpu", batch_size=1)
    exported = _export(src, tmp_path / "ep.mkv", col, look)
    engine = PreviewEngine(probe(src), col)
    assert engine.fields() == "tt"
    for n, frame in enumerate(exported):
        np.testing.assert_array_equal(engine.render(n, look).rgb, frame, err_msg=f"frame {n}")
