"""The show workflow with its defaults, against a plain baseline trained for the same time.

For each clip the colour footage is cut into take A (training) and take B (held out), losslessly
(FFV1), then:

* **Restorer** runs exactly the README's commands, with no flags but the budget::

      restorer dataset build take_a.mkv -o show.dataset
      restorer train show.dataset -o show.safetensors --minutes 10
      restorer evaluate show.safetensors take_b.mkv

* **Baseline**, in the same run: the "60-line script" an engineer would write first. A plain
  U-Net (base 16, depth 3, BatchNorm, ReLU), L1 on ab, Adam 1e-3, batch 16, fp32, every 2nd frame
  of take A resized whole to a short side of 128 (160x128 for 4:5 footage), trained for the same
  wall-clock minutes, last weights kept. It is scored by the same ``evaluate`` code at its own
  training size, so the two rows differ only in what the training made.

Clips (``/work/shared/data/video``): franck.mp4 (talking head; A = all but the last 60 s, B = the
last 60 s) and big_buck_bunny_1080p_30s.mp4 (cartoon; A = the first 20 s, B = the last 10 s).

    python benchmarks/show.py                    # both clips, 10 minutes each run (~45 min)
    python benchmarks/show.py --clips franck --minutes 3

Run it on an otherwise idle machine: both trainings are wall-clock budgets.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from restorer.checkpoint import ModelMeta
from restorer.color import rgb8_to_lab
from restorer.engine import Colouriser
from restorer.evaluate import evaluate_model
from restorer.media import FrameReader, probe
from restorer.media.probe import ffmpeg_exe

DATA = Path(os.environ.get("RESTORER_DATA", "/work/shared/data")) / "video"


@dataclass
class Clip:
    name: str
    file: str
    a: tuple[float, float | None]  # take A (training): start, end seconds (None: to the end)
    b: tuple[float, float | None]  # take B (held out)
    targets: str


CLIPS = {
    "franck": Clip("franck", "franck.mp4", (0.0, 140.0), (140.0, None),
                   "dE2000 <= 1.8; colourfulness ratio 0.95-1.05; dE >= 15% below baseline"),
    "bbb": Clip("bbb", "big_buck_bunny_1080p_30s.mp4", (0.0, 20.0), (20.0, None),
                "dE on coloured pixels >= 15% below baseline; colourfulness ratio >= 0.9"),
}


def cut(src: Path, dst: Path, span: tuple[float, float | None]) -> Path:
    """Losslessly re-encode ``span`` of ``src`` (video only) into an FFV1 Matroska file."""
    if dst.exists():
        return dst
    cmd = [ffmpeg_exe(), "-hide_banner", "-v", "error", "-y", "-ss", f"{span[0]:.3f}",
           "-i", str(src)]
    if span[1] is not None:
        cmd += ["-t", f"{span[1] - span[0]:.3f}"]
    tmp = dst.with_name(dst.stem + ".tmp.mkv")
    subprocess.run([*cmd, "-map", "0:v:0", "-c:v", "ffv1", "-an", str(tmp)], check=True)
    tmp.replace(dst)
    return dst


def run(cmd: list[str], log: Path) -> float:
    """Run a README command, teeing its stderr into ``log``; returns the wall time."""
    t0 = time.perf_counter()
    print("$ " + " ".join(cmd), flush=True)
    with open(log, "w") as fh:
        proc = subprocess.run(cmd, stderr=subprocess.STDOUT, stdout=fh, text=True)
    lines = [ln for ln in log.read_text().replace("\r", "\n").splitlines()
             if ln.startswith("restorer:")]
    for ln in lines:
        print("  " + ln)
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}); see {log}")
    return time.perf_counter() - t0


# ----------------------------------------------------------------------------- the baseline
def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU())


class PlainUNet(nn.Module):
    def __init__(self, base: int = 16, depth: int = 3) -> None:
        super().__init__()
        w = [base * 2**i for i in range(depth + 1)]
        self.inc = _block(1, w[0])
        self.downs = nn.ModuleList(_block(w[i], w[i + 1]) for i in range(depth))
        self.ups = nn.ModuleList(nn.ConvTranspose2d(w[i + 1], w[i], 2, 2)
                                 for i in reversed(range(depth)))
        self.dec = nn.ModuleList(_block(2 * w[i], w[i]) for i in reversed(range(depth)))
        self.out = nn.Conv2d(w[0], 2, 1)
        self.depth = depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        m = 2**self.depth
        x = nn.functional.pad(x, (0, (-w) % m, 0, (-h) % m), mode="replicate")
        skips = [self.inc(x)]
        for d in self.downs:
            skips.append(d(nn.functional.max_pool2d(skips[-1], 2)))
        y = skips.pop()
        for up, dec in zip(self.ups, self.dec, strict=True):
            y = dec(torch.cat([up(y), skips.pop()], 1))
        return torch.tanh(self.out(y))[..., :h, :w]


def baseline(take_a: Path, minutes: float, short: int = 128) -> tuple[Colouriser, dict[str, Any]]:
    info = probe(take_a)
    s = short / min(info.width, info.height)
    size = (round(info.width * s / 8) * 8, round(info.height * s / 8) * 8)
    L, AB = [], []
    with FrameReader(info, mode="rgb", size=size) as reader:
        for n, f in reader:
            if n % 2 == 0:
                lab = rgb8_to_lab(f)
                L.append(lab[..., 0] / 50.0 - 1.0)
                AB.append(lab[..., 1:].transpose(2, 0, 1) / 110.0)
    x_all = torch.from_numpy(np.stack(L)[:, None].astype(np.float32))
    y_all = torch.from_numpy(np.stack(AB).astype(np.float32))
    torch.manual_seed(0)
    net = PlainUNet()
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    t0, steps = time.perf_counter(), 0
    while time.perf_counter() - t0 < minutes * 60:
        idx = torch.randint(0, len(x_all), (16,))
        loss = (net(x_all[idx]) - y_all[idx]).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        steps += 1
    train_s = time.perf_counter() - t0
    meta = ModelMeta(arch={"arch": "plain-unet", "depth": 3}, working_size=short,
                     name="baseline", training={"mean_ab": None})
    stats = {"frames": len(x_all), "steps": steps, "train_s": train_s,
             "samples_per_s": 16 * steps / train_s, "size": f"{size[0]}x{size[1]}"}
    return Colouriser.from_net(net.eval(), meta, device="cpu"), stats


def _total_steps(log: Path) -> int | None:
    """Steps of the whole run, from train's summary (the model file records the best step)."""
    m = re.search(r"restorer: (\d+) steps in", log.read_text())
    return int(m.group(1)) if m else None


# ----------------------------------------------------------------------------- one clip
def bench_clip(clip: Clip, work: Path, minutes: float) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    src = DATA / clip.file
    take_a = cut(src, work / f"{clip.name}_take_a.mkv", clip.a)
    take_b = cut(src, work / f"{clip.name}_take_b.mkv", clip.b)
    exe = [sys.executable, "-m", "restorer.cli"]
    ds, model, rep = work / "show.dataset", work / "show.safetensors", work / "eval.json"
    for p in (model, Path(f"{model}.state.safetensors")):
        p.unlink(missing_ok=True)
    t_build = run([*exe, "dataset", "build", str(take_a), "-o", str(ds), "--overwrite",
                   "--quiet"], work / "build.log")
    t_train = run([*exe, "train", str(ds), "-o", str(model), "--minutes", f"{minutes:g}",
                   "--quiet"], work / "train.log")
    run([*exe, "evaluate", str(model), str(take_b), "--json", str(rep), "--quiet"],
        work / "eval.log")
    print((work / "eval.log").read_text())
    product = json.loads(rep.read_text())
    manifest = json.loads((ds / "manifest.json").read_text())
    from safetensors import safe_open
    with safe_open(str(model), "pt") as f:
        training = json.loads(f.metadata()["restorer"])["training"]

    print(f"baseline: training {minutes:g} min ...", flush=True)
    col, bstats = baseline(take_a, minutes)
    base = evaluate_model(col, take_b)
    return {
        "clip": clip.name, "targets": clip.targets,
        "restorer": {"report": product, "build_s": t_build, "train_wall_s": t_train,
                     "train_frames": manifest["splits"]["train"]["count"],
                     "val_frames": manifest["splits"]["val"]["count"],
                     "steps": _total_steps(work / "train.log") or training.get("steps"),
                     "samples_per_s": training.get("samples_per_s"),
                     "train_s": training.get("train_s"), "choices": training.get("choices")},
        "baseline": {"report": base, **bstats},
    }


def table(res: dict[str, Any]) -> str:
    rows = []
    head = (f"{'':10s} {'frames':>7s} {'steps':>6s} {'samp/s':>7s} {'dE2000':>7s} "
            f"{'dE C>10':>7s} {'colour ratio':>12s} {'PSNR':>6s} {'CDC/GT':>7s}")
    rows.append(head)
    for who in ("restorer", "baseline"):
        r = res[who]
        m = r["report"]["rows"]["model"]
        frames = r.get("train_frames", r.get("frames"))
        cdc = m.get("cdc_ratio")
        rows.append(f"{who:10s} {frames:>7d} {r['steps']:>6d} {r['samples_per_s']:>7.1f} "
                    f"{m['delta_e2000']:>7.2f} {m['delta_e2000_coloured'] or float('nan'):>7.2f} "
                    f"{m['colourfulness_ratio']:>12.2f} {m['psnr']:>6.2f} "
                    f"{cdc if cdc is not None else float('nan'):>7.2f}")
    g = res["restorer"]["report"]["rows"]["grey"]
    rows.append(f"{'grey':10s} {'':>7s} {'':>6s} {'':>7s} {g['delta_e2000']:>7.2f} "
                f"{g['delta_e2000_coloured'] or float('nan'):>7.2f} {0.0:>12.2f} "
                f"{g['psnr']:>6.2f}")
    rm = res["restorer"]["report"]["rows"]["model"]
    bm = res["baseline"]["report"]["rows"]["model"]
    de = 1 - rm["delta_e2000"] / bm["delta_e2000"]
    dec = (1 - rm["delta_e2000_coloured"] / bm["delta_e2000_coloured"]
           if rm["delta_e2000_coloured"] and bm["delta_e2000_coloured"] else float("nan"))
    rows.append(f"restorer vs baseline: dE2000 {100 * de:+.0f}% lower, dE on coloured pixels "
                f"{100 * dec:+.0f}% lower (targets: {res['targets']})")
    return "\n".join(rows)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clips", default="franck,bbb", help="comma-separated: franck, bbb")
    p.add_argument("--minutes", type=float, default=10.0, help="training budget of each run")
    p.add_argument("--work", type=Path, default=Path("/tmp/restorer-show-bench"))
    p.add_argument("--json", type=Path, default=None, help="also write all figures here")
    a = p.parse_args()
    results = []
    for name in a.clips.split(","):
        res = bench_clip(CLIPS[name.strip()], a.work / name.strip(), a.minutes)
        results.append(res)
        print(f"\n== {name}: README defaults vs plain baseline, {a.minutes:g} min each ==")
        print(table(res), flush=True)
    if a.json:
        a.json.write_text(json.dumps(results, indent=2, default=float))
    print("\n== summary ==")
    for res in results:
        print(f"-- {res['clip']}\n{table(res)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
