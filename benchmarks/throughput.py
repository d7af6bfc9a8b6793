"""Throughput of the export path on a PAL SD clip (720x576, 25 fps), CPU or GPU.

Prints median fps (over ``--repeats`` runs) for: decode only; the ceiling (decode + encode,
no model); the model alone at the working size; and end to end with the model. Then the ratio
end-to-end / ceiling, the scrub-preview latency, and peak RSS for a short and a long clip (each in
its own process), which shows whether memory is flat in episode length.

    python benchmarks/throughput.py                    # default model, 30 s clip
    python benchmarks/throughput.py --model m.safetensors --device cuda
    python benchmarks/throughput.py --memory-seconds 60 600   # the 1 vs 10 minute check
    python benchmarks/throughput.py --preview-only            # scrubbing latency only
    python benchmarks/throughput.py --startup --compare-tree /tmp/before   # probe / start-up
    python benchmarks/throughput.py --compare-tree /tmp/before   # end to end, before vs after
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from restorer.engine import Colouriser  # noqa: E402
from restorer.look import Look  # noqa: E402
from restorer.media import FrameReader, VideoWriter, ffmpeg_exe, probe, read_frame  # noqa: E402
from restorer.media.seeker import FrameSeeker  # noqa: E402
from restorer.render import RenderJob, render  # noqa: E402

SOURCE = ROOT.parent / "shared" / "data" / "video" / "big_buck_bunny_1080p_30s.mp4"


def make_pal_clip(dst: Path, seconds: float) -> Path:
    """A grey PAL SD clip with stereo audio: real footage if available, else a test pattern."""
    if SOURCE.exists():
        src = ["-stream_loop", "-1", "-i", str(SOURCE)]
        audio = ["-map", "0:v:0", "-map", "0:a:0?", "-c:a", "aac", "-ac", "2", "-b:a", "128k"]
    else:
        src = ["-f", "lavfi", "-i", "testsrc2=size=720x576:rate=25"]
        audio = []
    cmd = [ffmpeg_exe(), "-v", "error", "-y", *src, "-t", str(seconds), "-vf",
           "scale=720:576,fps=25,format=gray", *audio, "-c:v", "libx264", "-preset", "veryfast",
           "-crf", "18", "-pix_fmt", "yuv420p", str(dst)]
    subprocess.run(cmd, check=True)
    return dst


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench_decode(clip: Path) -> float:
    info = probe(clip)
    n = 0
    t = timed(lambda: [None for _ in FrameReader(info)])
    n = info.frame_count
    return n / t


def bench_ceiling(clip: Path, out: Path) -> float:
    info = probe(clip)

    def go() -> None:
        with VideoWriter(out, info.width, info.height, info.fps, audio_from=info,
                         overwrite=True) as w:
            for _, g in FrameReader(info):
                w.write(np.repeat(g[..., None], 3, -1))

    return info.frame_count / timed(go)


def bench_model(col: Colouriser, clip: Path, look: Look, frames: int = 64) -> float:
    info = probe(clip)
    smalls = [col.to_working(g, look)
              for _, g in FrameReader(info, 0, min(frames, info.frame_count))]
    col.predict_ab_small(smalls[: col.batch_size])  # warm-up
    return len(smalls) / timed(lambda: col.predict_ab_small(smalls))


def bench_end_to_end(col: Colouriser, clip: Path, out: Path, look: Look) -> float:
    events = list(render(RenderJob(clip, out, look=look, overwrite=True), colouriser=col))
    return events[-1].fps


def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def bench_stages(col: Colouriser, clip: Path, out: Path, look: Look, frames: int = 96
                 ) -> dict[str, float]:
    """CPU milliseconds per frame of each stage of the export, each run alone on ``frames``
    frames (all threads' CPU time counted: a stage that spreads over both cores costs both).
    Their sum against the pipeline's wall time shows how well the stages overlap."""
    from restorer.color import merge_L_ab

    info = probe(clip)
    n = min(frames, info.frame_count)
    cost: dict[str, float] = {}
    c0 = _cpu_self() + _cpu_children()
    greys = [g.copy() for _, g in FrameReader(info, 0, n)]
    cost["decode (PyAV, in process)"] = _cpu_self() + _cpu_children() - c0
    c0 = _cpu_self()
    for g in greys:
        col.to_working(g, look)
    cost["to working size"] = _cpu_self() - c0
    col.predict(greys[: col.batch_size], look)  # warm-up
    c0 = _cpu_self()
    preds = col.predict(greys, look)
    cost["network (+ L lookups)"] = _cpu_self() - c0 - cost["to working size"]
    stab = col.new_stabiliser(look.replace(stabilise=0.7))
    assert stab is not None
    c0 = _cpu_self()
    for p in preds:
        stab.process(p.small, p.raw, L_small=p.L_small)
    cost["stabiliser (when asked)"] = _cpu_self() - c0
    c0 = _cpu_self()
    abs_ = [Colouriser.upsample(p) for p in preds]
    cost["guided upsample"] = _cpu_self() - c0
    from restorer.color import grey_to_L

    Ls = [grey_to_L(g) for g in greys]
    c0 = _cpu_self()
    rgbs = [merge_L_ab(L, ab, look.chroma) for L, ab in zip(Ls, abs_, strict=True)]
    cost["merge + gamut + Lab->RGB"] = _cpu_self() - c0
    c0 = _cpu_children()
    with VideoWriter(out, info.width, info.height, info.fps, overwrite=True) as w:
        for rgb in rgbs:
            w.write(rgb)
    cost["encode (ffmpeg, RGB->YUV + x264)"] = _cpu_children() - c0
    return {k: v * 1000 / n for k, v in cost.items()}


# Masters come in several GOP structures; scrubbing cost depends on the distance to a keyframe.
PREVIEW_VARIANTS = {
    "H.264, GOP 250 (x264 default)": [],  # the generated clip itself
    "H.264, GOP 12 (broadcast)": ["-c:v", "libx264", "-preset", "veryfast", "-crf", "18",
                                  "-g", "12", "-pix_fmt", "yuv420p"],
    "ProRes 422 HQ (intra master)": ["-c:v", "prores_ks", "-profile:v", "3"],
}


def preview_variant(clip: Path, args: list[str], dst: Path, seconds: float = 20.0) -> Path:
    if not args:
        return clip
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(clip), "-t", str(seconds),
                    "-map", "0:v:0", *args, str(dst)], check=True)
    return dst


def bench_preview(col: Colouriser, clip: Path, look: Look, samples: int = 15
                  ) -> dict[str, float]:
    """Scrubbing cost in ms: random jumps and single steps, the kept-open seeker vs a fresh read.

    A jump is a fresh FrameSeeker-style seek to a random frame; a step is the next frame after
    one. "preview" adds inference at the working size and the merge (what the desk shows).
    """
    info = probe(clip)
    rng = np.random.default_rng(0)
    targets = [int(n) for n in rng.integers(1, info.frame_count - 1, samples)]
    jump, step, spawn, preview = [], [], [], []
    with FrameSeeker(info) as seeker:
        for n in targets:
            t0 = time.perf_counter()
            g = seeker.frame(n)
            t1 = time.perf_counter()
            col.colourise_frames([g], look)  # what the desk's preview runs on a cache miss
            t2 = time.perf_counter()
            seeker.frame(n + 1)
            t3 = time.perf_counter()
            read_frame(info, n)
            t4 = time.perf_counter()
            jump.append((t1 - t0) * 1000)
            preview.append((t2 - t0) * 1000)
            step.append((t3 - t2) * 1000)
            spawn.append((t4 - t3) * 1000)
        backend = seeker.backend
    med = statistics.median
    return {"decode_jump_ms": med(jump), "decode_step_ms": med(step),
            "decode_fresh_ms": med(spawn), "preview_jump_ms": med(preview),
            "infer_merge_ms": med(preview) - med(jump), "in_process": float(backend == "pyav")}


def peak_rss_of_render(clip: Path, model: str | None, device: str) -> float:
    """Peak RSS (MB) of a separate process rendering ``clip`` end to end.

    Read from the child's own VmHWM: ru_maxrss would carry this (large) parent's high-water mark
    across fork and exec.
    """
    code = (  # noqa: UP031 (a script with %r-quoted literals reads clearest)
        "import sys; sys.path.insert(0, %r)\n"
        "from restorer.render import RenderJob, run\n"
        "run(RenderJob(%r, %r, model=%r, device=%r, overwrite=True))\n"
        "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])\n"
    ) % (str(ROOT), str(clip), str(clip.with_suffix(".out.mp4")), model, device)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1]) / 1024


# Run in a fresh interpreter so import costs count: the time from process start to the probe
# done and to the first batch encoded (render yields after each batch it hands the encoder).
_FIRST_FRAME = """
import sys, time, json
t0 = time.perf_counter()
from restorer.media import probe
from restorer.render import RenderJob, render
t_probe0 = time.perf_counter()
probe(sys.argv[1])
t_probe = time.perf_counter() - t_probe0
job = RenderJob(src=sys.argv[1], dst=sys.argv[2], model=sys.argv[3] or None, device="cpu",
                overwrite=True)
for ev in render(job):
    if ev.done > 0:
        print(json.dumps({"probe_s": t_probe, "first_batch_s": time.perf_counter() - t0}))
        break
"""


def bench_startup(tree: Path, clip: Path, out: Path, model: str | None, repeats: int
                  ) -> dict[str, float]:
    """``restorer --version`` wall time, one probe, and the time to the first encoded batch of
    ``clip``, for the code in ``tree`` (medians)."""
    env = {**__import__("os").environ, "PYTHONPATH": str(tree)}
    version = []
    for _ in range(max(5, repeats)):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "restorer.cli", "--version"], env=env,
                       cwd=tree, capture_output=True, check=True)
        version.append(time.perf_counter() - t0)
    firsts = []
    for _ in range(repeats):
        r = subprocess.run([sys.executable, "-c", _FIRST_FRAME, str(clip), str(out), model or ""],
                           env=env, cwd=tree, capture_output=True, text=True, check=True)
        firsts.append(json.loads(r.stdout.strip().splitlines()[-1]))
    return {"version_s": statistics.median(version),
            "probe_s": statistics.median(f["probe_s"] for f in firsts),
            "first_batch_s": statistics.median(f["first_batch_s"] for f in firsts)}


# One export in a fresh interpreter on the code in PYTHONPATH, with each thread's CPU time read
# from /proc (Linux) while it runs: which stage's thread is the bottleneck, and how much of the two
# cores the pipeline keeps busy.
_E2E = """
import glob, json, os, resource, sys, threading, time
from restorer.engine import Colouriser
from restorer.render import RenderJob, render
col = Colouriser.load(sys.argv[3] or None, device="cpu")
tick = os.sysconf("SC_CLK_TCK")
seen = {}
def sample():
    names = {t.native_id: t.name for t in threading.enumerate()}
    for task in glob.glob(f"/proc/{os.getpid()}/task/*"):
        try:
            f = open(task + "/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        tid = int(task.rsplit("/", 1)[1])
        name = names.get(tid) or open(task + "/comm").read().strip()
        name = "restorer-post" if name.startswith("restorer-post") else name
        seen[tid] = (name, (int(f[11]) + int(f[12])) / tick)
sample()
base = {k: v[1] for k, v in seen.items()}
c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
t0 = time.perf_counter()
for ev in render(RenderJob(sys.argv[1], sys.argv[2], overwrite=True), colouriser=col):
    sample()
wall = time.perf_counter() - t0
c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
n = ev.total
by = {}
for tid, (name, cpu) in seen.items():
    by[name] = by.get(name, 0.0) + cpu - base.get(tid, 0.0)
by["ffmpeg (encoder process)"] = c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime
print(json.dumps({"fps": n / wall, "wall_ms": 1000 * wall / n,
                  "bytes": os.path.getsize(sys.argv[2]),
                  "cpu_ms": {k: 1000 * v / n for k, v in by.items()}}))
"""


def bench_e2e_in(tree: Path, clip: Path, out: Path, model: str | None) -> dict:
    env = {**__import__("os").environ, "PYTHONPATH": str(tree)}
    r = subprocess.run([sys.executable, "-c", _E2E, str(clip), str(out), model or ""], env=env,
                       cwd=tree, capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def compare_report(args: argparse.Namespace, clip: Path, tmp: Path) -> dict[str, float]:
    """End to end for this tree and each ``--compare-tree``, alternated run by run so that a
    machine whose speed drifts (shared hosts) treats every tree alike; medians and paired ratios,
    and the CPU milliseconds per frame of each thread in the median run."""
    trees = [ROOT, *args.compare_tree]
    runs: dict[Path, list[dict]] = {t: [] for t in trees}
    for _ in range(args.repeats):
        for t in trees:
            runs[t].append(bench_e2e_in(t, clip, tmp / "cmp.mp4", args.model))
    res: dict[str, float] = {}
    print(f"end to end, each tree in a fresh process, alternated ({args.repeats} runs each):")
    for t in trees:
        label = "this tree" if t == ROOT else str(t)
        fps = [r["fps"] for r in runs[t]]
        med = sorted(runs[t], key=lambda r: r["fps"])[len(fps) // 2]
        threads = ", ".join(f"{k} {v:.1f}" for k, v in
                            sorted(med["cpu_ms"].items(), key=lambda kv: -kv[1]) if v >= 0.5)
        busy = sum(med["cpu_ms"].values()) / med["wall_ms"]
        print(f"  {label:28s} median {statistics.median(fps):6.1f} fps (runs "
              f"{', '.join(f'{v:.1f}' for v in fps)}); CPU ms/frame by thread: {threads}; "
              f"{busy:.2f} cores busy; output {med['bytes'] / 1e6:.1f} MB")
        res[f"{label}: e2e fps"] = statistics.median(fps)
        if t != ROOT:
            ratio = statistics.median(a["fps"] / b["fps"] for a, b in zip(runs[ROOT], runs[t],
                                                                           strict=True))
            print(f"  {'':28s} this tree / it, paired by run: {ratio:.2f}x")
            res[f"{label}: paired ratio"] = ratio
    return res


def startup_report(args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    clip = args.clip or make_pal_clip(tmp / "pal_long.mp4", args.startup_seconds)
    print(f"start-up on {probe(clip).describe()}:")
    res: dict[str, float] = {}
    for tree in [ROOT, *args.compare_tree]:
        r = bench_startup(tree, clip, tmp / "first.mp4", args.model, args.repeats)
        label = "this tree" if tree == ROOT else str(tree)
        print(f"  {label:40s} --version {r['version_s'] * 1000:6.0f} ms   probe "
              f"{r['probe_s'] * 1000:6.0f} ms   command start to first batch encoded "
              f"{r['first_batch_s']:5.2f} s")
        res.update({f"{label}: {k}": v for k, v in r.items()})
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", type=Path, help="use this clip instead of generating one")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--model", default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--size", type=int, default=None, help="working short side")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--memory-seconds", type=float, nargs=2, default=None,
                    metavar=("SHORT", "LONG"))
    ap.add_argument("--preview-only", action="store_true",
                    help="only the scrub-preview latencies (skips the fps measurements)")
    ap.add_argument("--startup", action="store_true",
                    help="only the start-up figures: --version, probe and time to the first "
                         "batch encoded on a long PAL source")
    ap.add_argument("--startup-seconds", type=float, default=1800.0,
                    help="length of the generated source for --startup (default 30 min)")
    ap.add_argument("--compare-tree", type=Path, action="append", default=[],
                    help="with --startup: also time the code in this checkout (e.g. main before)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="restorer-bench-"))
    if args.startup:
        res = startup_report(args, tmp)
        if args.json:
            args.json.write_text(json.dumps(res, indent=2))
        return
    clip = args.clip or make_pal_clip(tmp / "pal.mp4", args.seconds)
    if args.compare_tree:
        print(f"clip: {probe(clip).describe()}")
        res = compare_report(args, clip, tmp)
        if args.json:
            args.json.write_text(json.dumps(res, indent=2))
        return
    info = probe(clip)
    look = Look(working_size=args.size)
    col = Colouriser.load(args.model, device=args.device, batch_size=args.batch)
    wh, ww = col.working_shape(info.height, info.width, look)
    print(f"clip: {info.describe()}")
    print(f"model: {col.meta.name} {col.meta.arch}; working size {ww}x{wh}; device {col.device}; "
          f"batch {col.batch_size}; torch threads {__import__('torch').get_num_threads()}")

    res: dict[str, float] = {}
    runs = {
        "decode only": lambda: bench_decode(clip),
        "ceiling (decode+encode, no model)": lambda: bench_ceiling(clip, tmp / "ceiling.mp4"),
        "model only": lambda: bench_model(col, clip, look),
        "end to end": lambda: bench_end_to_end(col, clip, tmp / "e2e.mp4", look),
    }
    for name, fn in ({} if args.preview_only else runs).items():
        vals = [fn() for _ in range(args.repeats)]
        res[name] = statistics.median(vals)
        print(f"{name:36s} median {res[name]:7.1f} fps   (runs: "
              f"{', '.join(f'{v:.1f}' for v in vals)})")
    if not args.preview_only:
        print(f"CPU ms per frame by stage (each alone; torch threads "
              f"{__import__('torch').get_num_threads()}, cv2 threads "
              f"{__import__('cv2').getNumThreads()}, {__import__('os').cpu_count()} cores):")
        stages = bench_stages(col, clip, tmp / "stages.mp4", look)
        for name, ms in stages.items():
            print(f"  {name:36s} {ms:7.1f} ms")
            res[f"stage: {name}"] = ms
        export_ms = sum(v for k, v in stages.items() if not k.startswith("stabiliser"))
        cores = __import__("os").cpu_count() or 1
        print(f"  {'sum (without the stabiliser)':36s} {export_ms:7.1f} ms: at most "
              f"{1000 * cores / export_ms:.1f} fps on {cores} cores if the stages overlapped "
              f"perfectly; measured end to end {res['end to end']:.1f} fps = "
              f"{1000 / res['end to end']:.1f} ms wall per frame")
        ratio = res["end to end"] / res["ceiling (decode+encode, no model)"]
        print(f"{'end to end / ceiling':36s} {ratio:7.2f}")
        print(f"{'real time (25 fps) reached':36s} {'yes' if res['end to end'] >= 25 else 'no'}")
    print("scrub preview (median ms; jump = random frame, step = next frame):")
    print(f"  {'source':32s} {'jump':>6s} {'step':>6s} {'fresh':>7s} {'preview':>8s} "
          f"{'<=80 ms':>7s}")
    for k, (label, vargs) in enumerate(PREVIEW_VARIANTS.items()):
        src = preview_variant(clip, vargs, tmp / f"preview_{k}.mov")
        p = bench_preview(col, src, look)
        for key, val in p.items():
            res[f"{label}: {key}"] = val
        print(f"  {label:32s} {p['decode_jump_ms']:6.1f} {p['decode_step_ms']:6.1f} "
              f"{p['decode_fresh_ms']:7.1f} {p['preview_jump_ms']:8.1f} "
              f"{'yes' if p['preview_jump_ms'] <= 80 else 'no':>7s}"
              f"{'' if p['in_process'] else '  (fresh-read fallback)'}")
    print("  (jump/step: the kept-open seeker; fresh: open, seek and decode anew, the fallback; "
          "preview: jump + infer + merge)")
    print(f"peak RSS of this process so far: "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    if args.memory_seconds:
        short_s, long_s = args.memory_seconds
        mems = []
        for secs in (short_s, long_s):
            c = make_pal_clip(tmp / f"mem_{int(secs)}.mp4", secs)
            mems.append(peak_rss_of_render(c, args.model, args.device))
            print(f"peak RSS rendering {secs:.0f} s: {mems[-1]:.0f} MB")
        res["rss_short_mb"], res["rss_long_mb"] = mems
        print(f"peak RSS difference long - short: {mems[1] - mems[0]:+.0f} MB "
              f"(target < 100 MB)")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
