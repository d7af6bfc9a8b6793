"""On-disk dataset: ``.npy`` shards of whole uint8 RGB frames (aspect kept), plus a JSON manifest.

Layout of ``show.dataset/``::

    manifest.json         # format, short side, sources, per-frame provenance (columnar), stats
    train_00000.npy       # (n <= shard_size, H, W, 3) uint8 RGB; every frame of a shard has the
    train_00001.npy       # same shape, and the manifest lists each shard's (H, W)
    val_00000.npy

Why this format:

* **Memory-mapped ``.npy``** (``np.load(mmap_mode="r")``): opening a split costs nothing, a
  sample reads only its own bytes, and the OS page cache is shared by DataLoader workers; a show's
  650,000 frames never need 650,000 frames of RAM. No extra dependency, readable from any tool.
* **uint8 RGB, not Lab**: lossless with respect to the decoded source (half the bytes of float
  Lab), and the trainer derives the network input exactly as inference does (RGB -> the grey level
  whose L is the frame's L -> L), so training and inference see identical quantisation.
* **Whole frames, aspect kept** (short side scaled to ``size``): the network is trained on what
  it will be shown, the sides of a 4:3 or 16:9 frame included. A shard holds frames of one shape,
  so a shard is a single contiguous array; a video gives one shape, photos are snapped to a few
  aspect buckets (see :mod:`restorer.data.extract`).
* **Splits in separate shards**: a split is a list of files; nothing decides at read time.
* **Atomic**: the builder writes into a hidden temp folder beside the target and renames it.

Version 1 datasets (square frames) still read: every shard's shape is then ``(size, size)``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from restorer.errors import DatasetError
from restorer.fsutil import atomic_path

FORMAT = "restorer-dataset"
VERSION = 2
SHARD_SIZE = 1024
SPLITS = ("train", "val")

# Per-frame provenance columns, stored column-wise so 650k frames stay a few tens of MB of JSON.
COLUMNS = ("source", "frame", "time", "scene", "shard", "index")


@dataclass
class SplitWriter:
    """Appends frames of one split to ``<split>_NNNNN.npy`` shards, one open shard per shape."""

    root: Path
    split: str
    shard_size: int = SHARD_SIZE
    count: int = 0
    shards: list[str] = field(default_factory=list)
    shapes: list[tuple[int, int]] = field(default_factory=list)
    _open: dict[tuple[int, int], tuple[int, np.memmap, int]] = field(default_factory=dict)

    def append(self, rgb: np.ndarray) -> tuple[int, int]:
        """Write one ``(H, W, 3)`` uint8 frame; returns ``(shard number, index in shard)``."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"frame must be uint8 (H, W, 3); got {rgb.dtype} {rgb.shape}")
        shape = (int(rgb.shape[0]), int(rgb.shape[1]))
        k, mm, fill = self._open.get(shape, (-1, None, self.shard_size))
        if fill == self.shard_size:
            if mm is not None:
                self._close_shard(shape)
            k = len(self.shards)
            name = f"{self.split}_{k:05d}.npy"
            self.shards.append(name)
            self.shapes.append(shape)
            mm = np.lib.format.open_memmap(self.root / name, mode="w+", dtype=np.uint8,
                                           shape=(self.shard_size, *shape, 3))
            fill = 0
        assert mm is not None  # an open shard of this shape, or the one just made
        mm[fill] = rgb
        self._open[shape] = (k, mm, fill + 1)
        self.count += 1
        return k, fill

    def _close_shard(self, shape: tuple[int, int]) -> None:
        k, mm, fill = self._open.pop(shape)
        mm.flush()
        if fill < self.shard_size:
            # Shards are allocated full size; the last of each shape is rewritten at its length.
            trimmed = np.array(mm[:fill])
            del mm
            np.save(self.root / self.shards[k], trimmed)

    def close(self) -> None:
        for shape in list(self._open):
            self._close_shard(shape)

    def abort(self) -> None:
        self._open.clear()


class DatasetWriter:
    """Builds a dataset in a temp folder next to ``dest``; :meth:`commit` renames it into place."""

    def __init__(self, dest: str | os.PathLike[str], size: int, overwrite: bool = False,
                 shard_size: int = SHARD_SIZE) -> None:
        self.dest = Path(dest)
        if self.dest.exists() and not overwrite:
            raise DatasetError(f"{self.dest} already exists; pass --overwrite to replace it")
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.dest.name}.tmp-", dir=self.dest.parent))
        self.size = size
        self.splits = {s: SplitWriter(self.tmp, s, shard_size) for s in SPLITS}
        self.sources: list[dict[str, Any]] = []
        self.columns: dict[str, dict[str, list[Any]]] = {
            s: {c: [] for c in COLUMNS} for s in SPLITS}

    def add_source(self, info: dict[str, Any]) -> int:
        self.sources.append(info)
        return len(self.sources) - 1

    def append(self, split: str, rgb: np.ndarray, source: int, frame: int, time: float,
               scene: int) -> None:
        shard, index = self.splits[split].append(rgb)
        cols = self.columns[split]
        for key, value in (("source", source), ("frame", frame), ("time", round(time, 4)),
                           ("scene", scene), ("shard", shard), ("index", index)):
            cols[key].append(value)

    def commit(self, extra: dict[str, Any]) -> Path:
        """Close shards, write the manifest, and rename the folder into place."""
        for w in self.splits.values():
            w.close()
        manifest = {
            "format": FORMAT, "version": VERSION, "size": self.size, "layout": "rgb8 NHWC",
            "aspect": "kept",
            "shard_size": self.splits["train"].shard_size,
            "sources": self.sources,
            "splits": {s: {"count": w.count, "shards": w.shards,
                           "shapes": [list(sh) for sh in w.shapes], "frames": self.columns[s]}
                       for s, w in self.splits.items()},
            **extra,
        }
        with atomic_path(self.tmp / "manifest.json") as tmp_manifest:
            tmp_manifest.write_text(json.dumps(manifest))
        # A folder cannot be replaced by a rename while it holds files: move the old one aside,
        # rename the new one into place, then delete the old.
        if self.dest.exists():
            old = self.dest.with_name(f".{self.dest.name}.old-{os.getpid()}")
            os.replace(self.dest, old)
            os.replace(self.tmp, self.dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(self.tmp, self.dest)
        return self.dest

    def abort(self) -> None:
        for w in self.splits.values():
            w.abort()
        shutil.rmtree(self.tmp, ignore_errors=True)


# ----------------------------------------------------------------------------- reading
def read_manifest(root: str | os.PathLike[str]) -> dict[str, Any]:
    """Load and check ``manifest.json``; every problem is a one-line :class:`DatasetError`."""
    root = Path(root)
    if not root.exists():
        raise DatasetError(f"dataset not found: {root} (build one with `restorer dataset build`)")
    path = root / "manifest.json"
    if not path.is_file():
        raise DatasetError(f"{root} is not a dataset: it has no manifest.json")
    try:
        m = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path} is corrupt ({exc}); rebuild the dataset") from exc
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise DatasetError(f"{path} is not a Restorer dataset manifest; rebuild the dataset")
    try:
        for s in SPLITS:
            split = m["splits"][s]
            if len(split["frames"]["shard"]) != split["count"]:
                raise DatasetError(f"{path} is corrupt: split {s!r} lists "
                                   f"{len(split['frames']['shard'])} frames, expected "
                                   f"{split['count']}; rebuild the dataset")
        int(m["size"])
    except (KeyError, TypeError) as exc:
        raise DatasetError(f"{path} is corrupt (missing {exc}); rebuild the dataset") from exc
    return m


class FrameStore:
    """Read-only, lazily memory-mapped view of one split: ``store[i]`` is an ``(H, W, 3)`` frame.

    Nothing is read until indexed; each shard is mapped on first use (after a DataLoader worker
    forks, so workers never share file handles).
    """

    def __init__(self, root: str | os.PathLike[str], split: str = "train") -> None:
        self.root = Path(root)
        self.manifest = read_manifest(self.root)
        if split not in SPLITS:
            raise DatasetError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
        self.split = split
        info = self.manifest["splits"][split]
        self.size = int(self.manifest["size"])
        self.shards: list[str] = list(info["shards"])
        # Version 1 datasets hold square frames only and list no shapes.
        self.shapes: list[tuple[int, int]] = [
            (int(h), int(w)) for h, w in info.get("shapes", [[self.size, self.size]] *
                                                  len(self.shards))]
        self.frames: dict[str, list[Any]] = info["frames"]
        self._shard_of = np.asarray(self.frames["shard"], np.int64)
        self._index_of = np.asarray(self.frames["index"], np.int64)
        self._maps: dict[int, np.ndarray] = {}
        for name in self.shards:
            if not (self.root / name).is_file():
                raise DatasetError(f"{self.root} is incomplete: shard {name} is missing; "
                                   "rebuild the dataset")

    def __len__(self) -> int:
        return len(self._shard_of)

    def shard(self, k: int) -> np.ndarray:
        mm = self._maps.get(k)
        if mm is None:
            try:
                mm = np.load(self.root / self.shards[k], mmap_mode="r")
            except (ValueError, OSError) as exc:
                raise DatasetError(f"shard {self.shards[k]} of {self.root} is corrupt ({exc}); "
                                   "rebuild the dataset") from exc
            want = (*self.shapes[k], 3)
            if mm.ndim != 4 or mm.shape[1:] != want:
                raise DatasetError(f"shard {self.shards[k]} has shape {mm.shape}, expected "
                                   f"(n, {', '.join(map(str, want))}); rebuild the dataset")
            self._maps[k] = mm
        return mm

    def __getitem__(self, i: int) -> np.ndarray:
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        return self.shard(int(self._shard_of[i]))[int(self._index_of[i])]

    def shape_of(self, i: int) -> tuple[int, int]:
        """``(H, W)`` of frame ``i``, without reading it."""
        return self.shapes[int(self._shard_of[i])]

    def frame_shapes(self) -> set[tuple[int, int]]:
        """Every frame shape in this split."""
        return {self.shapes[k] for k in set(self._shard_of.tolist())}

    def provenance(self, i: int) -> dict[str, Any]:
        rec = {c: self.frames[c][i] for c in COLUMNS}
        rec["source"] = self.manifest["sources"][rec["source"]]["path"]
        return rec

    def __getstate__(self) -> dict[str, Any]:
        # Pickled into DataLoader workers (spawn on macOS/Windows): drop open maps.
        state = self.__dict__.copy()
        state["_maps"] = {}
        return state

    def iter_frames(self, indices: Iterable[int]) -> Iterable[np.ndarray]:
        for i in indices:
            yield self[i]
