"""Training throughput: data loader alone, model step per precision/layout, the whole loop.

    python benchmarks/train_throughput.py [--dataset DIR] [--steps 30] [--batch 16]
        [--size 144x176] [--workers 2] [--threads 0] [--device auto] [--compile]

Without --dataset it builds a throwaway dataset from a generated 10 s clip. The model step is
timed (median of ``--steps`` steps after warm-up) in fp32, fp32 with channels_last, and with
bf16 autocast (CPU) or fp16 autocast (CUDA), with and without channels_last, so the speed-up
``restorer train``'s automatic precision buys is measured in the same run; ``--compile`` adds
torch.compile. The ratio "loop / model step" shows what the data pipeline and validation cost;
~1.0 means they keep up.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from restorer.data import Augment, BuildOptions, ColourDataset, build_dataset
from restorer.device import pick_device
from restorer.media import ffmpeg_exe
from restorer.nets import build_net
from restorer.train import TrainConfig
from restorer.train.loop import train


def _synthetic(root: Path) -> Path:
    clip = root / "clip.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc2=size=320x240:rate=25:duration=10", "-c:v", "libx264",
                    "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(clip)], check=True)
    for _ in build_dataset([clip], root / "bench.dataset",
                           BuildOptions(size=192, every="1", dup_threshold=0.0)):
        pass
    return root / "bench.dataset"


def _step_rate(net_spec: dict, shape: tuple[int, int, int, int], device: torch.device,
               steps: int, amp: torch.dtype | None, channels_last: bool,
               compile_: bool = False) -> float:
    """Median samples/s of forward + backward + AdamW on random data."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = build_net(net_spec).to(device, memory_format=fmt).train()
    step_net = torch.compile(net) if compile_ else net
    opt = torch.optim.AdamW(net.parameters(), 1e-3)
    x = torch.randn(*shape, device=device).contiguous(memory_format=fmt)
    y = torch.rand(shape[0], 2, *shape[2:], device=device) - 0.5
    times = []
    for i in range(steps + 3):
        t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            pred = step_net(x)
        loss = (pred.float() - y).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= 3:  # warm-up (and compilation) done
            times.append(time.perf_counter() - t0)
    return shape[0] / statistics.median(times)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", type=Path)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--size", default="144x176", help="training window HxW (default: a 4:5 "
                   "SD frame at working size 144)")
    p.add_argument("--base", type=int, default=16)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--compile", action="store_true", help="also time torch.compile")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    h, w = (int(v) for v in a.size.lower().split("x"))
    tmp = tempfile.TemporaryDirectory()
    ds_path = a.dataset or _synthetic(Path(tmp.name))
    device = pick_device(a.device)
    print(f"device {device}, torch threads {torch.get_num_threads()}, batch {a.batch}, "
          f"window {w}x{h}, U-Net base {a.base} depth 3, workers {a.workers}")

    ds = ColourDataset(ds_path, "train", working_size=h, crop=(h, w), augment=Augment(p=0.0))
    loader = DataLoader(ds, batch_size=a.batch, shuffle=True, num_workers=a.workers,
                        drop_last=True)
    n, t0 = 0, time.perf_counter()
    while n < a.steps * a.batch:
        for x, _ in loader:
            n += x.shape[0]
            if n >= a.steps * a.batch:
                break
    print(f"data loader alone        : {n / (time.perf_counter() - t0):8.1f} samples/s")

    spec = {"arch": "unet", "base": a.base, "depth": 3}
    shape = (a.batch, 1, h, w)
    low = torch.float16 if device.type == "cuda" else torch.bfloat16
    low_name = "fp16" if device.type == "cuda" else "bf16"
    variants = [("fp32", None, False), ("fp32 + channels_last", None, True),
                (f"{low_name} autocast", low, False), (f"{low_name} + channels_last", low, True)]
    if a.compile:
        variants.append((f"{low_name} + channels_last + compile", low, True))
    rates = {}
    for name, amp, cl in variants:
        rates[name] = _step_rate(spec, shape, device, a.steps, amp, cl,
                                 compile_="compile" in name)
        print(f"model step, {name:26s}: {rates[name]:8.1f} samples/s "
              f"({rates[name] / rates['fp32']:.2f}x fp32)")

    cfg = TrainConfig(dataset=str(ds_path), out=str(Path(tmp.name) / "bench.safetensors"),
                      arch=spec, working_size=h, batch_size=a.batch, steps=a.steps,
                      val_every=10**9, val_frames=4, num_workers=a.workers, device=a.device)
    res = train(replace(cfg), progress=False)
    best = max(rates.values())
    print(f"training loop (defaults): {res.samples_per_s:8.1f} samples/s, waited for "
          f"data {res.data_wait_s:.1f} s of {res.train_s:.1f} s; loop / fastest step "
          f"{res.samples_per_s / best:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
