"""Build a training dataset from colour episodes and folders of colour photos.

:func:`build_dataset` is a generator: it yields :class:`BuildProgress` as it goes and, last, one
with ``done=True`` and the dataset's path. Stop iterating (or close it) to cancel: the temp folder
is removed and nothing partial is left at the destination.

What goes in, and why:

* **Sampling** ``every``: ``"1"`` / ``"12f"`` every N frames, ``"1s"`` / ``"0.5s"`` one frame per
  interval of source time. Neighbouring frames are near copies, so sparse sampling of many
  episodes beats dense sampling of one.
* **Dropped frames**: near-black (fades), flat (title cards, credits on plain grounds), nearly
  colourless (credits, b/w inserts: they would teach the model to answer grey), and near
  duplicates of the last kept frame of the same scene (static shots).
* **Scenes**: a cut is where the 32-bin grey histogram of a 32x32 thumbnail jumps (L1 distance
  above ``cut_threshold``); long shots are split into ``segment_seconds`` segments. Each
  (source, scene segment) is one split *unit*, and every k-th unit (k = round(1 / val_fraction))
  goes to validation, so neighbouring frames never straddle the split and every source with k or
  more units contributes to validation. A photo is a unit of its own.
* **Excluded time ranges** (``exclude={path: [(start_s, end_s or None)]}``): e.g. a held-out
  evaluation segment or a demo clip; on the CLI ``--exclude clip.mp4:8-14`` or
  ``--exclude episode.mp4:1200-`` (to the end).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from restorer.color import rgb8_to_grey, rgb8_to_lab
from restorer.data.store import DatasetWriter
from restorer.errors import DatasetError, MediaError
from restorer.media import FrameReader, probe

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
AB_BIN = 10.0  # ab histogram bin width for class rebalancing (Zhang et al. use 10)
AB_RANGE = 110.0


@dataclass
class BuildOptions:
    """Knobs of the dataset builder (CLI flags map one to one)."""

    size: int = 256
    every: str = "1s"
    val_fraction: float = 0.1
    exclude: dict[str, list[tuple[float, float | None]]] = field(default_factory=dict)
    black_level: float = 16.0      # mean grey below this: a fade or black frame
    min_std: float = 8.0           # grey std below this: a flat card
    min_chroma: float = 3.0        # mean Lab chroma below this: not a colour frame
    dup_threshold: float = 2.0     # mean abs grey difference (0..255) of 32x32 thumbnails
    cut_threshold: float = 0.5     # L1 distance of thumbnail histograms (0..2) at a scene cut
    segment_seconds: float = 10.0  # long shots are split into units of this length


@dataclass
class BuildProgress:
    source: str
    done: int           # input frames (or photos) looked at, over all sources
    total: int
    kept: int
    skipped: dict[str, int]
    finished: bool = False
    path: Path | None = None


def parse_every(text: str) -> tuple[str, float]:
    """``"12f"``/``"12"`` -> ``("frames", 12)``; ``"1s"``/``"0.5s"`` -> ``("seconds", 1.0)``."""
    t = str(text).strip().lower()
    m = re.fullmatch(r"(\d+)f?", t)
    if m and int(m.group(1)) >= 1:
        return "frames", float(int(m.group(1)))
    m = re.fullmatch(r"(\d+(?:\.\d+)?)s", t)
    if m and float(m.group(1)) > 0:
        return "seconds", float(m.group(1))
    raise DatasetError(f"cannot read --every {text!r}; use 1 (every frame), 12f (every 12th "
                       "frame) or 1s / 0.5s (one frame per interval)")


def parse_exclude(specs: Sequence[str]) -> dict[str, list[tuple[float, float | None]]]:
    """``["clip.mp4:8-14", "ep.mkv:1200-"]`` -> ``{resolved path: [(8, 14)], ...}``."""
    out: dict[str, list[tuple[float, float | None]]] = {}
    for spec in specs:
        path, sep, rng = spec.rpartition(":")
        m = re.fullmatch(r"(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)?", rng.strip())
        if not sep or not path or not m:
            raise DatasetError(f"cannot read --exclude {spec!r}; use PATH:START-END or "
                               "PATH:START- in seconds, e.g. clip.mp4:8-14")
        start, end = float(m.group(1)), float(m.group(2)) if m.group(2) else None
        if end is not None and end <= start:
            raise DatasetError(f"--exclude {spec!r}: the end must be after the start")
        out.setdefault(_key(path), []).append((start, end))
    return out


def _key(path: str | os.PathLike[str]) -> str:
    return str(Path(path).expanduser().resolve())


def expand_inputs(inputs: Sequence[str | os.PathLike[str]]) -> list[tuple[str, Path]]:
    """Videos and images as ``(kind, path)``; folders give their images (sorted)."""
    out: list[tuple[str, Path]] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            imgs = sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_EXTS)
            if not imgs:
                raise DatasetError(f"folder {p} holds no images (jpg/png/...)")
            out += [("photo", q) for q in imgs]
        elif p.is_file():
            out.append(("photo" if p.suffix.lower() in IMAGE_EXTS else "video", p))
        else:
            raise DatasetError(f"input not found: {p}")
    if not out:
        raise DatasetError("no inputs given; pass colour videos and/or folders of colour photos")
    return out


def square(rgb: np.ndarray, size: int) -> np.ndarray:
    """Scale the short side to ``size`` (area filter) and centre-crop to ``size x size``."""
    h, w = rgb.shape[:2]
    s = size / min(h, w)
    if s != 1.0:
        nw, nh = max(size, round(w * s)), max(size, round(h * s))
        rgb = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else
                         cv2.INTER_CUBIC)
        h, w = nh, nw
    y, x = (h - size) // 2, (w - size) // 2
    return np.ascontiguousarray(rgb[y: y + size, x: x + size])


def _thumb(rgb: np.ndarray) -> np.ndarray:
    small = cv2.resize(rgb, (32, 32), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32)


def _hist(thumb: np.ndarray) -> np.ndarray:
    h = np.histogram(thumb, bins=32, range=(0, 256))[0].astype(np.float32)
    return h / h.sum()


class _Stats:
    """Training-split ab statistics: mean ab (the constant-cast baseline) and the ab histogram
    (class rebalancing), from every 4th pixel of every kept training frame."""

    def __init__(self) -> None:
        n = int(round(2 * AB_RANGE / AB_BIN))
        self.hist = np.zeros((n, n), np.float64)
        self.sum = np.zeros(2, np.float64)
        self.count = 0

    def add(self, lab: np.ndarray) -> None:
        ab = lab[::4, ::4, 1:].reshape(-1, 2).astype(np.float64)
        self.sum += ab.sum(0)
        self.count += len(ab)
        idx = np.clip(((ab + AB_RANGE) / AB_BIN).astype(np.int64), 0, self.hist.shape[0] - 1)
        np.add.at(self.hist, (idx[:, 0], idx[:, 1]), 1.0)

    def to_json(self) -> dict[str, Any]:
        mean = (self.sum / max(1, self.count)).round(3).tolist()
        return {"mean_ab": mean, "ab_hist": self.hist.astype(np.int64).tolist(),
                "ab_bin": AB_BIN, "ab_range": AB_RANGE, "pixels": self.count}


class _Builder:
    def __init__(self, writer: DatasetWriter, opts: BuildOptions) -> None:
        self.w, self.o = writer, opts
        self.k = max(2, round(1.0 / opts.val_fraction)) if opts.val_fraction > 0 else 0
        self.units = 0
        self.scenes = 0
        self.kept = 0
        self.skipped = {"black": 0, "flat": 0, "grey": 0, "duplicate": 0, "excluded": 0}
        self.stats = _Stats()

    def new_unit(self) -> tuple[int, str]:
        """A new scene segment or photo: its dataset-wide scene id and split."""
        u = self.units
        self.units += 1
        split = "val" if self.k and u % self.k == self.k - 1 else "train"
        return u, split

    def reject(self, rgb: np.ndarray, grey: np.ndarray) -> str | None:
        if grey.mean() < self.o.black_level:
            return "black"
        if grey.std() < self.o.min_std:
            return "flat"
        lab = rgb8_to_lab(rgb[::2, ::2])
        if float(np.hypot(lab[..., 1], lab[..., 2]).mean()) < self.o.min_chroma:
            return "grey"
        return None

    def keep(self, split: str, rgb: np.ndarray, source: int, frame: int, t: float,
             scene: int) -> None:
        self.w.append(split, rgb, source, frame, t, scene)
        if split == "train":
            self.stats.add(rgb8_to_lab(rgb))
        self.kept += 1


def build_dataset(inputs: Sequence[str | os.PathLike[str]], dest: str | os.PathLike[str],
                  opts: BuildOptions | None = None, overwrite: bool = False
                  ) -> Iterator[BuildProgress]:
    """Build ``dest`` from colour videos, images and image folders; yields progress.

    Raises :class:`DatasetError` (bad inputs, or nothing usable found) and
    :class:`restorer.errors.MediaError` (a video that cannot be decoded).
    """
    opts = opts or BuildOptions()
    if opts.size < 16:
        raise DatasetError(f"--size must be at least 16 pixels; got {opts.size}")
    if not 0.0 <= opts.val_fraction < 1.0:
        raise DatasetError(f"validation fraction must be in [0, 1); got {opts.val_fraction}")
    mode, step = parse_every(opts.every)
    items = expand_inputs(inputs)
    infos: dict[Path, Any] = {}
    total = 0
    for kind, p in items:
        if kind == "video":
            infos[p] = probe(p)
            total += infos[p].frame_count
        else:
            total += 1
    unknown = set(opts.exclude) - {_key(p) for _, p in items}
    if unknown:
        raise DatasetError(f"--exclude names a file that is not an input: {sorted(unknown)[0]}")

    writer = DatasetWriter(dest, opts.size, overwrite=overwrite)
    b = _Builder(writer, opts)
    done = 0
    committed = False
    try:
        for kind, p in items:
            if kind == "photo":
                _add_photo(b, p)
                done += 1
                if done % 16 == 0:
                    yield BuildProgress(p.name, done, total, b.kept, dict(b.skipped))
                continue
            info = infos[p]
            src = writer.add_source({"path": str(p), "kind": "video", "name": p.name,
                                     "frames": info.frame_count, "fps": str(info.fps),
                                     "width": info.width, "height": info.height,
                                     "exclude": opts.exclude.get(_key(p), [])})
            for done_here in _add_video(b, info, src, mode, step, opts.exclude.get(_key(p), [])):
                yield BuildProgress(p.name, done + done_here, total, b.kept, dict(b.skipped))
            done += info.frame_count
        if b.kept == 0:
            raise DatasetError("no usable frames: every sampled frame was black, flat, grey or "
                               f"a duplicate ({b.skipped}); check the inputs are in colour")
        if writer.splits["train"].count == 0:
            raise DatasetError("every kept frame went to validation; add inputs or lower "
                               "--val-fraction")
        path = writer.commit({
            "options": {**{k: v for k, v in vars(opts).items() if k != "exclude"},
                        "exclude": {k: v for k, v in opts.exclude.items()}},
            "skipped": b.skipped, "scenes": b.scenes, "units": b.units,
            "stats": b.stats.to_json(),
        })
        committed = True
        yield BuildProgress("", total, total, b.kept, dict(b.skipped), finished=True, path=path)
    finally:
        if not committed:
            writer.abort()


def _add_photo(b: _Builder, p: Path) -> None:
    bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
    if bgr is None:
        raise DatasetError(f"cannot read image {p} (corrupt or unsupported format)")
    rgb = square(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), b.o.size)
    grey = _thumb(rgb)
    why = b.reject(rgb, grey)
    if why:
        b.skipped[why] += 1
        return
    src = b.w.add_source({"path": str(p), "kind": "photo", "name": p.name})
    scene, split = b.new_unit()
    b.scenes += 1
    b.keep(split, rgb, src, 0, 0.0, scene)


def _add_video(b: _Builder, info: Any, src: int, mode: str, step: float,
               exclude: list[tuple[float, float | None]]) -> Iterator[int]:
    """Decode every frame (scene cuts need neighbours) and keep the sampled, useful ones.

    Yields the number of this video's frames looked at, every 50 frames.
    """
    o = b.o
    s = o.size / min(info.width, info.height)
    # ffmpeg scales while decoding (much less to pipe); sizes rounded to even numbers.
    dec = (max(o.size, round(info.width * s / 2) * 2), max(o.size, round(info.height * s / 2) * 2))
    next_t = 0.0
    prev_hist: np.ndarray | None = None
    last_thumb: np.ndarray | None = None
    scene, split, scene_start = -1, "train", 0.0
    n_seen = 0
    fps = float(info.fps)
    reader = FrameReader(info, 0, info.frame_count, mode="rgb", size=dec)
    with reader:
        for n, frame in reader:
            n_seen += 1
            if n_seen % 50 == 0:
                yield n_seen
            t = n / fps
            thumb = _thumb(frame)
            hist = _hist(thumb)
            cut = prev_hist is None or float(np.abs(hist - prev_hist).sum()) > o.cut_threshold
            prev_hist = hist
            if cut or t - scene_start >= o.segment_seconds:
                scene, split = b.new_unit()
                scene_start = t
                last_thumb = None
                if cut:
                    b.scenes += 1
            if mode == "frames":
                sampled = n % int(step) == 0
            else:
                sampled = t + 1e-6 >= next_t
                if sampled:  # the first frame at or after each multiple of the interval
                    next_t = (np.floor((t + 1e-6) / step) + 1) * step
            if not sampled:
                continue
            if any(a <= t and (e is None or t < e) for a, e in exclude):
                b.skipped["excluded"] += 1
                continue
            rgb = square(frame, o.size)
            why = b.reject(rgb, thumb)
            if why is None and last_thumb is not None and \
                    float(np.abs(thumb - last_thumb).mean()) < o.dup_threshold:
                why = "duplicate"
            if why:
                b.skipped[why] += 1
                continue
            last_thumb = thumb
            b.keep(split, rgb, src, n, t, scene)
    if reader.shortfall and n_seen == 0:
        raise MediaError(f"{info.path.name}: no frames could be decoded ({reader.errors})")


def grey_of(rgb: np.ndarray) -> np.ndarray:
    """The uint8 grey frame a b/w source would hold for this colour frame (same L)."""
    return rgb8_to_grey(rgb)
