"""Render farm benchmark: one PAL episode by ``restorer colourize`` and by ``restorer farm run``
on a local Ray cluster of this machine's cores, and the seam check.

Both run with their defaults (no flags), on a 5-minute grey PAL SD episode made from Big Buck
Bunny (a cartoon with cuts every few seconds, looped; research use only, never shipped), with
stereo audio. Printed:

* wall time and fps of each, their ratio, and that both masters have the source's frame count,
  fps and audio streams;
* the farm's cost per chunk: the worker's start-up (model, ONNX session, decoder, first batch)
  and the driver's overhead (Ray scheduling and results: submit-to-result time minus the
  worker's own time), as medians, and the cluster's start;
* the seam check: warp error (flicker along the motion, Lab units) and CDC (colour distribution
  consistency) across chunk boundaries against inside chunks, for both masters; and how far the
  farm's frames are from colourize's (mean |delta a*b*|) at and away from the boundaries;
* the same seam check with ``--stabilise 0.7`` (where a chunk that starts mid-shot must warm
  the stabiliser up) on a minute of franck.mp4, a talking head with long shots, cut every 10 s;
* what 100 such episodes on 20 such machines would take, from these figures.

Usage::

    python benchmarks/farm.py                    # 300 s episode, 60 s stabilised seam clip
    python benchmarks/farm.py --seconds 60 --seam-seconds 20   # quicker, smaller figures
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from throughput import make_pal_clip  # noqa: E402

from restorer.color import rgb8_to_grey, rgb8_to_lab  # noqa: E402
from restorer.farm.options import FarmOptions  # noqa: E402
from restorer.farm.run import farm_run  # noqa: E402
from restorer.look import Look  # noqa: E402
from restorer.media import FrameReader, ffmpeg_exe, probe  # noqa: E402
from restorer.metrics import cdc  # noqa: E402
from restorer.temporal import warp_errors  # noqa: E402

FRANCK = ROOT.parent / "shared" / "data" / "video" / "franck.mp4"
#: Frames are scored at this size: seams are a matter of colour, not of detail.
SCORE_SIZE = (180, 144)
#: Frames either side of a boundary that count as "at the seam".
NEAR = 2
#: CDC window (frames) around each boundary, and for the inside windows.
CDC_WINDOW = 24


def make_franck_pal(dst: Path, seconds: float) -> Path:
    cmd = [ffmpeg_exe(), "-v", "error", "-y", "-i", str(FRANCK), "-f", "lavfi", "-i",
           f"sine=frequency=440:duration={seconds}", "-t", str(seconds), "-vf",
           "setpts=N/25/TB,scale=720:576,format=gray", "-r", "25", "-map", "0:v", "-map", "1:a",
           "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-c:a", "aac", str(dst)]
    subprocess.run(cmd, check=True)
    return dst


def colourize(src: Path, dst: Path, extra: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "restorer.cli", "colourize", str(src), "-o", str(dst),
                    "--quiet", *extra], check=True)
    return time.perf_counter() - t


def farm(src: Path, out: Path, opts: FarmOptions) -> tuple[float, dict[str, float]]:
    """Run the farm in this process (its work runs in Ray's workers); time its phases."""
    t0 = time.perf_counter()
    marks: dict[str, float] = {}
    for ev in farm_run([src], out, opts):
        m = ev.message
        if m.startswith("running on") and "connected" not in marks:
            marks["connected"] = time.perf_counter() - t0
        if "to render," in m:
            marks["scheduled"] = time.perf_counter() - t0
    return time.perf_counter() - t0, marks


def scored(path: Path) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """RGB, grey levels and a*b* of every frame at :data:`SCORE_SIZE`."""
    rgbs, greys, abs_ = [], [], []
    with FrameReader(probe(path), mode="rgb", size=SCORE_SIZE) as reader:
        for _, rgb in reader:
            rgbs.append(rgb)
            greys.append(rgb8_to_grey(rgb))
            abs_.append(rgb8_to_lab(rgb)[..., 1:])
    return rgbs, greys, abs_


def seam_figures(master: Path, other: Path | None, starts: list[int]) -> dict[str, float]:
    frames, greys, abs_ = scored(master)
    n = len(greys)
    pair = warp_errors(greys, abs_)  # pair[t - 1] is frames (t - 1, t)
    at = {b - 1 for b in starts if 0 < b < n}
    seam = [pair[i] for i in at if pair[i] == pair[i]]
    inside = [e for i, e in enumerate(pair) if i not in at and e == e]
    out = {"warp_seam": statistics.median(seam) if seam else float("nan"),
           "warp_inside": statistics.median(inside) if inside else float("nan")}
    # CDC on the colour frames around each boundary, against windows centred inside chunks.
    half = CDC_WINDOW // 2
    edges = [0, *[b for b in starts if 0 < b < n], n]
    mids = [(a + b) // 2 for a, b in zip(edges, edges[1:], strict=False) if b - a > CDC_WINDOW]
    cs = [cdc(frames[b - half:b + half]) for b in starts if half <= b <= n - half]
    ci = [cdc(frames[m - half:m + half]) for m in mids if half <= m <= n - half]
    out["cdc_seam"] = statistics.median(cs) if cs else float("nan")
    out["cdc_inside"] = statistics.median(ci) if ci else float("nan")
    if other is not None:
        _, _, ref = scored(other)
        d = [float(np.abs(a - b).mean()) for a, b in zip(abs_, ref, strict=True)]
        near = {t for b in starts for t in range(b - NEAR, b + NEAR + 1) if 0 <= t < n}
        out["diff_seam"] = statistics.mean(d[t] for t in near) if near else float("nan")
        out["diff_inside"] = statistics.mean(x for t, x in enumerate(d) if t not in near)
    return out


def check(master: Path, src: Path) -> str:
    a, b = probe(master), probe(src)
    ok = (a.frame_count, a.fps, len(a.audio)) == (b.frame_count, b.fps, len(b.audio))
    return (f"{a.frame_count} frames, {a.fps} fps, {len(a.audio)} audio "
            f"({'as the source' if ok else 'NOT as the source'})")


def chunks_of(out: Path) -> list[dict[str, float]]:
    data = json.loads((out / "restorer-farm" / "manifest.json").read_text())
    (ep,) = data["episodes"].values()
    return ep["chunks"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=300.0, help="episode length (default 300)")
    ap.add_argument("--seam-seconds", type=float, default=60.0,
                    help="length of the stabilised seam clip (default 60; 0 skips it)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="restorer-farm-bench-"))
    ep = make_pal_clip(tmp / "episode.mp4", args.seconds)
    frames = probe(ep).frame_count
    print(f"episode: {ep.name} {frames} frames, 720x576, 25 fps, grey, stereo AAC")

    t_col = colourize(ep, tmp / "colourize.mp4", [])
    t_farm, marks = farm(ep, tmp / "masters", FarmOptions())
    chunks = chunks_of(tmp / "masters")
    starts = [int(c["start"]) for c in chunks]
    print("\n| run | wall s | fps | master |")
    print("|---|---|---|---|")
    print(f"| restorer colourize (defaults) | {t_col:.1f} | {frames / t_col:.1f} | "
          f"{check(tmp / 'colourize.mp4', ep)} |")
    print(f"| restorer farm run (defaults, local cluster) | {t_farm:.1f} | {frames / t_farm:.1f}"
          f" | {check(tmp / 'masters' / 'episode.mp4', ep)} |")
    print(f"\nfarm / colourize speed: {t_col / t_farm:.2f}x")
    print(f"chunks: {len(chunks)} (lengths {', '.join(str(c['end'] - c['start']) for c in chunks)}"
          f" frames); cluster start and storage check {marks.get('connected', float('nan')):.1f}"
          f" s, scheduled after {marks.get('scheduled', float('nan')):.1f} s")
    setup = statistics.median(c["setup"] for c in chunks)
    over = statistics.median(c["wall"] - c["seconds"] for c in chunks)
    print(f"per chunk (medians): worker start-up {setup:.2f} s, driver overhead {over:.2f} s, "
          f"render {statistics.median(c['seconds'] for c in chunks):.1f} s")

    rows = [("defaults", seam_figures(tmp / "masters" / "episode.mp4", tmp / "colourize.mp4",
                                      starts),
             seam_figures(tmp / "colourize.mp4", None, starts))]
    if args.seam_seconds > 0 and FRANCK.exists():
        clip = make_franck_pal(tmp / "franck.mp4", args.seam_seconds)
        colourize(clip, tmp / "franck-col.mp4", ["--stabilise", "0.7"])
        out = tmp / "franck-masters"
        farm(clip, out, FarmOptions(look=Look(stabilise=0.7), chunk="10s"))
        fs = [int(c["start"]) for c in chunks_of(out)]
        warm = [int(c["warmup"]) for c in chunks_of(out)]
        print(f"\nstabilised clip: {probe(clip).frame_count} frames, chunk starts {fs}, "
              f"warm-up frames {warm}")
        rows.append(("--stabilise 0.7, --chunk 10s (franck)",
                     seam_figures(out / "franck.mp4", tmp / "franck-col.mp4", fs),
                     seam_figures(tmp / "franck-col.mp4", None, fs)))
    print("\n| clip | master | warp error at seams | inside | CDC at seams | inside | "
          "farm vs colourize |Δab| at seams | inside |")
    print("|---|---|---|---|---|---|---|---|")
    for name, f, c in rows:
        print(f"| {name} | farm | {f['warp_seam']:.3f} | {f['warp_inside']:.3f} | "
              f"{f['cdc_seam']:.4f} | {f['cdc_inside']:.4f} | {f['diff_seam']:.3f} | "
              f"{f['diff_inside']:.3f} |")
        print(f"|  | colourize | {c['warp_seam']:.3f} | {c['warp_inside']:.3f} | "
              f"{c['cdc_seam']:.4f} | {c['cdc_inside']:.4f} | | |")

    fps = frames / t_farm
    episode_s = 45 * 60
    hours = 100 * episode_s * 25 / (20 * fps) / 3600
    print(f"\nsketch: 100 episodes of 45 min PAL on 20 machines like this one at {fps:.1f} fps "
          f"each: {hours:.1f} h of rendering (chunks of 60 s: "
          f"{100 * episode_s // 60} chunks, {100 * episode_s // 60 / (20 * 2):.0f} per worker)")
    print(f"\nfiles in {tmp}")


if __name__ == "__main__":
    main()
