"""restorer evaluate: library function, table, JSON, photos, baselines, errors."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from restorer.cli import main
from restorer.engine import Colourised, Colouriser
from restorer.evaluate import evaluate_model


@pytest.fixture
def clip(clip_factory):
    return clip_factory("held_out.mp4", size=(64, 48), seconds=1.0, fps="25", audio=False)


def test_cli_prints_table_and_json(tiny_model_file, clip, tmp_path, capsys):
    out = tmp_path / "eval.json"
    assert main(["evaluate", str(tiny_model_file), str(clip), "--last", "0.4", "--quiet",
                 "--json", str(out), "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    for row in ("model", "grey (a=b=0)", "ground truth", "dE2000", "dE C>10", "CDC"):
        assert row in text
    assert "mean-ab cast" in text and "(skipped)" in text  # the tiny model has no mean_ab
    assert "no training mean ab" in text
    report = json.loads(out.read_text())
    assert report["frames"] == 10 and report["first"] == 15
    m, g = report["rows"]["model"], report["rows"]["grey"]
    assert g["colourfulness"] == pytest.approx(0.0, abs=1e-6)
    assert g["colourfulness_ratio"] == pytest.approx(0.0, abs=1e-6)
    assert g["delta_e2000"] > 1.0 and m["delta_e2000"] > 0
    # testsrc2 is saturated: grey misses at least as much on the coloured pixels as on average
    assert g["delta_e2000_coloured"] >= g["delta_e2000"] > 1.0
    assert m["cdc"] is not None and report["truth"]["cdc"] > 0


def test_library_with_mean_ab_baseline_and_stride(tiny_net_meta, clip):
    net, meta = tiny_net_meta
    meta.training["mean_ab"] = [10.0, 20.0]
    col = Colouriser.from_net(net, meta, device="cpu")
    rep = evaluate_model(col, clip, stride=5, max_frames=4)
    assert rep["frames"] == 4 and rep["end"] == 16
    cast = rep["rows"]["mean_ab"]
    assert cast is not None and cast["colourfulness"] > 0
    # A constant cast is perfectly steady only if the picture is: its CDC is finite and small.
    assert 0 <= cast["cdc"] < 1


def test_photo_folder(tiny_model_file, tmp_path):
    folder = tmp_path / "held_out_photos"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i, (w, h) in enumerate([(40, 30), (36, 48)]):
        img = cv2.resize(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8), (w, h))
        cv2.imwrite(str(folder / f"p{i}.png"), img)
    rep = evaluate_model(tiny_model_file, folder, device="cpu")
    assert rep["kind"] == "photos" and rep["frames"] == 2
    assert rep["rows"]["model"]["cdc"] is None
    assert rep["rows"]["grey"]["delta_e2000"] > 0


def test_identical_model_scores_perfect(tmp_path, clip, tiny_net_meta):
    """A 'model' that outputs the true colour scores dE 0 / PSNR high: the plumbing is right."""
    from restorer.media import FrameReader, probe

    net, meta = tiny_net_meta
    col = Colouriser.from_net(net, meta, device="cpu")
    info = probe(clip)
    truth = [f.copy() for _, f in FrameReader(info, 0, 5, mode="rgb")]
    it = iter(truth)
    # Stands in for the engine's one call, which evaluate makes with a Look built from its args.
    col.colourise_frames = (  # type: ignore[method-assign]
        lambda greys, look=None, stabiliser=None: [Colourised(None, next(it)) for _ in greys])
    rep = evaluate_model(col, clip, max_frames=5)
    m = rep["rows"]["model"]
    assert m["delta_e2000"] == pytest.approx(0.0, abs=1e-9) and m["psnr"] == float("inf")
    assert m["colourfulness_ratio"] == pytest.approx(1.0)
    assert m["cdc_ratio"] == pytest.approx(1.0)
    assert m["delta_e_vs_grey"] == pytest.approx(1.0)


def test_bad_inputs_one_line(tiny_model_file, clip, tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "none.safetensors"), str(clip), "--quiet"]) == 1
    assert main(["evaluate", str(tiny_model_file), str(tmp_path / "none.mp4"), "--quiet"]) == 1
    assert main(["evaluate", str(tiny_model_file), str(clip), "--last", "1", "--start", "3",
                 "--quiet"]) == 1
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("restorer")]
    assert len(err) == 3 and all(ln.startswith("restorer: error:") for ln in err)


def test_figures_at_a_capped_size_match_full_size(tiny_net_meta, tmp_path):
    # A 2x-upscaled clip scored at its native short side gives about the full-size figures.
    from clips import make_clip

    from restorer.engine import Colouriser
    from restorer.evaluate import evaluate_model

    net, meta = tiny_net_meta
    big = make_clip(tmp_path / "big.mp4", size=(128, 96), seconds=0.2, audio=False)
    col = Colouriser.from_net(net, meta, device="cpu")
    full = evaluate_model(col, big, metric_size=None)["rows"]
    small = evaluate_model(col, big, metric_size=48)
    assert small["metric_size"] == 48
    for row in ("model", "grey"):
        assert small["rows"][row]["delta_e2000"] == pytest.approx(
            full[row]["delta_e2000"], rel=0.25)
