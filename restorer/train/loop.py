"""The training loop: readable top to bottom, nanoGPT style.

One function, :func:`train`, does: set up (single process or torchrun/DDP) -> data -> model(s)
-> optimiser(s) -> optional resume -> loop { batch, lr, forward, losses, backward, step,
validate + keep the best } -> final validation -> summary.

Files it writes, next to ``cfg.out``:

* ``cfg.out``                     the best-by-validation model (``restorer.checkpoint`` format)
* ``<out>.state.safetensors``      resume state: weights, optimiser tensors (safetensors) and
                                   everything else (step, config, optimiser structure, scaler,
                                   history) as JSON in the header -- no pickle anywhere
* ``<out>.val/step_NNNNNN.png``    validation grids: grey input | prediction | truth

Multi-GPU: ``torchrun --nproc_per_node N -m restorer train ...``; each rank reads its share of
the data (DistributedSampler), rank 0 validates and saves.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.distributed as dist
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from restorer.checkpoint import ModelMeta, load_model, save_model, save_tensors
from restorer.color import AB_SCALE, L_SCALE, lab_to_rgb_t
from restorer.data.dataset import Augment, ColourDataset
from restorer.data.store import read_manifest
from restorer.device import pick_device
from restorer.errors import DatasetError, ModelError
from restorer.metrics import colourfulness, delta_e2000_split, psnr
from restorer.nets import build_net
from restorer.train.auto import describe_dataset, resolve
from restorer.train.config import TrainConfig
from restorer.train.losses import (
    RebalanceWeights,
    colourfulness_loss,
    gan_loss,
    pixel_loss,
)

STATE_KEY = "restorer_train_state"


@dataclass
class TrainResult:
    out: Path
    step: int
    best: dict[str, float]
    samples_per_s: float
    data_wait_s: float
    train_s: float
    history: list[dict[str, float]] = field(default_factory=list)
    step_s: float = 0.0            # forward, backward and optimiser steps
    val_s: float = 0.0             # validation and checkpoint writing
    choices: list[str] = field(default_factory=list)

    def summary(self) -> str:
        figs = ", ".join(f"{k} {v:.3f}" for k, v in self.best.items())
        t = max(self.train_s, 1e-9)
        return (f"{self.step} steps in {self.train_s / 60:.1f} min, "
                f"{self.samples_per_s:.1f} samples/s; time: steps {100 * self.step_s / t:.0f}%, "
                f"waiting for data {100 * self.data_wait_s / t:.0f}%, validation "
                f"{100 * self.val_s / t:.0f}%; best validation: "
                f"{figs or 'none (no validation frames)'}; model: {self.out}")


def state_path(out: str | os.PathLike[str]) -> Path:
    return Path(f"{out}.state.safetensors")


# ----------------------------------------------------------------------------- distributed
def _setup_distributed(cfg: TrainConfig) -> tuple[int, int, torch.device]:
    """(rank, world size, device); initialises the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, pick_device(cfg.device)
    local = int(os.environ.get("LOCAL_RANK", "0"))
    wants_cuda = cfg.device in ("auto", "cuda") and torch.cuda.is_available()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if wants_cuda else "gloo")
    if wants_cuda:
        torch.cuda.set_device(local)
        return dist.get_rank(), world, torch.device("cuda", local)
    return dist.get_rank(), world, torch.device("cpu")


def _unwrap(m: nn.Module) -> nn.Module:
    return m.module if isinstance(m, nn.parallel.DistributedDataParallel) else m


# ----------------------------------------------------------------------------- state files
def _flatten_optim(opt: torch.optim.Optimizer, prefix: str
                   ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Optimiser state -> (tensors for safetensors, JSON structure naming them)."""
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    state: dict[str, dict[str, Any]] = {}
    for pid, st in sd["state"].items():
        entry: dict[str, Any] = {}
        for k, v in st.items():
            if torch.is_tensor(v):
                name = f"{prefix}.{pid}.{k}"
                tensors[name] = v
                entry[k] = {"tensor": name}
            else:
                entry[k] = {"value": v}
        state[str(pid)] = entry
    return tensors, {"state": state, "param_groups": sd["param_groups"]}


def _unflatten_optim(struct: dict[str, Any], tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    state = {int(pid): {k: tensors[v["tensor"]] if "tensor" in v else v["value"]
                        for k, v in entry.items()}
             for pid, entry in struct["state"].items()}
    return {"state": state, "param_groups": struct["param_groups"]}


def save_state(path: Path, *, cfg: TrainConfig, model: nn.Module, opt: torch.optim.Optimizer,
               disc: nn.Module | None, opt_d: torch.optim.Optimizer | None,
               scaler: torch.amp.GradScaler, step: int, best: dict[str, float],
               elapsed: float, history: list[dict[str, float]]) -> None:
    tensors = {f"model.{k}": v for k, v in _unwrap(model).state_dict().items()}
    t_opt, s_opt = _flatten_optim(opt, "opt")
    tensors.update(t_opt)
    meta: dict[str, Any] = {"step": step, "best": best, "elapsed": elapsed, "history": history,
                            "config": asdict(cfg), "opt": s_opt, "scaler": scaler.state_dict()}
    if disc is not None and opt_d is not None:
        tensors.update({f"disc.{k}": v for k, v in _unwrap(disc).state_dict().items()})
        t_d, s_d = _flatten_optim(opt_d, "opt_d")
        tensors.update(t_d)
        meta["opt_d"] = s_d
    tensors["rng.torch"] = torch.get_rng_state()
    save_tensors(path, tensors, {STATE_KEY: json.dumps(meta)})


def load_state(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    from safetensors import safe_open

    if not path.is_file():
        raise ModelError(f"nothing to resume: {path} does not exist (train once without --resume)")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {})[STATE_KEY])
        tensors = load_file(str(path))
    except (SafetensorError, OSError, KeyError, ValueError) as exc:
        raise ModelError(f"{path.name} is not a valid training state ({exc}); "
                         "delete it and train without --resume") from exc
    return meta, tensors


def restore_state(path: Path, model: nn.Module, opt: torch.optim.Optimizer,
                  disc: nn.Module | None, opt_d: torch.optim.Optimizer | None,
                  scaler: torch.amp.GradScaler) -> dict[str, Any]:
    """Load a state file into fresh model(s)/optimiser(s); returns its JSON part (step, ...)."""
    meta, tensors = load_state(path)
    try:
        _unwrap(model).load_state_dict(_sub(tensors, "model"))
        opt.load_state_dict(_unflatten_optim(meta["opt"], tensors))
        if disc is not None and opt_d is not None:
            if "opt_d" not in meta:
                raise ModelError("the saved state has no discriminator; resume without --gan")
            _unwrap(disc).load_state_dict(_sub(tensors, "disc"))
            opt_d.load_state_dict(_unflatten_optim(meta["opt_d"], tensors))
    except (RuntimeError, KeyError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{path.name} does not match this run's network or settings: "
                         f"{first}") from exc
    if meta.get("scaler"):
        scaler.load_state_dict(meta["scaler"])
    torch.set_rng_state(tensors["rng.torch"])
    return meta


def _sub(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    n = len(prefix) + 1
    return {k[n:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


# ----------------------------------------------------------------------------- validation
@torch.no_grad()
def validate(model: nn.Module, val: ColourDataset, device: torch.device, max_frames: int,
             grid_path: Path | None = None, batch: int = 16) -> dict[str, float]:
    """Score the model on up to ``max_frames`` validation frames (evenly spread)."""
    model.eval()
    spread = np.linspace(0, len(val) - 1, min(len(val), max_frames)).round().astype(int)
    idx = sorted(set(spread.tolist()))
    l1, de, dec, ps, cf_p, cf_t = [], [], [], [], [], []
    grid: list[np.ndarray] = []
    # Whole frames at the working size; frames of one shape go through in one batch.
    by_shape: dict[tuple[int, int], list[int]] = {}
    for j in idx:
        by_shape.setdefault(val.store.shape_of(j), []).append(j)
    chunks = [js[i: i + batch] for js in by_shape.values() for i in range(0, len(js), batch)]
    for chunk in chunks:
        xs, ys = zip(*(val[j] for j in chunk), strict=True)
        x, y = torch.stack(xs).to(device), torch.stack(ys).to(device)
        pred = model(x).float()
        l1.append(float((pred - y).abs().mean()) * AB_SCALE)
        L = (x + 1.0) * L_SCALE
        rgb_p = _to_rgb8(torch.cat([L, pred * AB_SCALE], 1))
        rgb_t = _to_rgb8(torch.cat([L, y * AB_SCALE], 1))
        for k, (p, t) in enumerate(zip(rgb_p, rgb_t, strict=True)):
            d, c = delta_e2000_split(p, t)
            de.append(d)
            if c is not None:
                dec.append(c)
            ps.append(min(psnr(p, t), 99.0))
            cf_p.append(colourfulness(p))
            cf_t.append(colourfulness(t))
            if len(grid) < 4:  # grey input | prediction | truth
                g = _to_rgb8(torch.cat([L[k: k + 1], torch.zeros_like(pred[k: k + 1])], 1))[0]
                if not grid or grid[0].shape == (g.shape[0], 3 * g.shape[1], 3):
                    grid.append(np.concatenate([g, p, t], 1))
    model.train()
    if grid_path is not None and grid:
        grid_path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(grid_path), cv2.cvtColor(np.concatenate(grid, 0), cv2.COLOR_RGB2BGR))
    mean_t = float(np.mean(cf_t))
    out = {"l1": float(np.mean(l1)), "delta_e": float(np.mean(de)), "psnr": float(np.mean(ps)),
           "colourfulness_ratio": float(np.mean(cf_p)) / mean_t if mean_t > 0 else 1.0}
    if dec:
        out["delta_e_coloured"] = float(np.mean(dec))
    return out


def _to_rgb8(lab: torch.Tensor) -> list[np.ndarray]:
    rgb = lab_to_rgb_t(lab.float().cpu()).permute(0, 2, 3, 1).numpy()
    return list((rgb * 255.0 + 0.5).clip(0, 255).astype(np.uint8))


# ----------------------------------------------------------------------------- the loop
def _batches(loader: DataLoader[tuple[torch.Tensor, torch.Tensor]], sampler: Any
             ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    epoch = 0
    while True:
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        yield from loader
        epoch += 1


def _lr_at(cfg: TrainConfig, step: int, frac: float) -> float:
    """Linear warmup, then cosine decay over the run (by steps or by the time budget)."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    frac = min(1.0, max(0.0, frac))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi *
                                                                                      frac)))


def _hardware(device: torch.device, world: int) -> str:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, " \
               f"{torch.get_num_threads()} threads"
    return f"{world} x {device.type}: {name}"


def train(cfg: TrainConfig, progress: bool = True,
          on_step: Callable[[int, dict[str, float]], None] | None = None) -> TrainResult:
    """Train per ``cfg``; returns the summary. Raises DatasetError / ModelError on bad inputs."""
    cfg.validate()
    rank, world, device = _setup_distributed(cfg)
    master = rank == 0
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed + rank)
    out = Path(cfg.out)

    if cfg.resume and not state_path(out).is_file():
        load_state(state_path(out))  # raises the one-line "nothing to resume" error
    # ---- defaults from the data, the budget and the device; each decision is said once
    manifest = read_manifest(cfg.dataset)
    choices = [describe_dataset(manifest, Path(cfg.dataset).name), *resolve(cfg, device)]
    if master:
        for line in choices:
            print(f"restorer: {line}", file=sys.stderr)
    assert cfg.working_size is not None and cfg.crop_hw is not None and cfg.arch is not None
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.precision)
    use_amp = amp_dtype is not None
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format

    # ---- data: lazily memory-mapped frames; each rank gets its own shard of every epoch
    train_ds = ColourDataset(cfg.dataset, "train", working_size=cfg.working_size,
                             crop=(cfg.crop_hw[0], cfg.crop_hw[1]),
                             augment=Augment(p=cfg.degrade) if cfg.augment else None,
                             seed=cfg.seed + rank)
    val_ds = ColourDataset(cfg.dataset, "val", working_size=cfg.working_size)
    if len(train_ds) == 0:
        raise DatasetError(f"{cfg.dataset} has no training frames; rebuild it with more inputs")
    if world > 1:
        sampler: Any = DistributedSampler(train_ds, num_replicas=world, rank=rank,
                                          shuffle=True, seed=cfg.seed)
    else:
        sampler = RandomSampler(train_ds, generator=torch.Generator().manual_seed(cfg.seed))
    loader = DataLoader(train_ds, batch_size=cfg.batch_size, sampler=sampler,
                        num_workers=cfg.num_workers, drop_last=len(train_ds) >= cfg.batch_size
                        * world, pin_memory=device.type == "cuda",
                        persistent_workers=cfg.num_workers > 0)

    # ---- models and optimisers
    if cfg.init:
        model, init_meta = load_model(cfg.init)
        cfg.arch = init_meta.arch
    else:
        model = build_net(cfg.arch)
    # Module.to takes memory_format at run time (documented); its overloads leave it out.
    model = model.to(device, memory_format=memory_format).train()  # type: ignore[call-overload]
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                            betas=(0.9, 0.99))
    disc = opt_d = None
    if cfg.gan:
        disc = build_net(cfg.disc).to(device).train()
        opt_d = torch.optim.AdamW(disc.parameters(), lr=cfg.disc_lr, betas=(0.5, 0.999))
    scaler = torch.amp.GradScaler("cuda", enabled=cfg.precision == "fp16")
    rebalance = (RebalanceWeights(manifest["stats"], cfg.rebalance_mix, cfg.rebalance)
                 if cfg.rebalance > 0 else None)

    # ---- resume: weights, optimiser moments, step, best figures, elapsed time
    step, elapsed_before = 0, 0.0
    best: dict[str, float] = {}
    history: list[dict[str, float]] = []
    if cfg.resume:
        meta = restore_state(state_path(out), model, opt, disc, opt_d, scaler)
        step, best = int(meta["step"]), dict(meta["best"])
        elapsed_before, history = float(meta["elapsed"]), list(meta["history"])
    if world > 1:
        model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
        if disc is not None:
            disc = nn.parallel.DistributedDataParallel(
                disc, device_ids=[device.index] if device.type == "cuda" else None)

    budget = cfg.minutes * 60.0 if cfg.minutes else None
    bar = None
    if master and progress:
        from tqdm import tqdm
        # With a time budget the step limit is only a cap; the postfix shows the time left.
        bar = tqdm(total=None if budget else cfg.steps, initial=step, unit="step",
                   dynamic_ncols=True, desc="training")

    def save_best(figures: dict[str, float]) -> None:
        meta = _model_meta(cfg, manifest, figures, step, time.perf_counter() - t_start
                           + elapsed_before, samples_per_s(), device, world)
        save_model(out, _unwrap(model), meta)

    def samples_per_s() -> float:
        return samples / max(1e-9, time.perf_counter() - t_start)

    def run_validation() -> None:
        nonlocal best
        if master:
            figures: dict[str, float] = {}
            if len(val_ds):
                figures = validate(_unwrap(model), val_ds, device, cfg.val_frames,
                                   out.with_name(out.name + ".val") / f"step_{step:06d}.png")
                history.append({"step": step, **figures})
            key = cfg.select_by
            if not best or (figures and figures[key] < best.get(key, math.inf)):
                if figures:
                    best = dict(figures)
                save_best(figures)
            save_state(state_path(out), cfg=cfg, model=model, opt=opt, disc=disc, opt_d=opt_d,
                       scaler=scaler, step=step, best=best,
                       elapsed=time.perf_counter() - t_start + elapsed_before, history=history)
            if bar is not None and figures:
                bar.write(f"step {step}: " + ", ".join(f"{k} {v:.3f}" for k, v in
                                                       figures.items()))
        if world > 1:
            dist.barrier()

    # ---- the loop
    batches = _batches(loader, sampler)
    t_start = time.perf_counter()
    samples, data_wait, last_val = 0, 0.0, step
    step_s = val_s = 0.0
    losses: dict[str, float] = {}
    while True:
        elapsed = time.perf_counter() - t_start
        stop = step >= cfg.steps or (budget is not None and elapsed + elapsed_before >= budget)
        if budget is not None and world > 1:  # every rank must stop at the same step
            flag = torch.tensor([float(stop)], device=device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            stop = bool(flag.item())
        if stop:
            break

        t0 = time.perf_counter()
        x, y = next(batches)
        data_wait += time.perf_counter() - t0
        t_step = time.perf_counter()
        x = x.to(device, non_blocking=True).contiguous(memory_format=memory_format)
        y = y.to(device, non_blocking=True)

        frac = step / cfg.steps
        if budget is not None:
            frac = max(frac, (elapsed + elapsed_before) / budget)
        lr = _lr_at(cfg, step, frac)
        for g in opt.param_groups:
            g["lr"] = lr

        with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
            pred = model(x)
        pred = pred.float()
        weight = rebalance(y) if rebalance is not None else None
        loss = pixel_loss(pred, y, cfg.loss, cfg.huber_delta, weight)
        losses = {"pix": loss.item()}
        if cfg.colourfulness_weight > 0:
            c_loss = colourfulness_loss(pred, y)
            loss = loss + cfg.colourfulness_weight * c_loss
            losses["colour"] = c_loss.item()

        if disc is not None and opt_d is not None:
            # Discriminator: real (L, ab) pairs vs generated ones, in one forward pass.
            real = torch.cat([x, y], 1)
            fake = torch.cat([x, pred.detach()], 1)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                logits = disc(torch.cat([real, fake], 0))
            n = x.shape[0]
            d_loss = 0.5 * (gan_loss(logits[:n], True) + gan_loss(logits[n:], False))
            opt_d.zero_grad(set_to_none=True)
            scaler.scale(d_loss).backward()
            scaler.step(opt_d)
            # Generator: fool the discriminator, on top of the pixel loss (pix2pix).
            with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                g_logits = disc(torch.cat([x, pred], 1))
            g_adv = gan_loss(g_logits, True)
            loss = loss + cfg.gan_weight * g_adv
            losses.update(d=d_loss.item(), adv=g_adv.item())

        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if cfg.grad_clip > 0:
            scaler.unscale_(opt)
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        scaler.step(opt)
        scaler.update()
        step += 1
        samples += x.shape[0] * world
        losses["loss"] = loss.item()
        step_s += time.perf_counter() - t_step
        if on_step is not None:
            on_step(step, losses)
        if bar is not None:
            bar.update(1)
            left = f", {max(0.0, budget - elapsed - elapsed_before) / 60:.1f} min left" \
                if budget else ""
            bar.set_postfix_str(f"loss {losses['loss']:.4f}, lr {lr:.1e}, "
                                f"{samples_per_s():.1f} samples/s{left}", refresh=False)
        if step - last_val >= cfg.val_every:
            t_val = time.perf_counter()
            run_validation()
            val_s += time.perf_counter() - t_val
            last_val = step

    # ---- end: validate the final weights too; the output keeps the best
    if step != last_val or not out.exists():
        t_val = time.perf_counter()
        run_validation()
        val_s += time.perf_counter() - t_val
    if bar is not None:
        bar.close()
    train_s = time.perf_counter() - t_start
    result = TrainResult(out=out, step=step, best=best, samples_per_s=samples_per_s(),
                         data_wait_s=data_wait, train_s=train_s, history=history,
                         step_s=step_s, val_s=val_s, choices=choices)
    if master and out.exists():
        _record_speed(out, result)
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return result


def _model_meta(cfg: TrainConfig, manifest: dict[str, Any], figures: dict[str, float],
                step: int, elapsed: float, sps: float, device: torch.device,
                world: int) -> ModelMeta:
    assert cfg.arch is not None and cfg.working_size is not None  # resolved at the start of train
    sources = [s.get("name", Path(s["path"]).name) for s in manifest["sources"]]
    videos = [s["name"] for s in manifest["sources"] if s.get("kind") == "video"]
    training = {
        "data": str(cfg.dataset),
        "sources": videos + ([f"{len(sources) - len(videos)} photos"]
                             if len(sources) > len(videos) else []),
        "provenance": {
            "train_frames": manifest["splits"]["train"]["count"],
            "val_frames": manifest["splits"]["val"]["count"],
            "size": manifest["size"], "options": manifest.get("options", {}),
            "excluded": {s["name"]: s["exclude"] for s in manifest["sources"]
                         if s.get("exclude")},
        },
        "mean_ab": manifest.get("stats", {}).get("mean_ab"),
        "command": cfg.command, "minutes": round(elapsed / 60, 2), "steps": step,
        "hardware": _hardware(device, world), "samples_per_s": round(sps, 2),
        "config": asdict(cfg),
    }
    return ModelMeta(arch=dict(cfg.arch), working_size=cfg.working_size, training=training,
                     metrics={f"val_{k}": round(v, 4) for k, v in figures.items()},
                     name=cfg.name or Path(cfg.out).stem,
                     description=cfg.description or f"U-Net trained on {Path(cfg.dataset).name}")


def _record_speed(out: Path, result: TrainResult) -> None:
    """Rewrite the final throughput figures into the saved model's metadata."""
    net, meta = load_model(out)
    meta.training["samples_per_s"] = round(result.samples_per_s, 2)
    meta.training["data_wait_s"] = round(result.data_wait_s, 2)
    meta.training["train_s"] = round(result.train_s, 1)
    meta.training["step_s"] = round(result.step_s, 1)
    meta.training["val_s"] = round(result.val_s, 1)
    meta.training["choices"] = result.choices
    save_model(out, net, meta)
