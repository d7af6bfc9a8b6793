"""Training loop: loss goes down (regression and GAN), resume, DDP on CPU, CLI, errors."""

from __future__ import annotations

import os
import socket
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from clips import make_clip
from safetensors.torch import load_file

from restorer.checkpoint import load_model
from restorer.cli import main
from restorer.data import BuildOptions, build_dataset
from restorer.errors import DatasetError, ModelError
from restorer.nets import build_net
from restorer.train import TrainConfig
from restorer.train.loop import load_state, restore_state, state_path, train

TINY = {"arch": "unet", "base": 4, "depth": 2}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """42x32 frames from a generated clip: ~20 training frames, two validation blocks."""
    root = tmp_path_factory.mktemp("train")
    clip = make_clip(root / "c.mp4", size=(64, 48), seconds=1.2, fps="25", audio=False)
    opts = BuildOptions(size=32, every="1", dup_threshold=0.0, segment_seconds=0.16,
                        val_fraction=0.25, val_gap_seconds=0.04)
    for _ in build_dataset([clip], root / "d.dataset", opts):
        pass
    return root / "d.dataset"


def _cfg(dataset: Path, out: Path, **kw) -> TrainConfig:
    base = TrainConfig(dataset=str(dataset), out=str(out), arch=dict(TINY), crop=32,
                       batch_size=8, lr=1e-2, warmup_steps=1, steps=20, val_every=10,
                       val_frames=4, num_workers=0, augment=False, device="cpu", threads=1,
                       working_size=32, precision="fp32",
                       disc={"arch": "patchgan", "base": 8, "layers": 2})
    return replace(base, **kw)


def _losses(cfg: TrainConfig, key: str = "pix") -> list[float]:
    seen: list[float] = []
    train(cfg, progress=False, on_step=lambda step, losses: seen.append(losses[key]))
    return seen


def test_regression_lowers_the_loss_and_writes_a_model(dataset, tmp_path):
    out = tmp_path / "m.safetensors"
    seen = _losses(_cfg(dataset, out, rebalance=1.0, colourfulness_weight=0.1))
    assert len(seen) == 20
    assert np.mean(seen[-3:]) < 0.8 * np.mean(seen[:3])
    net, meta = load_model(out)
    assert meta.working_size == 32 and meta.arch["base"] == 4
    assert len(meta.training["mean_ab"]) == 2
    assert meta.training["samples_per_s"] > 0 and meta.training["config"]["rebalance"] == 1.0
    assert meta.training["provenance"]["train_frames"] > 0
    assert {"val_delta_e", "val_l1", "val_colourfulness_ratio"} <= set(meta.metrics)
    assert sorted(p.name for p in (tmp_path / "m.safetensors.val").iterdir()) == [
        "step_000010.png", "step_000020.png"]


def test_gan_mode_lowers_the_pixel_loss(dataset, tmp_path):
    out = tmp_path / "g.safetensors"
    seen = _losses(_cfg(dataset, out, gan=True, gan_weight=0.01))
    assert np.mean(seen[-3:]) < 0.8 * np.mean(seen[:3])
    meta, tensors = load_state(state_path(out))
    assert "opt_d" in meta and any(k.startswith("disc.") for k in tensors)


def test_resume_continues_from_the_same_step_and_weights(dataset, tmp_path):
    out = tmp_path / "r.safetensors"
    cfg = _cfg(dataset, out, steps=4, val_every=4, gan=True)
    train(cfg, progress=False)
    meta, tensors = load_state(state_path(out))
    assert meta["step"] == 4
    # Restoring into fresh objects gives back the saved weights and optimiser moments.
    model = build_net(TINY)
    opt = torch.optim.AdamW(model.parameters())
    disc = build_net(cfg.disc)
    opt_d = torch.optim.AdamW(disc.parameters())
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    restored = restore_state(state_path(out), model, opt, disc, opt_d, scaler)
    assert restored["step"] == 4
    for k, v in model.state_dict().items():
        assert torch.equal(v, tensors[f"model.{k}"]), k
    assert torch.equal(opt.state_dict()["state"][0]["exp_avg"], tensors["opt.0.exp_avg"])
    assert int(opt.state_dict()["state"][0]["step"]) == 4
    # Training on continues at step 5, and ends at the new limit.
    steps: list[int] = []
    res = train(replace(cfg, resume=True, steps=6), progress=False,
                on_step=lambda step, losses: steps.append(step))
    assert steps == [5, 6] and res.step == 6
    assert load_state(state_path(out))[0]["step"] == 6


def _ddp_worker(rank: int, world: int, port: int, cfg: TrainConfig) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    train(cfg, progress=False)


def test_ddp_two_cpu_processes(dataset, tmp_path):
    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "ddp.safetensors"
    cfg = _cfg(dataset, out, steps=3, val_every=3, batch_size=2, minutes=5.0)
    mp.spawn(_ddp_worker, args=(2, port, cfg), nprocs=2, join=True)
    _, meta = load_model(out)
    assert meta.training["hardware"].startswith("2 x cpu")
    assert meta.training["steps"] == 3
    assert load_state(state_path(out))[0]["step"] == 3


def test_cli_train_and_errors(dataset, tmp_path, capsys):
    out = tmp_path / "cli.safetensors"
    args = ["train", str(dataset), "-o", str(out), "--steps", "2", "--val-every", "2",
            "--base", "4", "--depth", "2", "--crop", "32", "--batch", "4", "--workers", "0",
            "--quiet", "--device", "cpu", "--no-augment", "--threads", "1"]
    assert main(args) == 0
    assert "samples/s" in capsys.readouterr().err
    _, meta = load_model(out)
    assert meta.training["command"].startswith("restorer ")
    # --init fine-tunes from that file
    assert main([*args[:3], str(tmp_path / "ft.safetensors"), *args[4:], "--init", str(out)]) == 0
    capsys.readouterr()
    # missing dataset, nothing to resume: one line each, exit 1
    assert main(["train", str(tmp_path / "nope.dataset"), "-o", str(out), "--quiet"]) == 1
    assert main([*args[:3], str(tmp_path / "new.safetensors"), *args[4:], "--resume"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "not found" in err[0] and "nothing to resume" in err[1]
    with pytest.raises(DatasetError):
        train(_cfg(tmp_path / "nope.dataset", out), progress=False)
    (tmp_path / "junk.state.safetensors").write_bytes(b"junk")
    with pytest.raises(ModelError):
        load_state(tmp_path / "junk.state.safetensors")
    assert load_file(str(out))  # the output itself is a plain safetensors file


def test_defaults_are_chosen_from_the_data_and_said(dataset, tmp_path, capsys):
    out = tmp_path / "auto.safetensors"
    # The README's command, with only a (tiny) budget: every setting is picked and explained.
    assert main(["train", str(dataset), "-o", str(out), "--minutes", "0.05", "--workers", "0",
                 "--quiet"]) == 0
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("restorer: ")]
    said = "\n".join(lines)
    for what in ("training and", "working size 128:", "network U-Net base 16, depth 3",
                 "training on 40x32: the whole frame", "precision ", "learning rate",
                 "waiting for data", "validation", "best validation: l1"):
        assert what in said, what
    _, meta = load_model(out)
    # 64x48 source: half of 48 is below the floor, so 128, and a 42x32 stored frame is never
    # enlarged (nor is it at inference): whole frames, cut to multiples of 8
    assert meta.working_size == 128 and meta.arch["base"] == 16
    assert meta.training["config"]["crop_hw"] == [32, 40]
    assert meta.training["choices"] and meta.metrics["val_delta_e"] > 0
