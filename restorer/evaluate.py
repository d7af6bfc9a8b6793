"""``restorer evaluate MODEL CLIP``: score a model on held-out colour footage or photos.

The colour clip is turned into the black-and-white frames a b/w master would hold (the grey level
whose CIELAB L equals the frame's L, so the lightness is exactly the ground truth's), colourised,
and compared with the original colour. Two baselines put the figures in context:

* **grey**: ``a = b = 0`` -- what "no colour at all" scores;
* **mean-ab cast**: every pixel gets the training set's mean ab (from the model file's
  ``training["mean_ab"]``) -- what a model that learned only the average tint would score.
  A sepia/brown-biased model drifts towards this row.

Long clips stream through in chunks: per-frame figures are averaged, and CDC is computed from
per-frame histograms, so memory does not grow with the clip.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from restorer.color import GREY_TO_L, merge_L_ab, rgb8_to_grey, rgb8_to_lab
from restorer.errors import DatasetError, MediaError, RestorerError
from restorer.formats import IMAGE_EXTS
from restorer.look import Look
from restorer.metrics import (
    cdc_from_histograms,
    colourfulness,
    delta_e2000_split,
    histograms,
    psnr,
)
from restorer.positions import parse_position, to_frame
from restorer.temporal import warp_error

ROWS = ("model", "grey", "mean_ab")
ROW_TITLES = {"model": "model", "grey": "grey (a=b=0)", "mean_ab": "mean-ab cast",
              "truth": "ground truth"}
WARP_MAX_FRAMES = 300  # warp error needs whole sequences in memory; cap it
METRIC_SIZE = 360  # short side the figures are computed at (CIEDE2000 is slow at 1080p)


def _shrink(im: np.ndarray, short: int | None) -> np.ndarray:
    h, w = im.shape[:2]
    if not short or min(h, w) <= short:
        return im
    s = short / min(h, w)
    return cv2.resize(im, (max(1, round(w * s)), max(1, round(h * s))),
                      interpolation=cv2.INTER_AREA)


class _Acc:
    """Accumulates one row's per-frame figures and histograms."""

    def __init__(self) -> None:
        self.psnr: list[float] = []
        self.de: list[float] = []
        self.dec: list[float] = []
        self.cf: list[float] = []
        self.hists: list[np.ndarray] = []

    def add(self, pred: np.ndarray, truth: np.ndarray | None) -> None:
        if truth is not None:
            self.psnr.append(psnr(pred, truth))
            d, c = delta_e2000_split(pred, truth)
            self.de.append(d)
            if c is not None:
                self.dec.append(c)
        self.cf.append(colourfulness(pred))
        self.hists.append(histograms(pred))

    def result(self, truth: _Acc | None, video: bool) -> dict[str, float | None]:
        finite = [p for p in self.psnr if np.isfinite(p)]
        cf = float(np.mean(self.cf))
        out: dict[str, float | None] = {
            "psnr": float(np.mean(finite)) if finite else (float("inf") if self.psnr else None),
            "delta_e2000": float(np.mean(self.de)) if self.de else None,
            "delta_e2000_coloured": float(np.mean(self.dec)) if self.dec else None,
            "colourfulness": cf,
        }
        if truth is not None:
            t = float(np.mean(truth.cf))
            out["colourfulness_ratio"] = cf / t if t > 0 else None
        out["cdc"] = cdc_from_histograms(self.hists) if video and len(self.hists) > 1 else None
        return out


def _ab(rgb: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(rgb8_to_lab(rgb)[..., 1:])


def _video_frames(path: Path, start: str | None, end: str | None, last: float | None,
                  stride: int, max_frames: int | None
                  ) -> tuple[dict[str, Any], Iterator[np.ndarray]]:
    from restorer.media import FrameReader, probe

    info = probe(path)
    fps = float(info.fps)
    if last is not None:
        if start is not None or end is not None:
            raise RestorerError("use either --last or --start/--end, not both")
        first = max(0, info.frame_count - int(round(last * fps)))
        stop = info.frame_count
    else:
        first = to_frame(parse_position(start), fps) or 0
        stop = to_frame(parse_position(end), fps) or info.frame_count
    stop = min(stop, info.frame_count)
    if not 0 <= first < stop:
        raise RestorerError(f"empty frame range {first}..{stop} in {path.name} "
                            f"({info.frame_count} frames)")
    picked = range(first, stop, stride)
    if max_frames:
        picked = picked[:max_frames]
    desc = {"source": str(path), "kind": "video", "first": first, "end": picked[-1] + 1,
            "stride": stride, "frames": len(picked), "fps": fps}

    def gen() -> Iterator[np.ndarray]:
        with FrameReader(info, picked[0], picked[-1] + 1, mode="rgb") as reader:
            for n, f in reader:
                if (n - picked[0]) % stride == 0:
                    yield f.copy()

    return desc, gen()


def _photo_frames(folder: Path, max_frames: int | None
                  ) -> tuple[dict[str, Any], Iterator[np.ndarray]]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS)
    if max_frames:
        files = files[:max_frames]
    if not files:
        raise DatasetError(f"folder {folder} holds no images to evaluate on")

    def gen() -> Iterator[np.ndarray]:
        for p in files:
            bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
            if bgr is None:
                raise DatasetError(f"cannot read image {p}")
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    return {"source": str(folder), "kind": "photos", "frames": len(files),
            "files": [p.name for p in files]}, gen()


def evaluate_model(model: Any, source: str | Path, *, start: str | None = None,
                   end: str | None = None, last: float | None = None, size: int | None = None,
                   max_frames: int | None = None, stride: int = 1, device: str = "auto",
                   batch: int = 8, chunk: int = 32, metric_size: int | None = METRIC_SIZE,
                   on_progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Colourise the grey version of ``source`` and score it against the colour original.

    ``model`` is a model file path or a :class:`restorer.engine.Colouriser`; ``source`` a colour
    video or a folder of colour images. Returns ``{"source": ..., "rows": {"model", "grey",
    "mean_ab" (or None)}, "truth": {...}, "notes": [...], "infer_ms": ...}``.

    Colourisation runs at full resolution; the figures are computed on frames scaled down (area
    filter, prediction and truth alike) to a short side of ``metric_size`` (None: full size).
    Chroma is smooth, so this changes them little, and it makes 1080p evaluation ~15x faster.
    """
    from restorer.engine import Colouriser

    if stride < 1:
        raise RestorerError("--stride must be at least 1")
    look = Look(working_size=size or None)  # 0 (or None): the model's own
    col = model if isinstance(model, Colouriser) else Colouriser.load(
        model, device=device, batch_size=batch)
    source = Path(source)
    if not source.exists():
        raise MediaError(f"file not found: {source}")
    if source.is_dir():
        desc, frames = _photo_frames(source, max_frames)
    else:
        desc, frames = _video_frames(source, start, end, last, stride, max_frames)
    video = desc["kind"] == "video"
    notes: list[str] = []
    mean_ab = col.meta.training.get("mean_ab") if isinstance(col.meta.training, dict) else None
    if mean_ab is None:
        notes.append("the model file records no training mean ab: mean-ab baseline skipped")
    accs = {r: _Acc() for r in ROWS if r != "mean_ab" or mean_ab is not None}
    truth = _Acc()
    keep_for_warp = video
    greys_w: list[np.ndarray] = []
    preds_w: list[np.ndarray] = []
    truths_w: list[np.ndarray] = []
    infer_ms: list[float] = []
    done = 0

    def flush(buf: list[np.ndarray]) -> None:
        nonlocal done
        greys = [rgb8_to_grey(f) for f in buf]
        preds = ([c.rgb for c in col.colourise_frames(greys, look)] if video
                 else [col.colourise_frames([g], look)[0].rgb for g in greys])
        infer_ms.append(col.last_infer_ms)
        for f, g, p in zip(buf, greys, preds, strict=True):
            L = GREY_TO_L[g]
            grey_row = merge_L_ab(L, np.zeros((*L.shape, 2), np.float32))
            f, g, p, grey_row = (_shrink(im, metric_size) for im in (f, g, p, grey_row))
            truth.add(f, None)
            accs["model"].add(p, f)
            accs["grey"].add(grey_row, f)
            if "mean_ab" in accs:
                cast = np.broadcast_to(np.asarray(mean_ab, np.float32), (*L.shape, 2))
                cast_row = merge_L_ab(L, np.ascontiguousarray(cast))
                accs["mean_ab"].add(_shrink(cast_row, metric_size), f)
            if keep_for_warp and len(greys_w) < WARP_MAX_FRAMES:
                greys_w.append(g)
                preds_w.append(p)
                truths_w.append(f)
        done += len(buf)
        if on_progress is not None:
            on_progress(done, desc["frames"])

    buf: list[np.ndarray] = []
    for f in frames:
        buf.append(f)
        if len(buf) >= chunk:
            flush(buf)
            buf = []
    if buf:
        flush(buf)
    if done == 0:
        raise MediaError(f"no frames could be read from {source}")

    t = truth.result(None, video)
    truth_row = {"colourfulness": t["colourfulness"], "cdc": t["cdc"]}
    rows: dict[str, Any] = {r: accs[r].result(truth, video) if r in accs else None for r in ROWS}
    for row in rows.values():
        if row is not None and row["cdc"] is not None and truth_row["cdc"]:
            row["cdc_ratio"] = row["cdc"] / truth_row["cdc"]
    if keep_for_warp and len(greys_w) > 1:
        try:
            # warp_error takes ab frames: take them from the RGB results.
            rows["model"]["warp_error"] = float(warp_error(greys_w, [_ab(p) for p in preds_w]))
            truth_row["warp_error"] = float(warp_error(greys_w, [_ab(t) for t in truths_w]))
        except Exception as exc:  # noqa: BLE001 - an optional figure must not sink the report
            notes.append(f"warp error unavailable ({exc})")
    if not video:
        notes.append("photos: no CDC (no time axis)")
    grey_de = rows["grey"]["delta_e2000"]
    if grey_de:
        rows["model"]["delta_e_vs_grey"] = 1.0 - rows["model"]["delta_e2000"] / grey_de
    return {**desc, "model": col.meta.name if isinstance(model, Colouriser) else str(model),
            "working_size": look.size_for(col.meta), "metric_size": metric_size, "rows": rows,
            "truth": truth_row,
            "infer_ms": float(np.mean(infer_ms)) if infer_ms else None, "notes": notes}


def format_table(report: dict[str, Any]) -> str:
    """The human-readable table ``restorer evaluate`` prints."""
    def f(v: Any, fmt: str) -> str:
        if v is None:
            return "-"
        if isinstance(v, float) and not np.isfinite(v):
            return "inf"
        return format(v, fmt)

    head = (f"{'':16s} {'PSNR dB':>8s} {'dE2000':>7s} {'dE C>10':>7s} {'colourful':>9s} "
            f"{'ratio':>6s} "
            f"{'CDC':>7s} {'CDC/GT':>6s} {'warp':>7s}")
    lines = [head]
    for key in (*ROWS, "truth"):
        r = report["truth"] if key == "truth" else report["rows"].get(key)
        if r is None:
            lines.append(f"{ROW_TITLES[key]:16s} (skipped)")
            continue
        ratio = 1.0 if key == "truth" else r.get("colourfulness_ratio")
        cdc_ratio = 1.0 if key == "truth" and r.get("cdc") else r.get("cdc_ratio")
        lines.append(f"{ROW_TITLES[key]:16s} {f(r.get('psnr'), '8.2f'):>8s} "
                     f"{f(r.get('delta_e2000'), '7.2f'):>7s} "
                     f"{f(r.get('delta_e2000_coloured'), '7.2f'):>7s} "
                     f"{f(r.get('colourfulness'), '9.2f'):>9s} {f(ratio, '6.2f'):>6s} "
                     f"{f(r.get('cdc'), '7.4f'):>7s} {f(cdc_ratio, '6.2f'):>6s} "
                     f"{f(r.get('warp_error'), '7.3f'):>7s}")
    m = report["rows"]["model"]
    if m.get("delta_e_vs_grey") is not None:
        v = 100 * m["delta_e_vs_grey"]
        lines.append(f"model dE2000 is {abs(v):.1f}% {'below' if v >= 0 else 'above'} "
                     "the grey baseline")
    return "\n".join(lines)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("evaluate", help="score a model on held-out colour footage or photos",
                       description="Convert a held-out colour clip (or a folder of colour "
                                   "photos) to black and white, colourise it, and compare "
                                   "with the original: PSNR, CIEDE2000, colourfulness, CDC, "
                                   "against grey and mean-colour baselines.")
    p.add_argument("model", type=Path, help="model file (.safetensors)")
    p.add_argument("video", type=Path, help="held-out colour video, or a folder of images")
    p.add_argument("--start", default=None, help="first frame: number or time (12.5s, 1:02)")
    p.add_argument("--end", default=None, help="end (exclusive): number or time")
    p.add_argument("--last", type=float, default=None, metavar="SECONDS",
                   help="evaluate the last SECONDS of the clip")
    p.add_argument("--size", type=int, default=None, help="working short side (default: model's)")
    p.add_argument("--max-frames", type=int, default=None, help="score at most N frames")
    p.add_argument("--stride", type=int, default=1, help="score every Nth frame")
    p.add_argument("--metric-size", type=int, default=METRIC_SIZE,
                   help="compute the figures on frames scaled to this short side (0: full "
                        f"resolution; default {METRIC_SIZE})")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    bar = tqdm(unit="frame", disable=args.quiet, desc="evaluating", dynamic_ncols=True)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        report = evaluate_model(args.model, args.video, start=args.start, end=args.end,
                                last=args.last, size=args.size, max_frames=args.max_frames,
                                stride=args.stride, device=args.device, on_progress=progress,
                                metric_size=args.metric_size or None)
    finally:
        bar.close()
    rng = (f"frames {report['first']}..{report['end']} (stride {report['stride']})"
           if report["kind"] == "video" else "photos")
    print(f"{args.model.name} on {Path(report['source']).name}, {rng}: {report['frames']} frames "
          f"at working size {report['working_size']}")
    print(format_table(report))
    for note in report["notes"]:
        print(f"note: {note}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, default=float))
        print(f"wrote {args.json}", file=sys.stderr)
    return 0
