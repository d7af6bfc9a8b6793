"""Recipes: reproducible, documented training runs. The shipped default model is made here.

Default model (only redistributable data, see /work/shared/data/README.md)::

    python -m restorer.train.recipes default --out models/default.safetensors --minutes 20

which is the same as these commands (``HELD`` = 40 photos picked with ``random.Random(0)``,
listed in ``<work>/holdout.txt`` and linked into ``<work>/holdout_photos/``)::

    restorer dataset build <all photos except HELD> \
        /work/shared/data/video/big_buck_bunny_1080p_30s.mp4 \
        /work/shared/data/video/city_cc0.mpg /work/shared/data/video/kphotoalbum_movie.avi \
        --exclude /work/shared/data/video/big_buck_bunny_1080p_30s.mp4:8-14 \
        --size 192 -o <work>/default.dataset
    restorer train <work>/default.dataset -o models/default.safetensors --minutes 20 \
        --base 12 --depth 3 --working-size 144 --rebalance 0.5 --degrade 0.2
    restorer evaluate models/default.safetensors <work>/holdout_photos
    restorer evaluate models/default.safetensors big_buck_bunny_1080p_30s.mp4 \
        --start 8s --end 14s --stride 3

Seconds 8-14 of Big Buck Bunny are the shipped demo clip (resources/demo_bw.mp4): held out.
The network: U-Net base 12, depth 3 (~0.27 M parameters), working size 144 short side: small
enough that export of SD runs near real time on a 2-core CPU.

Why these settings: a general model cannot know a coat's colour, and a confident wrong colour
(purple grass, yellow tarmac) is worse than a muted right one. So class rebalancing is kept at
half strength (0.5), enough to avoid sepia without painting, and mild input degradation
(0.2) prepares the model for archive grain, since it will meet footage nobody trained it on.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from restorer.data.extract import BuildOptions, build_dataset, parse_exclude
from restorer.formats import IMAGE_EXTS
from restorer.train.config import TrainConfig

DATA = Path("/work/shared/data")
VIDEOS = ("big_buck_bunny_1080p_30s.mp4", "city_cc0.mpg", "kphotoalbum_movie.avi")
DEMO_EXCLUDE = "big_buck_bunny_1080p_30s.mp4:8-14"
HOLDOUT_PHOTOS = 40


@dataclass
class DefaultRecipe:
    data: Path = DATA
    work: Path = Path("/tmp/restorer-default")
    out: Path = Path("models/default.safetensors")
    minutes: float = 20.0
    device: str = "auto"
    seed: int = 0
    workers: int = 2
    rebalance: float = 0.5
    degrade: float = 0.2
    init: Path | None = None
    gan: bool = False
    # base 12 at a 144 px working short side keeps SD export near real time on a 2-core CPU.
    base: int = 12
    working_size: int = 144


def holdout_split(photos: list[Path], n: int = HOLDOUT_PHOTOS, seed: int = 0
                  ) -> tuple[list[Path], list[Path]]:
    """(training photos, held-out photos): a fixed, seeded choice, independent of file order."""
    photos = sorted(photos)
    held = sorted(random.Random(seed).sample(photos, min(n, len(photos) // 4)))
    held_set = set(held)
    return [p for p in photos if p not in held_set], held


def run_default(r: DefaultRecipe) -> dict[str, Any]:
    """Build the dataset, train, and evaluate the default model; returns the figures."""
    from restorer.evaluate import evaluate_model, format_table
    from restorer.train.loop import train

    r.work.mkdir(parents=True, exist_ok=True)
    photos = [p for p in (r.data / "photos").iterdir() if p.suffix.lower() in IMAGE_EXTS]
    train_photos, held = holdout_split(photos, seed=r.seed)
    (r.work / "holdout.txt").write_text("".join(f"{p.name}\n" for p in held))
    held_dir = r.work / "holdout_photos"
    held_dir.mkdir(exist_ok=True)
    for p in held:
        link = held_dir / p.name
        if not link.exists():
            link.symlink_to(p)

    videos = [r.data / "video" / v for v in VIDEOS]
    dataset = r.work / "default.dataset"
    if not (dataset / "manifest.json").exists():
        opts = BuildOptions(size=192,
                            exclude=parse_exclude([str(r.data / "video" / DEMO_EXCLUDE)]))
        for ev in build_dataset([*train_photos, *videos], dataset, opts):
            if ev.finished:
                print(f"dataset: {ev.kept} frames, skipped {ev.skipped}", file=sys.stderr)

    cfg = TrainConfig(
        dataset=str(dataset), out=str(r.out), arch={"arch": "unet", "base": r.base, "depth": 3},
        working_size=r.working_size, batch_size=16, minutes=r.minutes, steps=10**6,
        rebalance=r.rebalance, degrade=r.degrade, init=str(r.init) if r.init else None,
        gan=r.gan, num_workers=r.workers, device=r.device, seed=r.seed,
        val_every=250, name="default",
        description="Restorer default: small U-Net trained on redistributable photos and "
                    "open videos (CC-BY Big Buck Bunny except 8-14 s, CC0 city, GPL "
                    "kphotoalbum demo, CC/GPL wallpapers and photos)",
        command="python -m restorer.train.recipes default " + " ".join(sys.argv[2:]),
    )
    result = train(cfg)
    print(result.summary(), file=sys.stderr)
    reports = {
        "holdout_photos": evaluate_model(r.out, held_dir, device=r.device),
        "demo_segment": evaluate_model(r.out, videos[0], start="8s", end="14s", stride=3,
                                       device=r.device),
    }
    for name, rep in reports.items():
        print(f"\n{name}:\n{format_table(rep)}")
    (r.work / "default_eval.json").write_text(json.dumps(reports, indent=2, default=float))
    return {"train": result.summary(), "held_out": [p.name for p in held], **reports}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m restorer.train.recipes")
    sub = p.add_subparsers(dest="recipe", required=True)
    d = sub.add_parser("default", help="train the shipped default model")
    d.add_argument("--out", type=Path, default=DefaultRecipe.out)
    d.add_argument("--work", type=Path, default=DefaultRecipe.work)
    d.add_argument("--data", type=Path, default=DefaultRecipe.data)
    d.add_argument("--minutes", type=float, default=DefaultRecipe.minutes)
    d.add_argument("--device", default="auto")
    d.add_argument("--workers", type=int, default=DefaultRecipe.workers)
    d.add_argument("--rebalance", type=float, default=DefaultRecipe.rebalance)
    d.add_argument("--degrade", type=float, default=DefaultRecipe.degrade)
    d.add_argument("--init", type=Path, default=None,
                   help="start from this model (e.g. the previous default)")
    d.add_argument("--gan", action="store_true")
    d.add_argument("--base", type=int, default=DefaultRecipe.base)
    d.add_argument("--working-size", type=int, default=DefaultRecipe.working_size)
    a = p.parse_args(argv)
    run_default(DefaultRecipe(data=a.data, work=a.work, out=a.out, minutes=a.minutes,
                              device=a.device, workers=a.workers, rebalance=a.rebalance,
                              degrade=a.degrade, init=a.init, gan=a.gan, base=a.base,
                              working_size=a.working_size))
    return 0


if __name__ == "__main__":
    sys.exit(main())
