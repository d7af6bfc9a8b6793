"""Training throughput: data loader alone, model step alone, and the whole loop (samples/s).

    python benchmarks/train_throughput.py [--dataset DIR] [--steps 30] [--batch 16] [--crop 128]
        [--workers 2] [--threads 0] [--device auto] [--gan] [--rebalance 1]

Without --dataset it builds a throwaway dataset from a generated 10 s clip. The ratio
"loop / model step" shows what the data pipeline costs; ~1.0 means the loader keeps up.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from restorer.data import Augment, BuildOptions, ColourDataset, build_dataset
from restorer.engine import pick_device
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


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", type=Path)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--gan", action="store_true")
    p.add_argument("--rebalance", type=float, default=0.0)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    tmp = tempfile.TemporaryDirectory()
    ds_path = a.dataset or _synthetic(Path(tmp.name))
    device = pick_device(a.device)

    ds = ColourDataset(ds_path, "train", crop=a.crop, augment=Augment())
    loader = DataLoader(ds, batch_size=a.batch, shuffle=True, num_workers=a.workers,
                        drop_last=True)
    n, t0 = 0, time.perf_counter()
    while n < a.steps * a.batch:
        for x, _ in loader:
            n += x.shape[0]
            if n >= a.steps * a.batch:
                break
    load_sps = n / (time.perf_counter() - t0)

    net = build_net({"arch": "unet", "base": 16, "depth": 3}).to(device).train()
    opt = torch.optim.AdamW(net.parameters(), 1e-3)
    x = torch.randn(a.batch, 1, a.crop, a.crop, device=device)
    y = torch.rand(a.batch, 2, a.crop, a.crop, device=device) - 0.5
    for i in range(a.steps + 3):
        if i == 3:  # warm-up done
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        loss = (net(x) - y).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    step_sps = a.steps * a.batch / (time.perf_counter() - t0)

    cfg = TrainConfig(dataset=str(ds_path), out=str(Path(tmp.name) / "bench.safetensors"),
                      crop=a.crop, batch_size=a.batch, steps=a.steps, val_every=10**9,
                      val_frames=4, num_workers=a.workers, device=a.device, gan=a.gan,
                      rebalance=a.rebalance)
    res = train(replace(cfg), progress=False)
    print(f"device {device}, torch threads {torch.get_num_threads()}, batch {a.batch}, "
          f"crop {a.crop}, workers {a.workers}")
    print(f"data loader alone : {load_sps:8.1f} samples/s")
    print(f"model step alone  : {step_sps:8.1f} samples/s (U-Net base 16 depth 3, L1)")
    print(f"training loop     : {res.samples_per_s:8.1f} samples/s, waited for data "
          f"{res.data_wait_s:.1f} s of {res.train_s:.1f} s (gan={a.gan}, "
          f"rebalance={a.rebalance}); loop/step ratio {res.samples_per_s / step_sps:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
