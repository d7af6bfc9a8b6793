"""Build a training dataset from colour episodes and folders of colour photos.

:func:`build_dataset` is a generator: it yields :class:`BuildProgress` as it goes and, last, one
with ``finished=True`` and the dataset's path. Stop iterating (or close it) to cancel: the temp
folder is removed and nothing partial is left at the destination.

What goes in, and why:

* **Sampling** ``every``: ``"auto"`` (the default) keeps every frame of short material and
  thins long material to about ``target_frames`` frames, never past the disk budget
  ``max_gb``; neighbouring frames of a show are near copies, so a season needs a far sparser
  sample than one take. ``"1"`` / ``"12f"`` every N frames and ``"1s"`` / ``"0.5s"`` one frame
  per interval of source time override it.
* **Whole frames, aspect kept**: a video's frames are stored at a short side of ``size`` (never
  upscaled), so the sides of a 4:3 or 16:9 frame are there to learn from. Photos are snapped to
  the nearest of a few aspect buckets (a crop of a few per cent at most) so that a folder of
  photos makes a handful of shard shapes rather than one per photo.
* **Dropped frames**: near-black (fades), flat (title cards, credits on plain grounds), nearly
  colourless (credits, b/w inserts: they would teach the model to answer grey), and duplicates
  of the last kept frame of the same scene. A duplicate is decided on the *largest local*
  change (8x8-pixel block means of the difference of 96-pixel grey thumbnails): a talking head
  whose mouth or eyes move changes a block by many grey levels and is kept, while encoder noise
  on a frozen frame averages out inside every block and is dropped.
* **Validation**: each video holds out ``val_fraction`` of its (non-excluded) time as contiguous
  blocks of at most ``segment_seconds``, spread evenly, and drops the frames within
  ``val_gap_seconds`` on either side of a block, so no validation frame has a near copy in the
  training split. Every k-th photo (k = round(1 / val_fraction)) is a validation photo. A build
  that would end with no validation frames is an error, unless ``val_fraction`` is 0.
* **Scenes**: a cut is where the 32-bin grey histogram of a 32x32 thumbnail jumps (L1 distance
  above ``cut_threshold``), found by :class:`restorer.scenes.CutDetector` with
  ``measure="histogram"``; scene ids are recorded with every frame's provenance.
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
from restorer.formats import IMAGE_EXTS
from restorer.media import FrameReader, probe
from restorer.scenes import CutDetector

AB_BIN = 10.0  # ab histogram bin width for class rebalancing (Zhang et al. use 10)
AB_RANGE = 110.0
# Long side / short side of the photo buckets: square, 5:4, 4:3, 3:2, 16:10, 16:9, 2:1, scope.
PHOTO_ASPECTS = (1.0, 1.25, 4 / 3, 1.5, 1.6, 16 / 9, 2.0, 2.39)
DUP_THUMB = 96   # short side of the thumbnails duplicates are decided on
DUP_BLOCK = 8    # block side (thumbnail pixels) of the local-change measure
THUMB = 32       # side of the square grey thumbnail frames are judged (and cut) on
CUT_BINS = 32    # grey histogram bins of the scene-cut measure


@dataclass
class BuildOptions:
    """Knobs of the dataset builder (CLI flags map one to one)."""

    size: int = 256                # stored short side (aspect kept; never upscaled for videos)
    every: str = "auto"
    target_frames: int = 12000     # what "auto" aims for over all videos together
    max_gb: float = 8.0            # disk budget of the stored frames ("auto" stays below it)
    val_fraction: float = 0.1
    val_gap_seconds: float = 1.0   # frames this close to a validation block are dropped
    exclude: dict[str, list[tuple[float, float | None]]] = field(default_factory=dict)
    black_level: float = 16.0      # mean grey below this: a fade or black frame
    min_std: float = 8.0           # grey std below this: a flat card
    min_chroma: float = 3.0        # mean Lab chroma below this: not a colour frame
    dup_threshold: float = 3.0     # largest 8x8-block mean grey change (0..255) of a duplicate
    cut_threshold: float = 0.5     # L1 distance of thumbnail histograms (0..2) at a scene cut
    segment_seconds: float = 10.0  # longest validation block


@dataclass
class BuildProgress:
    source: str
    done: int           # input frames (or photos) looked at, over all sources
    total: int
    kept: int
    skipped: dict[str, int]
    finished: bool = False
    path: Path | None = None
    notes: list[str] = field(default_factory=list)  # what was decided, for the user


def parse_every(text: str) -> tuple[str, float]:
    """``"12f"``/``"12"`` -> ``("frames", 12)``; ``"1s"``/``"0.5s"`` -> ``("seconds", 1.0)``;
    ``"auto"`` -> ``("auto", 0)``."""
    t = str(text).strip().lower()
    if t == "auto":
        return "auto", 0.0
    m = re.fullmatch(r"(\d+)f?", t)
    if m and int(m.group(1)) >= 1:
        return "frames", float(int(m.group(1)))
    m = re.fullmatch(r"(\d+(?:\.\d+)?)s", t)
    if m and float(m.group(1)) > 0:
        return "seconds", float(m.group(1))
    raise DatasetError(f"cannot read --every {text!r}; use auto, 1 (every frame), 12f (every "
                       "12th frame) or 1s / 0.5s (one frame per interval)")


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


def video_shape(width: int, height: int, size: int) -> tuple[int, int]:
    """``(w, h)`` a video's frames are stored at: short side ``size`` (never upscaled), aspect
    kept, both even."""
    s = min(1.0, size / min(width, height))
    return max(2, round(width * s / 2) * 2), max(2, round(height * s / 2) * 2)


def fit_photo(rgb: np.ndarray, size: int) -> np.ndarray:
    """Scale a photo's short side to ``size`` and centre-crop it to the nearest aspect bucket."""
    h, w = rgb.shape[:2]
    long_, short = max(h, w), min(h, w)
    aspect = min(PHOTO_ASPECTS, key=lambda a: abs(np.log(long_ / short / a)))
    tl, ts = round(size * aspect / 2) * 2, size
    th, tw = (tl, ts) if h > w else (ts, tl)
    s = max(th / h, tw / w)  # cover the bucket, then crop the overhang
    nh, nw = max(th, round(h * s)), max(tw, round(w * s))
    if (nh, nw) != (h, w):
        rgb = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else
                         cv2.INTER_CUBIC)
    y, x = (nh - th) // 2, (nw - tw) // 2
    return np.ascontiguousarray(rgb[y: y + th, x: x + tw])


def _thumb(rgb: np.ndarray) -> np.ndarray:
    """uint8 grey ``THUMB x THUMB`` thumbnail (aspect not kept: only its levels count)."""
    small = cv2.resize(rgb, (THUMB, THUMB), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)


def cut_detector(opts: BuildOptions) -> CutDetector:
    """The scene-cut detector the builder runs on :func:`_thumb` thumbnails.

    Any frame may be a cut (no adaptive threshold, no shortest shot): scenes only reset the
    duplicate test and label the provenance, so the cheap histogram measure is enough.
    ``cut_threshold`` is an L1 distance (0..2); the detector's histogram measure is half that.
    """
    return CutDetector(threshold=opts.cut_threshold / 2, k=0.0, min_shot=1,
                       measure="histogram", thumb_width=THUMB, bins=CUT_BINS)


def change_thumb(rgb: np.ndarray) -> np.ndarray:
    """Grey thumbnail, short side :data:`DUP_THUMB`, both sides multiples of the block."""
    h, w = rgb.shape[:2]
    s = DUP_THUMB / min(h, w)
    tw = max(DUP_BLOCK, round(w * s / DUP_BLOCK) * DUP_BLOCK)
    th = max(DUP_BLOCK, round(h * s / DUP_BLOCK) * DUP_BLOCK)
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, (tw, th), interpolation=cv2.INTER_AREA).astype(np.float32)


def local_change(a: np.ndarray, b: np.ndarray) -> float:
    """Largest mean absolute grey change over the 8x8 blocks of two change thumbnails."""
    if a.shape != b.shape:
        return float("inf")
    h, w = a.shape
    d = cv2.absdiff(a, b)
    blocks = cv2.resize(d, (w // DUP_BLOCK, h // DUP_BLOCK), interpolation=cv2.INTER_AREA)
    return float(blocks.max())


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


Intervals = list[tuple[float, float]]


def _allowed(duration: float, exclude: list[tuple[float, float | None]]) -> Intervals:
    """``[0, duration)`` less the excluded ranges, as sorted disjoint intervals."""
    out: Intervals = [(0.0, duration)]
    for a, e in exclude:
        e = duration if e is None else e
        out = [piece for s, t in out for piece in ((s, min(t, a)), (max(s, e), t))
               if piece[1] - piece[0] > 1e-9]
    return out


def val_blocks(duration: float, exclude: list[tuple[float, float | None]], fraction: float,
               longest: float) -> Intervals:
    """Validation time blocks: ``fraction`` of the allowed time, in evenly spread blocks of at
    most ``longest`` seconds (at least one block when ``fraction > 0``)."""
    allowed = _allowed(duration, exclude)
    total = sum(t - s for s, t in allowed)
    if fraction <= 0 or total <= 0:
        return []
    want = total * fraction
    n = max(1, int(np.ceil(want / longest - 1e-9)))
    length = want / n
    blocks: Intervals = []
    for i in range(n):
        # Block centres at (i + 1/2) / n of the allowed time, mapped back to source time.
        centre = (i + 0.5) * total / n
        lo, hi = centre - length / 2, centre + length / 2
        acc = 0.0
        for s, t in allowed:
            seg = t - s
            a, b = max(lo, acc), min(hi, acc + seg)
            if b > a:
                blocks.append((s + a - acc, s + b - acc))
            acc += seg
    return blocks


def plan_every(videos: Sequence[Any], opts: BuildOptions) -> tuple[int, str]:
    """For ``every="auto"``: keep every k-th frame; returns ``(k, the reason in one line)``."""
    frames = sum(v.frame_count for v in videos)
    if frames == 0:
        return 1, "no video inputs"
    per_frame = np.mean([np.prod(video_shape(v.width, v.height, opts.size)) * 3
                         for v in videos])
    budget = max(1, int(opts.max_gb * 1e9 / per_frame))
    target = max(1, min(opts.target_frames, budget))
    k = max(1, int(np.ceil(frames / target)))
    kept = int(np.ceil(frames / k))
    which = "every frame" if k == 1 else f"every {k}{'nd' if k == 2 else 'th'} frame"
    hours = sum(v.frame_count / float(v.fps) for v in videos) / 3600
    return k, (f"sampling {which} of {frames:,} video frames ({hours * 60:.1f} min): about "
               f"{kept:,} frames, at most {kept * per_frame / 1e9:.2f} GB on disk before "
               f"dropping duplicates (budget {opts.max_gb:g} GB, aim {opts.target_frames:,} "
               "frames; override with --every)")


class _Builder:
    def __init__(self, writer: DatasetWriter, opts: BuildOptions) -> None:
        self.w, self.o = writer, opts
        self.k = max(2, round(1.0 / opts.val_fraction)) if opts.val_fraction > 0 else 0
        self.photos = 0
        self.units = 0
        self.scenes = 0
        self.kept = 0
        self.skipped = {"black": 0, "flat": 0, "grey": 0, "duplicate": 0, "excluded": 0,
                        "val_gap": 0}
        self.stats = _Stats()

    def new_unit(self) -> int:
        """A new scene or photo: its dataset-wide scene id."""
        self.units += 1
        return self.units - 1

    def photo_split(self, last: bool) -> str:
        """Every k-th photo validates; with no other validation, the last photo does."""
        i = self.photos
        self.photos += 1
        if self.k and (i % self.k == self.k - 1 or
                       (last and self.w.splits["val"].count == 0 and i > 0)):
            return "val"
        return "train"

    def reject(self, rgb: np.ndarray, thumb: np.ndarray) -> str | None:
        grey = thumb.astype(np.float32)
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

    The first event's ``notes`` say what was decided (sampling, disk estimate); the last one's
    say what was dropped and why. Raises :class:`DatasetError` (bad inputs, or nothing usable
    found) and :class:`restorer.errors.MediaError` (a video that cannot be decoded).
    """
    opts = opts or BuildOptions()
    if opts.size < 16:
        raise DatasetError(f"--size must be at least 16 pixels; got {opts.size}")
    if not 0.0 <= opts.val_fraction < 1.0:
        raise DatasetError(f"validation fraction must be in [0, 1); got {opts.val_fraction}")
    if opts.max_gb <= 0:
        raise DatasetError(f"--max-gb must be positive; got {opts.max_gb}")
    if not 0.0 < opts.cut_threshold <= 2.0:
        raise DatasetError(f"cut threshold must be within 0..2 (an L1 histogram distance); "
                           f"got {opts.cut_threshold}")
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
    notes: list[str] = []
    if mode == "auto":
        k, why = plan_every(list(infos.values()), opts)
        mode, step = "frames", float(k)
        if infos:
            notes.append(why)

    writer = DatasetWriter(dest, opts.size, overwrite=overwrite)
    b = _Builder(writer, opts)
    done = 0
    committed = False
    n_photos = sum(kind == "photo" for kind, _ in items)
    try:
        yield BuildProgress("", 0, total, 0, dict(b.skipped), notes=list(notes))
        photos_seen = 0
        for kind, p in items:
            if kind == "photo":
                photos_seen += 1
                _add_photo(b, p, last=photos_seen == n_photos)
                done += 1
                if done % 16 == 0:
                    yield BuildProgress(p.name, done, total, b.kept, dict(b.skipped))
                continue
            info = infos[p]
            excl = opts.exclude.get(_key(p), [])
            blocks = val_blocks(info.frame_count / float(info.fps), excl, opts.val_fraction,
                                opts.segment_seconds)
            src = writer.add_source({"path": str(p), "kind": "video", "name": p.name,
                                     "frames": info.frame_count, "fps": str(info.fps),
                                     "width": info.width, "height": info.height,
                                     "exclude": excl, "val_blocks": [list(v) for v in blocks]})
            for done_here in _add_video(b, info, src, mode, step, excl, blocks):
                yield BuildProgress(p.name, done + done_here, total, b.kept, dict(b.skipped))
            done += info.frame_count
        if b.kept == 0:
            raise DatasetError("no usable frames: every sampled frame was black, flat, grey or "
                               f"a duplicate ({b.skipped}); check the inputs are in colour")
        if writer.splits["train"].count == 0:
            raise DatasetError("every kept frame went to validation; add inputs or lower "
                               "--val-fraction")
        if opts.val_fraction > 0 and writer.splits["val"].count == 0:
            raise DatasetError("no validation frames could be held out (one photo, or every "
                               "held-out frame was dropped); add inputs, or pass "
                               "--val-fraction 0 to train without validation")
        end_notes = [_drop_note(b.skipped, opts)] if any(b.skipped.values()) else []
        path = writer.commit({
            "options": {**{k: v for k, v in vars(opts).items() if k != "exclude"},
                        "exclude": {k: v for k, v in opts.exclude.items()},
                        "sampled_every": f"{int(step)}f" if mode == "frames" else f"{step}s"},
            "skipped": b.skipped, "scenes": b.scenes, "units": b.units,
            "stats": b.stats.to_json(),
        })
        committed = True
        yield BuildProgress("", total, total, b.kept, dict(b.skipped), finished=True, path=path,
                            notes=end_notes)
    finally:
        if not committed:
            writer.abort()


def _drop_note(skipped: dict[str, int], opts: BuildOptions) -> str:
    why = {"black": "black or fading", "flat": "flat (title cards)",
           "grey": "colourless (credits, b/w inserts)",
           "duplicate": f"duplicates (no 8x8 block changed by {opts.dup_threshold:g} grey "
                        "levels since the last kept frame)",
           "excluded": "in --exclude ranges",
           "val_gap": f"within {opts.val_gap_seconds:g} s of a validation block"}
    parts = [f"{n:,} {why[k]}" for k, n in skipped.items() if n]
    return "dropped " + "; ".join(parts)


def _add_photo(b: _Builder, p: Path, last: bool) -> None:
    bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
    if bgr is None:
        raise DatasetError(f"cannot read image {p} (corrupt or unsupported format)")
    rgb = fit_photo(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), b.o.size)
    grey = _thumb(rgb)
    why = b.reject(rgb, grey)
    if why:
        b.skipped[why] += 1
        return
    src = b.w.add_source({"path": str(p), "kind": "photo", "name": p.name})
    scene = b.new_unit()
    b.scenes += 1
    b.keep(b.photo_split(last), rgb, src, 0, 0.0, scene)


def _add_video(b: _Builder, info: Any, src: int, mode: str, step: float,
               exclude: list[tuple[float, float | None]], blocks: Intervals) -> Iterator[int]:
    """Decode every frame (scene cuts need neighbours) and keep the sampled, useful ones.

    Yields the number of this video's frames looked at, every 50 frames.
    """
    o = b.o
    gap = min(o.val_gap_seconds, max((e - a for a, e in blocks), default=0.0))
    next_t = 0.0
    cuts = cut_detector(o)
    last_kept: np.ndarray | None = None
    last_split = prev_split = ""
    block_first = 0
    scene = -1
    n_seen = 0
    fps = float(info.fps)
    reader = FrameReader(info, 0, info.frame_count, mode="rgb",
                         size=video_shape(info.width, info.height, o.size))
    with reader:
        for n, frame in reader:
            n_seen += 1
            if n_seen % 50 == 0:
                yield n_seen
            t = n / fps
            thumb = _thumb(frame)
            if cuts.update(thumb) or scene < 0:  # the first frame starts the first scene
                scene = b.new_unit()
                b.scenes += 1
                last_kept = None
            split = "val" if any(a <= t < e for a, e in blocks) else "train"
            if split == "val" and split != prev_split:
                # Sampling restarts at each block, so a block shorter than the interval still
                # gives a validation frame.
                block_first, next_t = n, t
            prev_split = split
            if mode == "frames":
                sampled = (n - (block_first if split == "val" else 0)) % int(step) == 0
            else:
                sampled = t + 1e-6 >= next_t
                if sampled:  # the first frame at or after each multiple of the interval
                    next_t = (np.floor((t + 1e-6) / step) + 1) * step
            if not sampled:
                continue
            if any(a <= t and (e is None or t < e) for a, e in exclude):
                b.skipped["excluded"] += 1
                continue
            if split == "train" and any(a - gap <= t < e + gap for a, e in blocks):
                b.skipped["val_gap"] += 1
                continue
            why = b.reject(frame, thumb)
            change = change_thumb(frame) if why is None else None
            if change is not None and last_kept is not None and split == last_split and \
                    local_change(change, last_kept) < o.dup_threshold:
                why = "duplicate"
            if why:
                b.skipped[why] += 1
                continue
            last_kept, last_split = change, split
            b.keep(split, np.ascontiguousarray(frame), src, n, t, scene)
    if reader.shortfall and n_seen == 0:
        raise MediaError(f"{info.path.name}: no frames could be decoded ({reader.errors})")


def grey_of(rgb: np.ndarray) -> np.ndarray:
    """The uint8 grey frame a b/w source would hold for this colour frame (same L)."""
    return rgb8_to_grey(rgb)
