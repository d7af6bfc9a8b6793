"""Dataset builder, on-disk store and torch dataset, on tiny generated clips and images."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from clips import make_clip

from restorer.cli import main
from restorer.data import BuildOptions, ColourDataset, FrameStore, build_dataset, read_manifest
from restorer.data.extract import parse_every, parse_exclude
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
    m = _build([clip], tmp_path / "d.dataset", every=every)
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
    assert frame.shape == (32, 32, 3) and frame.dtype == np.uint8
    assert frame.std() > 10  # real picture content, not zeros
    # The stored frame is the decoded frame, square-cropped: compare with the reference decode.
    from restorer.media import probe, read_frame

    def ref(n: int) -> np.ndarray:  # decoded at 42x32 (even sizes), centre 32x32
        f = read_frame(probe(clip), n, mode="rgb")
        return cv2.resize(f, (42, 32), interpolation=cv2.INTER_AREA)[:, 5:37].astype(int)

    err = np.abs(frame.astype(int) - ref(15)).mean()
    assert err < 12 and err < np.abs(frame.astype(int) - ref(35)).mean()
    # mean ab of the training split is recorded for the evaluate baseline
    assert len(m["stats"]["mean_ab"]) == 2 and m["stats"]["pixels"] > 0


def test_split_by_scene_without_leakage(clip, tmp_path):
    # Short segments make many split units; neighbouring frames must stay in one split.
    m = _build([clip], tmp_path / "d.dataset", every="1", segment_seconds=0.2,
               val_fraction=0.25)
    tr, va = m["splits"]["train"], m["splits"]["val"]
    assert tr["count"] > 0 and va["count"] > 0
    assert not set(tr["frames"]["scene"]) & set(va["frames"]["scene"])
    # each scene is a contiguous run of frames
    for split in (tr, va):
        by_scene: dict[int, list[int]] = {}
        for s, f in zip(split["frames"]["scene"], split["frames"]["frame"], strict=True):
            by_scene.setdefault(s, []).append(f)
        for fs in by_scene.values():
            assert fs == list(range(fs[0], fs[0] + len(fs)))


def test_exclude_time_range(clip, tmp_path):
    m = _build([clip], tmp_path / "d.dataset", every="1",
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
    ds = ColourDataset(tmp_path / "d.dataset", "train", crop=24, augment=Augment(p=1.0))
    x, y = ds[0]
    assert x.shape == (1, 24, 24) and y.shape == (2, 24, 24)
    assert x.dtype == torch.float32 and -1.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert float(y.abs().max()) <= 1.0 and float(y.abs().mean()) > 0.05  # real colour targets
    clean = ColourDataset(tmp_path / "d.dataset", "train")
    x0, _ = clean[0]
    assert x0.shape == (1, 32, 32)


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
    assert read_manifest(out)["splits"]["train"]["count"] + \
        read_manifest(out)["splits"]["val"]["count"] == 5
    # refuses to overwrite without --overwrite
    assert main(["dataset", "build", str(clip), "-o", str(out), "--quiet"]) == 1
    assert "--overwrite" in capsys.readouterr().err
