"""``restorer train DATASET -o MODEL``: train (or fine-tune) a colourisation model."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from restorer.train.config import TrainConfig


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    d = TrainConfig()
    p = sub.add_parser("train", help="train a colourisation model on a dataset",
                       description="Train a U-Net on a dataset built with `restorer dataset "
                                   "build`. The output keeps the best model by validation. "
                                   "Multi-GPU: torchrun --nproc_per_node N -m restorer.cli "
                                   "train ...")
    p.add_argument("dataset", type=Path, help="dataset folder")
    p.add_argument("-o", "--output", type=Path, required=True, help="model file (.safetensors)")
    p.add_argument("--minutes", type=float, default=None,
                   help="wall-clock budget of the whole run (time before a --resume counts); "
                        "ends with the best checkpoint (default: only --steps)")
    p.add_argument("--steps", type=int, default=d.steps, help=f"step limit (default {d.steps})")
    p.add_argument("--gan", action="store_true",
                   help="conditional GAN (PatchGAN discriminator) on top of the pixel loss")
    p.add_argument("--gan-weight", type=float, default=d.gan_weight)
    p.add_argument("--resume", action="store_true",
                   help="continue from OUTPUT.state.safetensors (same step, weights, optimiser)")
    p.add_argument("--init", type=Path, default=None,
                   help="fine-tune from this model file, keeping its network (default: random "
                        "weights, which measured better for a show than the general model)")
    p.add_argument("--base", type=int, default=None,
                   help="U-Net width (default: 16 on a CPU, 32 on a GPU)")
    p.add_argument("--depth", type=int, default=None,
                   help="U-Net stages (default: 3 on a CPU, 4 on a GPU)")
    p.add_argument("--working-size", type=int, default=None,
                   help="inference short side saved in the model; training frames are scaled "
                        "to it (default: from the sources' resolution)")
    p.add_argument("--crop", type=int, default=None,
                   help="square training crop at the working size (default: whole frames)")
    p.add_argument("--batch", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--loss", choices=["l1", "huber"], default=d.loss)
    p.add_argument("--rebalance", type=float, default=d.rebalance,
                   help="class rebalancing strength 0..1 (Zhang et al.; fights sepia)")
    p.add_argument("--colourfulness", type=float, default=d.colourfulness_weight,
                   help="weight of the colourfulness-matching term")
    p.add_argument("--no-augment", action="store_true", help="no flips, zoom or degradations")
    p.add_argument("--degrade", type=float, default=d.degrade,
                   help="probability 0..1 of each archive degradation of the input (grain, "
                        "blur, tone); raise it for noisy telerecordings (default "
                        f"{d.degrade:g})")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], default="auto",
                   help="auto: bf16 on CPUs that compute it natively, fp16 on CUDA")
    p.add_argument("--workers", type=int, default=d.num_workers, help="DataLoader workers")
    p.add_argument("--val-every", type=int, default=d.val_every, help="steps between validations")
    p.add_argument("--val-frames", type=int, default=d.val_frames)
    p.add_argument("--select-by", choices=["delta_e", "l1"], default=d.select_by)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--threads", type=int, default=0,
                   help="CPU threads for torch (default: torch's choice; 1 on a busy machine)")
    p.add_argument("--no-amp", action="store_true", help="full precision on CUDA")
    p.add_argument("--name", default="", help="model name saved in the file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    arch = None
    if args.base is not None or args.depth is not None:
        arch = {"arch": "unet", "base": args.base or (32 if args.device == "cuda" else 16),
                "depth": args.depth or 3}
    init = str(args.init) if args.init is not None else None
    return TrainConfig(
        dataset=str(args.dataset), out=str(args.output), arch=arch,
        working_size=args.working_size, crop=args.crop, batch_size=args.batch, lr=args.lr,
        steps=args.steps, minutes=args.minutes, loss=args.loss, rebalance=args.rebalance,
        colourfulness_weight=args.colourfulness, gan=args.gan, gan_weight=args.gan_weight,
        augment=not args.no_augment, degrade=args.degrade, precision=args.precision,
        num_workers=args.workers, val_every=args.val_every,
        val_frames=args.val_frames, select_by=args.select_by, seed=args.seed,
        device=args.device, threads=args.threads, amp=not args.no_amp,
        init=init,
        resume=args.resume, name=args.name,
        command="restorer " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
    )


def run(args: argparse.Namespace) -> int:
    from restorer.train.loop import train

    result = train(config_from_args(args), progress=not args.quiet)
    if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 speaks for all
        print(f"restorer: {result.summary()}", file=sys.stderr)
    return 0
