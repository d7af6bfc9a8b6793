"""Temporal stabilisation benchmark: flicker, colour consistency, accuracy and cost, off vs on.

For each clip (franck.mp4's last 60 s and bikes.mp4 by default; both research-only, never
shipped), the colour frames are the ground truth; their CIELAB L (as grey) is colourised by the
model with :class:`restorer.temporal.ChromaStabiliser` off and on. Printed per clip:

* CDC (colour distribution consistency, lower is steadier) for ground truth, off and on;
* warp error (:func:`restorer.temporal.warp_error`, Lab units) for ground truth, off and on;
* mean CIEDE2000 against the ground truth, off and on;
* the ratios the issue targets: CDC_on <= 1.2 x CDC_gt, warp error on <= 0.7 x off,
  deltaE2000 on <= 1.02 x off, export time on <= 1.5 x off;
* the stabiliser's cost per frame at the working size, and the export-time ratio, both as the
  in-process pipeline (network + stabiliser + upsample/merge, no codec) and, with
  ``--render-runs N``, as median wall time of real ``render()`` exports with stabilise 0 and on.

Usage::

    python benchmarks/temporal.py                      # default model, 300 frames per clip
    python benchmarks/temporal.py --model m.safetensors --max-frames 0 --render-runs 3
    python benchmarks/temporal.py --random-model       # smoke test only: figures meaningless
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from restorer.color import rgb8_to_grey, rgb8_to_lab
from restorer.engine import Colouriser
from restorer.look import DEFAULT_WORKING_SIZE, Look
from restorer.media import FrameReader, probe
from restorer.metrics import cdc, delta_e2000
from restorer.temporal import ChromaStabiliser, warp_error

DATA = Path("/work/shared/data/video")


def load_colouriser(args: argparse.Namespace) -> Colouriser:
    if args.random_model:
        from restorer.checkpoint import ModelMeta
        from restorer.nets.registry import build_net

        torch.manual_seed(0)
        spec = {"arch": "unet", "base": 16, "depth": 3}
        meta = ModelMeta(arch=spec, working_size=args.size or DEFAULT_WORKING_SIZE, name="random",
                         description="random init: smoke test only")
        return Colouriser.from_net(build_net(spec).eval(), meta, device="cpu", batch_size=8)
    from restorer.checkpoint import default_model_path

    path = args.model or default_model_path()
    if not Path(path).exists():
        sys.exit(f"temporal.py: model not found: {path}; pass --model PATH (or --random-model "
                 "for a smoke test)")
    return Colouriser.load(path, device="cpu", batch_size=8)


def clip_range(name: str, max_frames: int) -> tuple[Path, int, int]:
    path = DATA / name
    if not path.exists():
        sys.exit(f"temporal.py: {path} is missing (see /work/shared/data/README.md)")
    info = probe(path)
    start = 0
    if name == "franck.mp4":  # the held-out part: the last 60 s
        start = max(0, info.frame_count - int(round(60 * float(info.fps))))
    end = info.frame_count if max_frames <= 0 else min(info.frame_count, start + max_frames)
    return path, start, end


def simulated_prediction(gt: list[np.ndarray], smalls: list[np.ndarray], sigma: float
                         ) -> list[np.ndarray]:
    """A stand-in for a flickering network: the true ab at working size plus, per frame, an
    independent smooth random field (a 4x5 grid of N(0, sigma) offsets, bicubically upsampled)
    and pixel noise of sigma / 4. Only for tuning the stabiliser without a trained model."""
    import cv2

    rng = np.random.default_rng(0)
    out = []
    for f, s in zip(gt, smalls, strict=True):
        h, w = s.shape
        ab = rgb8_to_lab(cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA))[..., 1:]
        field = rng.normal(0, sigma, (4, 5, 2)).astype(np.float32)
        field = cv2.resize(field, (w, h), interpolation=cv2.INTER_CUBIC)
        out.append(ab + field + rng.normal(0, sigma / 4, (h, w, 2)).astype(np.float32))
    return out


def run_clip(col: Colouriser, look: Look, name: str, args: argparse.Namespace
             ) -> dict[str, float]:
    path, start, end = clip_range(name, args.max_frames)
    info = probe(path)
    with FrameReader(info, start, end, mode="rgb") as reader:
        gt = [f.copy() for _, f in reader]
    greys = [rgb8_to_grey(f) for f in gt]

    # The engine's stages one by one, so each can be timed (and the network's ab replaced):
    # predict without stabilisation, then this benchmark's own stabiliser, then finish.
    t0 = time.perf_counter()
    preds = []
    for i in range(0, len(greys), col.batch_size):
        preds.extend(col.predict(greys[i: i + col.batch_size], look))
    t_net = time.perf_counter() - t0
    smalls = [p.small for p in preds]
    raw = [p.raw for p in preds]
    if args.simulate_flicker > 0:
        raw = simulated_prediction(gt, smalls, args.simulate_flicker)

    stab = ChromaStabiliser(strength=args.strength, preset=args.preset)
    t0 = time.perf_counter()
    smooth = [stab.process(p.small, a, L_small=p.L_small) for p, a in zip(preds, raw, strict=True)]
    t_stab = time.perf_counter() - t0

    t0 = time.perf_counter()
    off = [col.finish(dataclasses.replace(p, ab_small=a), look).rgb
           for p, a in zip(preds, raw, strict=True)]
    t_post = time.perf_counter() - t0
    on = [col.finish(dataclasses.replace(p, ab_small=a), look).rgb
          for p, a in zip(preds, smooth, strict=True)]

    ab = lambda frames: [rgb8_to_lab(f)[..., 1:] for f in frames]  # noqa: E731
    step = max(1, args.de_stride)
    r: dict[str, float] = {
        "frames": len(gt), "start": start,
        "cdc_gt": cdc(gt), "cdc_off": cdc(off), "cdc_on": cdc(on),
        "we_gt": warp_error(greys, ab(gt)), "we_off": warp_error(greys, ab(off)),
        "we_on": warp_error(greys, ab(on)),
        "de_off": float(np.mean([delta_e2000(o, g) for o, g in zip(off[::step], gt[::step],
                                                                   strict=True)])),
        "de_on": float(np.mean([delta_e2000(o, g) for o, g in zip(on[::step], gt[::step],
                                                                  strict=True)])),
        "stab_ms": 1000 * t_stab / len(gt), "net_ms": 1000 * t_net / len(gt),
        "post_ms": 1000 * t_post / len(gt), "cuts": len(stab.cuts),
        "pipeline_ratio": (t_net + t_post + t_stab) / (t_net + t_post),
        "work_size": float(smalls[0].shape[1] * 10000 + smalls[0].shape[0]),
    }
    if args.render_runs > 0:
        r.update(render_ratio(col, look, path, start, min(end, start + args.render_frames),
                              args))
    return r


def render_ratio(col: Colouriser, look: Look, path: Path, start: int, end: int,
                 args: argparse.Namespace) -> dict[str, float]:
    """Median wall time of real exports (decode, network, stabiliser, encode), off vs on."""
    from restorer.render import RenderJob, run

    times: dict[float, list[float]] = {0.0: [], args.strength: []}
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.render_runs):
            for s in times:
                job = RenderJob(src=path, dst=Path(tmp) / f"out{k}_{s}.mp4", start=start, end=end,
                                look=look.replace(stabilise=s), overwrite=True,
                                batch_size=col.batch_size)
                t0 = time.perf_counter()
                run(job, colouriser=col)
                times[s].append(time.perf_counter() - t0)
    off, on = statistics.median(times[0.0]), statistics.median(times[args.strength])
    return {"render_off_s": off, "render_on_s": on, "render_ratio": on / off,
            "render_frames": end - start}


def report(name: str, r: dict[str, float]) -> list[str]:
    ws = int(r["work_size"])
    lines = [
        f"{name}: {int(r['frames'])} frames from {int(r['start'])}, working size "
        f"{ws // 10000}x{ws % 10000}, stabiliser found {int(r['cuts'])} cut(s)",
        f"  CDC            gt {r['cdc_gt']:.5f}  off {r['cdc_off']:.5f}  on {r['cdc_on']:.5f}"
        f"   on/gt {r['cdc_on'] / r['cdc_gt']:.2f} (target <= 1.20)"
        f"{'  ok' if r['cdc_on'] <= 1.2 * r['cdc_gt'] else '  MISSED'}",
        f"  warp error     gt {r['we_gt']:.3f}  off {r['we_off']:.3f}  on {r['we_on']:.3f}"
        f"   fall {100 * (1 - r['we_on'] / r['we_off']):.1f}% (target >= 30%)"
        f"{'  ok' if r['we_on'] <= 0.7 * r['we_off'] else '  MISSED'}",
        f"  deltaE2000              off {r['de_off']:.3f}  on {r['de_on']:.3f}"
        f"   on/off {r['de_on'] / r['de_off']:.3f} (target <= 1.02)"
        f"{'  ok' if r['de_on'] <= 1.02 * r['de_off'] else '  MISSED'}",
        f"  per frame      network {r['net_ms']:.1f} ms  upsample+merge {r['post_ms']:.1f} ms  "
        f"stabiliser {r['stab_ms']:.2f} ms   pipeline on/off {r['pipeline_ratio']:.3f} "
        f"(target <= 1.5)",
    ]
    if "render_ratio" in r:
        lines.append(
            f"  render()       {int(r['render_frames'])} frames: off {r['render_off_s']:.2f} s  "
            f"on {r['render_on_s']:.2f} s   on/off {r['render_ratio']:.3f} (target <= 1.5)"
            f"{'  ok' if r['render_ratio'] <= 1.5 else '  MISSED'}")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", type=Path, default=None,
                   help="model file (default: restorer.checkpoint.default_model_path())")
    p.add_argument("--random-model", action="store_true",
                   help="random U-Net instead of a trained model (smoke test; figures meaningless)")
    p.add_argument("--clips", default="franck.mp4,bikes.mp4",
                   help=f"comma-separated files in {DATA}")
    p.add_argument("--max-frames", type=int, default=300,
                   help="consecutive frames per clip from its start (0: all; franck: last 60 s)")
    p.add_argument("--strength", type=float, default=0.7)
    p.add_argument("--preset", default="fast", choices=["ultrafast", "fast", "medium"])
    p.add_argument("--size", type=int, default=None, help="working size (default: the model's)")
    p.add_argument("--de-stride", type=int, default=2, help="deltaE2000 on every n-th frame")
    p.add_argument("--render-runs", type=int, default=0,
                   help="also time N real exports off and on (median); 0 skips")
    p.add_argument("--render-frames", type=int, default=150, help="frames per timed export")
    p.add_argument("--simulate-flicker", type=float, default=0.0, metavar="SIGMA",
                   help="replace the network's ab by the true ab plus random per-frame fields of "
                        "this size (Lab units): tunes the stabiliser without a trained model")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    col = load_colouriser(args)
    look = Look(working_size=args.size)
    print(f"model {col.meta.name!r}, working size {look.size_for(col.meta)}, "
          f"strength {args.strength}, "
          f"flow preset {args.preset}")
    if args.simulate_flicker > 0:
        print(f"WARNING: simulated network (true ab + flicker {args.simulate_flicker}); "
              "not the model's figures")
    elif args.random_model:
        print("WARNING: random model; the final figures need the trained default model")
    for name in args.clips.split(","):
        for line in report(name, run_clip(col, look, name.strip(), args)):
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
