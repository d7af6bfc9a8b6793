"""Dataset builder, on-disk store and torch dataset, on tiny generated clips and images."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from clips import FFMPEG, make_clip

from restorer.cli import main
from restorer.data import BuildOptions, ColourDataset, FrameStore, build_dataset, read_manifest
from restorer.data.dataset import common_crop
from restorer.data.extract import (
    cut_detector,
    fit_photo,
    local_change,
    parse_every,
    parse_exclude,
    plan_every,
    val_blocks,
)
from restorer.errors import DatasetError


def _build(inputs, dest, **kw):
    overwrite = kw.pop("overwrite", False)
    opts = BuildOptions(**{"size": 32, "dup_threshold": 0.0, **kw})
    events = list(build_dataset(inputs, dest, opts, overwrite=overwrite))
    assert events[-1].finished and events[-1].path == Path(dest)
    return read_manifest(dest)


def _all_frames(m: dict) -> list[int]:
    return sorted(f for s in ("train", "val") for f in m["splits"][s]["frames"]["frame"])


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """2 s, 25 fps, 64x48 colour testsrc2: 50 frames that all differ."""
    return make_clip(tmp_path_factory.mktemp("clips") / "colour.mp4", size=(64, 48),
                     seconds=2.0, fps="25", audio=False)


@pytest.mark.parametrize("every, frames", [
    ("12f", [0, 12, 24, 36, 48]),
    ("1s", [0, 25]),
    ("0.5s", [0, 13, 25, 38]),  # first frame at or after each multiple of 0.5 s
    ("1", list(range(50))),
])
def test_sampling_interval(clip, tmp_path, every, frames):
    m = _build([clip], tmp_path / "d.dataset", every=every, val_fraction=0.0)
    assert _all_frames(m) == frames


def test_provenance_and_lazy_memmaps(clip, tmp_path):
    m = _build([clip], tmp_path / "d.dataset", every="5f", val_fraction=0.0)
    assert m["sources"][0]["path"] == str(clip) and m["sources"][0]["kind"] == "video"
    store = FrameStore(tmp_path / "d.dataset", "train")
    assert store._maps == {}  # opening reads nothing
    assert len(store) == 10
    rec = store.provenance(3)
    assert rec["source"] == str(clip) and rec["frame"] == 15
    assert rec["time"] == pytest.approx(15 / 25)
    frame = store[3]
    assert isinstance(store.shard(0), np.memmap)  # file-backed, not loaded
    # The whole frame, aspect kept: 64x48 at a short side of 32 is 42x32 (even sizes).
    assert frame.shape == (32, 42, 3) and frame.dtype == np.uint8
    assert m["splits"]["train"]["shapes"] == [[32, 42]]
    assert frame.std() > 10  # real picture content, not zeros
    # The stored frame is the decoded frame, scaled whole: compare with the reference decode.
    from restorer.media import probe, read_frame

    def ref(n: int) -> np.ndarray:
        f = read_frame(probe(clip), n, mode="rgb")
        return cv2.resize(f, (42, 32), interpolation=cv2.INTER_AREA).astype(int)

    err = np.abs(frame.astype(int) - ref(15)).mean()
    assert err < 12 and err < np.abs(frame.astype(int) - ref(35)).mean()
    # mean ab of the training split is recorded for the evaluate baseline
    assert len(m["stats"]["mean_ab"]) == 2 and m["stats"]["pixels"] > 0


def test_one_source_always_validates_apart_in_time(tmp_path):
    # A single 6 s shot (no cuts): validation is a contiguous block, with a gap on both sides.
    clip = make_clip(tmp_path / "shot.mp4", size=(64, 48), seconds=6.0, fps="25", audio=False)
    m = _build([clip], tmp_path / "d.dataset", every="1", val_gap_seconds=0.4)
    tr, va = m["splits"]["train"]["frames"], m["splits"]["val"]["frames"]
    assert len(va["time"]) >= 10 and len(tr["time"]) > 5 * len(va["time"])
    lo, hi = min(va["time"]), max(va["time"])
    assert va["frame"] == list(range(va["frame"][0], va["frame"][-1] + 1))  # one block
    gap = min(abs(t - v) for t in tr["time"] for v in (lo, hi))
    assert gap >= 0.4 and not [t for t in tr["time"] if lo <= t <= hi]
    assert m["skipped"]["val_gap"] > 0
    assert m["sources"][0]["val_blocks"][0][0] == pytest.approx(lo, abs=0.05)


def test_val_blocks_spread_over_long_material():
    blocks = val_blocks(600.0, [(100.0, 200.0)], 0.1, 10.0)
    assert len(blocks) == 5 and sum(e - a for a, e in blocks) == pytest.approx(50.0)
    assert not [b for b in blocks if b[1] > 100.0 and b[0] < 200.0]  # none in the exclusion
    assert blocks == sorted(blocks)
    assert val_blocks(4.5, [], 0.1, 10.0) == [pytest.approx((2.025, 2.475))]
    assert val_blocks(10.0, [], 0.0, 10.0) == []


def _static_shot_with_a_moving_patch(path: Path) -> Path:
    """30 frames of a textured still; frames 10-19 move an 8x8 patch, 20-29 equal frame 0."""
    rng = np.random.default_rng(1)
    still = cv2.resize(rng.integers(40, 220, (9, 12, 3), dtype=np.uint8), (96, 72),
                       interpolation=cv2.INTER_CUBIC)
    frames = []
    for n in range(30):
        f = still.copy()
        if 10 <= n < 20:  # a mouth opening and closing: small, but a real change
            k = n - 10
            f[40:48, 30 + 2 * k: 38 + 2 * k] = (255, 30, 30) if k % 2 else (20, 20, 200)
        frames.append(f)
    cmd = [FFMPEG, "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "96x72",
           "-r", "25", "-i", "-", "-c:v", "libx264", "-qp", "12", "-pix_fmt", "yuv444p",
           str(path)]
    subprocess.run(cmd, input=np.stack(frames).tobytes(), check=True)
    return path


def test_duplicates_see_small_motion(tmp_path):
    clip = _static_shot_with_a_moving_patch(tmp_path / "still.mp4")
    opts = BuildOptions(size=64, every="1", val_fraction=0.0)  # the default dup threshold
    events = list(build_dataset([clip], tmp_path / "d.dataset", opts))
    m = read_manifest(tmp_path / "d.dataset")
    kept = _all_frames(m)
    assert kept == [0, *range(10, 21)]  # every moving frame kept, frozen frames dropped
    assert m["skipped"]["duplicate"] == 30 - len(kept)
    assert "dropped 18 duplicates" in events[-1].notes[0]


def test_local_change_measure():
    a = np.full((96, 128), 100, np.float32)
    b = a + np.random.default_rng(0).normal(0, 1.5, a.shape).astype(np.float32)  # codec noise
    assert local_change(a, b) < 1.5
    c = a.copy()
    c[40:46, 60:66] = 160  # a 6x6 change
    assert local_change(a, c) > 20


def test_scene_cuts_are_histogram_jumps():
    # The builder's cut (restorer.scenes.CutDetector, measure="histogram"): the L1 distance of
    # the 32-bin histograms of 32x32 grey thumbnails above cut_threshold, on any frame.
    rng = np.random.default_rng(0)
    det = cut_detector(BuildOptions())  # cut_threshold 0.5
    level, prev, found, expected = 128.0, None, [], []
    for _ in range(300):
        level = float(np.clip(level + rng.normal(0, 12), 30, 225))  # a wandering exposure
        thumb = np.clip(rng.normal(level, 10, (32, 32)), 0, 255).astype(np.uint8)
        hist = np.histogram(thumb, bins=32, range=(0, 256))[0] / thumb.size
        expected.append(prev is not None and float(np.abs(hist - prev).sum()) > 0.5)
        prev = hist
        found.append(det.update(thumb))
    assert found == expected
    consecutive = any(a and b for a, b in zip(found[:-1], found[1:], strict=True))
    assert 20 < sum(found) < 280 and consecutive  # a cut may follow a cut


def test_stored_frames_keep_the_aspect(tmp_path):
    wide = make_clip(tmp_path / "wide.mp4", size=(96, 54), seconds=0.4, audio=False)
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    sizes = {"landscape": (120, 90), "portrait": (60, 80), "pano": (200, 100)}
    for name, (w, h) in sizes.items():
        img = cv2.resize(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8), (w, h),
                         interpolation=cv2.INTER_NEAREST)
        cv2.imwrite(str(folder / f"{name}.png"), img)
    m = _build([wide, folder], tmp_path / "a.dataset", every="1", val_fraction=0.0)
    shapes = {tuple(s) for s in m["splits"]["train"]["shapes"]}
    # 16:9 video whole at 32 lines; photos snapped to 4:3, 3:4 and 2:1 buckets
    assert shapes == {(32, 56), (32, 42), (42, 32), (32, 64)}
    store = FrameStore(tmp_path / "a.dataset")
    assert {store[i].shape[:2] for i in range(len(store))} == shapes
    assert fit_photo(np.zeros((90, 120, 3), np.uint8), 32).shape == (32, 42, 3)


def test_auto_sampling_plan():
    class V:
        def __init__(self, frames: int) -> None:
            self.frame_count, self.fps, self.width, self.height = frames, 25, 720, 576

    opts = BuildOptions()
    assert plan_every([V(1337)], opts)[0] == 1  # short material: every frame
    k, why = plan_every([V(25 * 3600 * 10)], opts)  # ten hours: thinned to the aim
    assert k == 75 and "every 75th frame" in why and "GB" in why
    small_disk = BuildOptions(max_gb=1.0)
    k1, _ = plan_every([V(25 * 3600)], small_disk)
    assert 25 * 3600 / k1 * 320 * 256 * 3 <= 1.0e9 * 1.02  # held under the disk budget


def test_exclude_time_range(clip, tmp_path):
    m = _build([clip], tmp_path / "d.dataset", every="1", val_fraction=0.0,
               exclude=parse_exclude([f"{clip}:0.5-1.5"]))
    frames = _all_frames(m)
    assert frames == list(range(0, 13)) + list(range(38, 50))
    assert m["skipped"]["excluded"] == 25
    assert m["sources"][0]["exclude"] == [[0.5, 1.5]]


def test_photos_folder_skips_greyscale(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        img = cv2.resize(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8), (80, 60),
                         interpolation=cv2.INTER_NEAREST)
        cv2.imwrite(str(folder / f"colour{i}.png"), img)
    cv2.imwrite(str(folder / "grey.jpg"), cv2.resize(rng.integers(0, 256, (6, 8), np.uint8),
                                                     (80, 60), interpolation=cv2.INTER_NEAREST))
    m = _build([folder], tmp_path / "p.dataset", val_fraction=0.0)
    assert m["splits"]["train"]["count"] == 3
    assert m["skipped"]["grey"] == 1
    assert sorted(s["name"] for s in m["sources"]) == ["colour0.png", "colour1.png",
                                                      "colour2.png"]


def test_torch_dataset_items(clip, tmp_path):
    from restorer.data import Augment

    _build([clip], tmp_path / "d.dataset", every="5f", val_fraction=0.0)
    ds = ColourDataset(tmp_path / "d.dataset", "train", working_size=24, crop=(24, 24),
                       augment=Augment(p=1.0))
    x, y = ds[0]
    assert x.shape == (1, 24, 24) and y.shape == (2, 24, 24)
    assert x.dtype == torch.float32 and -1.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert float(y.abs().max()) <= 1.0 and float(y.abs().mean()) > 0.05  # real colour targets
    clean = ColourDataset(tmp_path / "d.dataset", "train")
    x0, _ = clean[0]
    assert x0.shape == (1, 32, 42)  # the whole stored frame
    # Scaled to the working size, whole: what the engine will show the network.
    at_16 = ColourDataset(tmp_path / "d.dataset", "train", working_size=16)
    assert at_16[0][0].shape == (1, 16, 21)
    assert common_crop({(32, 42)}, 16) == (16, 16) and common_crop({(32, 42)}, 24, 4) == (24, 32)


def test_cancel_leaves_nothing(clip, tmp_path):
    gen = build_dataset([clip], tmp_path / "c.dataset", BuildOptions(size=32, every="1"))
    next(gen)
    gen.close()
    assert not (tmp_path / "c.dataset").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".c.dataset")]


def test_bad_inputs_are_one_line_errors(tmp_path, clip, capsys):
    with pytest.raises(DatasetError, match="not found"):
        list(build_dataset([tmp_path / "missing.mp4"], tmp_path / "x.dataset"))
    with pytest.raises(DatasetError, match="--every"):
        parse_every("often")
    with pytest.raises(DatasetError, match="--exclude"):
        parse_exclude(["clip.mp4"])
    # nothing usable: only greyscale photos
    folder = tmp_path / "grey"
    folder.mkdir()
    cv2.imwrite(str(folder / "g.png"), np.tile(np.arange(64, dtype=np.uint8), (48, 1)))
    with pytest.raises(DatasetError, match="no usable frames"):
        list(build_dataset([folder], tmp_path / "e.dataset", BuildOptions(size=32)))
    assert not (tmp_path / "e.dataset").exists()
    # corrupt manifest, via the CLI: exit 1 and one line
    bad = tmp_path / "bad.dataset"
    bad.mkdir()
    (bad / "manifest.json").write_text("{not json")
    with pytest.raises(DatasetError, match="corrupt"):
        read_manifest(bad)
    assert main(["dataset", "info", str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("restorer: error:") and "corrupt" in err and "\n" not in err
    (bad / "manifest.json").write_text(json.dumps({"format": "restorer-dataset", "size": 32}))
    with pytest.raises(DatasetError, match="corrupt"):
        FrameStore(bad)


def test_cli_build(clip, tmp_path, capsys):
    out = tmp_path / "cli.dataset"
    assert main(["dataset", "build", str(clip), "-o", str(out), "--every", "10f", "--size", "32",
                 "--quiet", "--dup-threshold", "0"]) == 0
    m = read_manifest(out)
    # 0, 10 and 40 train; 20 and 30 fall in the gaps around the validation block at 0.9-1.1 s,
    # whose sampling starts at its first frame (23) so that it is never empty
    assert m["splits"]["train"]["frames"]["frame"] == [0, 10, 40]
    assert m["splits"]["val"]["frames"]["frame"] == [23]
    err = capsys.readouterr().err
    assert "whole frames at 42x32" in err
    assert main(["dataset", "info", str(out)]) == 0
    assert "42x32" in capsys.readouterr().out
    # refuses to overwrite without --overwrite
    assert main(["dataset", "build", str(clip), "-o", str(out), "--quiet"]) == 1
    assert "--overwrite" in capsys.readouterr().err
