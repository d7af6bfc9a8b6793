"""Training defaults chosen from the data, the budget and the device.

A user runs ``restorer train show.dataset -o show.safetensors --minutes 30`` and nothing else, so
every setting left at ``None`` (``"auto"``) in :class:`TrainConfig` is decided here, and each
decision comes back as one line saying what was chosen and why. Flags still override each one.

The rules, and the measurements behind them, are in the README ("Train on your own show"):

* **Working size** follows the sources: half their short side, clamped to 128..176 and rounded
  to 16. Chroma carries little detail, and the engine's export speed scales with these pixels.
* **Crop**: the whole frame at the working size when every training frame has one shape (a show
  is one format); otherwise the largest window every frame holds.
* **Network**: on a CPU a U-Net of base 16, depth 3 (in bf16 it runs as fast as base 12 and
  learns a show better); on a GPU, where compute is cheap, base 32, depth 4.
* **Start**: from random weights. Fine-tuning the shipped general model (``--init``) was
  measured and did worse on a show in the same time: its colours have to be unlearnt first.
* **Precision**: bfloat16 autocast on CPUs with native bf16 (AVX512-BF16 / AMX: about 2x the
  samples per second), fp16 autocast on CUDA, else fp32.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from restorer.checkpoint import read_meta
from restorer.data.dataset import common_crop
from restorer.data.store import FrameStore
from restorer.look import DEFAULT_WORKING_SIZE
from restorer.train.config import TrainConfig

CPU_ARCH = {"arch": "unet", "base": 16, "depth": 3}
GPU_ARCH = {"arch": "unet", "base": 32, "depth": 4}
WORKING_MIN, WORKING_MAX = 128, 176


def cpu_has_bf16() -> bool:
    """True when oneDNN runs bfloat16 natively on this CPU (AVX512-BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def source_short_side(manifest: dict[str, Any]) -> int | None:
    """The median short side of the dataset's video sources (None for photos only)."""
    sides = sorted(min(int(s["width"]), int(s["height"])) for s in manifest["sources"]
                   if s.get("kind") == "video" and s.get("width") and s.get("height"))
    return sides[len(sides) // 2] if sides else None


def resolve(cfg: TrainConfig, device: torch.device) -> list[str]:
    """Fill every automatic field of ``cfg`` in place; returns one line per decision."""
    store = FrameStore(cfg.dataset, "train")
    manifest = store.manifest
    lines: list[str] = []

    if cfg.working_size is None:
        short = source_short_side(manifest)
        if short is None:
            cfg.working_size = DEFAULT_WORKING_SIZE
            lines.append(f"working size {DEFAULT_WORKING_SIZE}: photos only, the engine's "
                         "general default")
        else:
            ws = int(round(min(WORKING_MAX, max(WORKING_MIN, short / 2)) / 16) * 16)
            cfg.working_size = ws
            lines.append(f"working size {ws}: half the sources' {short}-pixel short side, kept "
                         f"within {WORKING_MIN}..{WORKING_MAX} so export stays fast "
                         "(--working-size to change)")

    if cfg.init is not None:
        cfg.arch = dict(read_meta(cfg.init).arch)  # fine-tuning keeps the model's network
        lines.append(f"fine-tuning {Path(cfg.init).name}: its network, U-Net base "
                     f"{cfg.arch.get('base')}, depth {cfg.arch.get('depth')}")
    else:
        lines.append("starting from random weights (--init MODEL to fine-tune one)")
    if cfg.arch is None:
        cfg.arch = dict(GPU_ARCH if device.type == "cuda" else CPU_ARCH)
        why = "a GPU affords a wider one" if device.type == "cuda" else "sized for a CPU"
        lines.append(f"network U-Net base {cfg.arch['base']}, depth {cfg.arch['depth']}: {why} "
                     "(--base/--depth to change)")

    shapes = store.frame_shapes()
    if cfg.crop is None:
        multiple = 2 ** int(cfg.arch.get("depth", 3))
        h, w = common_crop(shapes, cfg.working_size, multiple)
        cfg.crop_hw = [h, w]
        what = "the whole frame" if len(shapes) == 1 else \
            f"the largest window all {len(shapes)} frame shapes hold"
        lines.append(f"training on {w}x{h}: {what} at the working size (--crop to change)")
    else:
        cfg.crop_hw = [cfg.crop, cfg.crop]

    if cfg.precision == "auto":
        if device.type == "cuda":
            cfg.precision = "fp16" if cfg.amp else "fp32"
        elif device.type == "cpu" and cpu_has_bf16():
            cfg.precision = "bf16"
        else:
            cfg.precision = "fp32"
        reasons = {"fp16": "CUDA mixed precision", "bf16": "this CPU computes bfloat16 natively, "
               "about twice as fast", "fp32": "no fast reduced precision on this device"}
        lines.append(f"precision {cfg.precision}: {reasons[cfg.precision]} (--precision to change)")

    if cfg.minutes:
        lines.append(f"learning rate {cfg.lr:g}, warm-up {cfg.warmup_steps} steps, then cosine "
                     f"decay to {cfg.lr * cfg.min_lr_ratio:g} over the {cfg.minutes:g}-minute "
                     "budget; the best validation checkpoint is kept")
    return lines


def describe_dataset(manifest: dict[str, Any], name: str) -> str:
    """One line on what is being trained on, from the manifest already read."""
    train, val = (manifest["splits"][s]["count"] for s in ("train", "val"))
    return f"dataset {name}: {train:,} training and {val:,} validation frames"
