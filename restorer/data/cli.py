"""``restorer dataset build|info``: make a training dataset from colour footage and photos."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from restorer.data.extract import BuildOptions, build_dataset, parse_exclude
from restorer.data.store import read_manifest


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("dataset", help="build or inspect a training dataset",
                       description="Build a training dataset from colour episodes and folders "
                                   "of colour photos, or show what a dataset holds.")
    dsub = p.add_subparsers(dest="dataset_command", metavar="ACTION", required=True)
    b = dsub.add_parser("build", help="sample frames from colour videos/photos into a dataset")
    b.add_argument("inputs", nargs="+", help="colour videos, images, or folders of images")
    b.add_argument("-o", "--output", type=Path, required=True, help="dataset folder to create")
    b.add_argument("--every", default="auto",
                   help="sampling interval: auto (default: every frame of short material, "
                        "thinned for long material to fit --max-gb), 1 (every frame), 12f "
                        "(every 12th), 1s, 0.5s")
    b.add_argument("--size", type=int, default=256,
                   help="stored short side in pixels, aspect kept, whole frame (default 256)")
    b.add_argument("--max-gb", type=float, default=8.0,
                   help="disk budget of the stored frames for --every auto (default 8)")
    b.add_argument("--exclude", action="append", default=[], metavar="PATH:START-END",
                   help="leave out a time range of an input in seconds, e.g. demo.mp4:8-14 or "
                        "episode.mp4:1200- (to the end); repeatable")
    b.add_argument("--val-fraction", type=float, default=0.1,
                   help="share of scenes/photos held out for validation (default 0.1)")
    b.add_argument("--min-chroma", type=float, default=BuildOptions.min_chroma,
                   help="drop frames whose mean Lab chroma is below this (grey/credits)")
    b.add_argument("--dup-threshold", type=float, default=BuildOptions.dup_threshold,
                   help="drop a frame when no 8x8 block of its thumbnail changed by this "
                        "many grey levels since the last kept frame (default 3); 0 keeps all")
    b.add_argument("--overwrite", action="store_true", help="replace an existing dataset")
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    b.set_defaults(func=run)
    i = dsub.add_parser("info", help="print a dataset's sources, splits and statistics")
    i.add_argument("dataset", type=Path)
    i.set_defaults(func=run_info)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    opts = BuildOptions(size=args.size, every=args.every, max_gb=args.max_gb,
                        val_fraction=args.val_fraction, exclude=parse_exclude(args.exclude),
                        min_chroma=args.min_chroma, dup_threshold=args.dup_threshold)
    bar = None
    try:
        for ev in build_dataset(args.inputs, args.output, opts, overwrite=args.overwrite):
            for note in ev.notes if not ev.finished else []:
                print(f"restorer: {note}", file=sys.stderr)
            if bar is None:
                bar = tqdm(total=ev.total, unit="frame", disable=args.quiet, desc="sampling",
                           dynamic_ncols=True)
            bar.n = ev.done
            bar.set_postfix_str(f"kept {ev.kept}", refresh=True)
            if ev.finished:
                bar.close()
                assert ev.path is not None  # a finished build names its dataset
                m = read_manifest(ev.path)
                shapes = sorted({f"{w}x{h}" for s in m["splits"].values()
                                 for h, w in s.get("shapes", [])})
                print(f"restorer: wrote {ev.path}: {m['splits']['train']['count']:,} training "
                      f"+ {m['splits']['val']['count']:,} validation frames, whole frames at "
                      f"{', '.join(shapes[:4])}{' ...' if len(shapes) > 4 else ''}",
                      file=sys.stderr)
                for note in ev.notes:
                    print(f"restorer: {note}", file=sys.stderr)
    finally:
        if bar is not None:
            bar.close()
    return 0


def run_info(args: argparse.Namespace) -> int:
    m = read_manifest(args.dataset)
    print(f"{args.dataset}: short side {m['size']}, {len(m['sources'])} sources, "
          f"{m.get('units', '?')} split units")
    for s, info in m["splits"].items():
        shapes = sorted({f"{w}x{h}" for h, w in info.get("shapes", [[m["size"], m["size"]]])})
        print(f"  {s:5s} {info['count']:7d} frames in {len(info['shards'])} shard(s): "
              f"{', '.join(shapes)}")
    print(f"  skipped {m.get('skipped', {})}")
    print(f"  mean ab of training frames: {m.get('stats', {}).get('mean_ab')}")
    return 0
