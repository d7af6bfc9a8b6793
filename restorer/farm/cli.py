"""``restorer farm run`` and ``restorer farm status``."""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path
from typing import Any

from restorer.cli import add_render_options, signal_handlers
from restorer.farm.options import DEFAULT_CHUNK


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "farm", help="render many episodes across machines (Ray)",
        description="Render episodes on a Ray cluster: each is cut into chunks at scene cuts, "
                    "the chunks run as tasks with retries, and each master is joined without "
                    "re-encoding, given the source's audio and verified against the source.")
    verbs = p.add_subparsers(dest="farm_command", metavar="ACTION", required=True)
    run = verbs.add_parser(
        "run", help="render episodes into a folder (resumes a run that was stopped)",
        description="Render each input as OUTPUT/<input name>.<container of the codec>, with "
                    "the options and defaults of `restorer colourize`. Run it again with the "
                    "same arguments to resume: finished chunks are kept.")
    run.add_argument("inputs", type=Path, nargs="+", help="episodes (videos ffmpeg can read)")
    run.add_argument("-o", "--output", type=Path, required=True,
                     help="folder for the masters (created if missing); on a cluster, on "
                          "storage every node sees at the same path")
    run.add_argument("--address", default=None,
                     help="Ray cluster to use: auto (the one started on this machine with "
                          "`ray start --head`) or HOST:PORT; default: a local cluster on this "
                          "machine's cores, for this run only")
    run.add_argument("--chunk", default=DEFAULT_CHUNK,
                     help=f"about how long each chunk is (default {DEFAULT_CHUNK}; seconds, "
                          "timecode or frames); boundaries snap to scene cuts")
    run.add_argument("--cpus-per-chunk", type=int, default=1,
                     help="cores each chunk is given (default 1: one chunk per core)")
    run.add_argument("--retries", type=int, default=2,
                     help="further attempts at a failed chunk (default 2)")
    run.add_argument("--keep-chunks", action="store_true",
                     help="keep the chunk files after a master is verified")
    add_render_options(run)
    run.set_defaults(func=_run)
    status = verbs.add_parser("status", help="what a farm run has done in a folder (no Ray)")
    status.add_argument("output", type=Path, help="the folder given to farm run -o")
    status.set_defaults(func=_status)


def _status(args: argparse.Namespace) -> int:
    from restorer.farm.run import status_lines

    for line in status_lines(args.output):
        print(line)
    return 0


def _run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from restorer.farm.options import FarmOptions
    from restorer.farm.run import farm_run
    from restorer.look import Look

    opts = FarmOptions(
        model=args.model,
        look=Look(chroma=args.chroma, working_size=args.size, stabilise=args.stabilise),
        codec=args.codec, crf=args.crf, device=args.device, batch_size=args.batch,
        deinterlace=args.deinterlace, allow_truncated=args.allow_truncated, chunk=args.chunk,
        cpus_per_chunk=args.cpus_per_chunk, retries=args.retries, overwrite=args.overwrite,
        keep_chunks=args.keep_chunks)
    cancel, stop_now = threading.Event(), threading.Event()

    def on_sigint(signum: int, frame: Any) -> None:
        if stop_now.is_set():
            raise KeyboardInterrupt
        if cancel.is_set():
            stop_now.set()
            print("\nrestorer: cancelling the running chunks", file=sys.stderr)
            return
        cancel.set()
        print("\nrestorer: no more chunks will start; the running ones finish and are kept "
              "(Ctrl-C again to cancel them)", file=sys.stderr)

    def on_sigterm(signum: int, frame: Any) -> None:
        cancel.set()
        stop_now.set()

    bar = None
    failed = False
    with signal_handlers(on_sigint, on_sigterm):
        try:
            for ev in farm_run(args.inputs, args.output, opts, address=args.address,
                               cancel=cancel, stop_now=stop_now):
                if bar is None and ev.frames_done < ev.frames_total:
                    bar = tqdm(total=ev.frames_total, unit="frame", disable=args.quiet,
                               dynamic_ncols=True, desc="farm")
                if ev.message:
                    line = f"restorer: {ev.message}"
                    if bar is not None and not args.quiet:
                        bar.write(line, file=sys.stderr)
                    else:
                        print(line, file=sys.stderr)
                if bar is not None:
                    bar.n = ev.frames_done
                    running = sum(e.running for e in ev.episodes)
                    eta = f", ETA {ev.eta_s / 60:.0f} min" if ev.eta_s == ev.eta_s else ""
                    bar.set_postfix_str(f"{ev.fps:.1f} fps, {running} running{eta}", refresh=True)
                if ev.finished:
                    failed = any(e.status == "failed" for e in ev.episodes)
        finally:
            if bar is not None:
                bar.close()
    return 1 if failed else 0
