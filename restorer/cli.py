"""``restorer`` command line: thin over the library. Errors print one line and exit non-zero."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from restorer import __version__
from restorer.errors import Cancelled, RestorerError
from restorer.formats import H264_CRF
from restorer.positions import parse_position, to_frame

AddParser = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]
Handler = Callable[[int, Any], None]


@contextmanager
def signal_handlers(on_sigint: Handler, on_sigterm: Handler) -> Iterator[None]:
    """Install SIGINT and SIGTERM handlers for a long command, and restore the previous ones.

    Only the main thread may set handlers; elsewhere (a command run from a test's thread) this
    does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, on_sigint)
    previous_term = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, previous_term)


# Sub-commands that live beside the code they drive import torch, OpenCV or Qt; the parser
# imports only the one being run, so --version and `colourize --help` answer at once.
def _scenes() -> AddParser:
    from restorer.scenes import add_parser
    return add_parser


def _dataset() -> AddParser:
    from restorer.data.cli import add_parser
    return add_parser


def _train() -> AddParser:
    from restorer.train.cli import add_parser
    return add_parser


def _evaluate() -> AddParser:
    from restorer.evaluate import add_parser
    return add_parser


def _farm() -> AddParser:
    from restorer.farm.cli import add_parser
    return add_parser


def _gui() -> AddParser:
    from restorer.gui.launch import add_parser
    return add_parser


#: name -> (one-line help for the command list, loader of the module's add_parser)
COMMANDS: dict[str, tuple[str, Callable[[], AddParser]]] = {
    "scenes": ("list the scene cuts of a video", _scenes),
    "dataset": ("build or inspect a training dataset", _dataset),
    "train": ("train a colourisation model on a dataset", _train),
    "evaluate": ("score a model on held-out colour footage or photos", _evaluate),
    "farm": ("render many episodes across machines (Ray)", _farm),
    "gui": ("open the restoration desk (PySide6 window)", _gui),
}


def _int_in(lo: int, hi: int) -> Callable[[str], int]:
    """An argparse type: a whole number in ``lo..hi``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{value} is outside {lo}..{hi}")
        return value
    return parse


def add_render_options(p: argparse.ArgumentParser) -> None:
    """The options of an export that ``colourize`` and ``farm run`` share: model, look, codec,
    and how the source is read."""
    p.add_argument("--model", type=Path, default=None, help="model file (.safetensors); "
                   "default: the shipped models/default.safetensors or $RESTORER_MODEL")
    p.add_argument("--chroma", type=float, default=1.0,
                   help="chroma strength 0..2 (0 grey, 1 as predicted, 2 double)")
    p.add_argument("--size", type=int, default=None,
                   help="working short side in pixels for the network (default: the model's)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--codec", default="h264", choices=["h264", "prores", "ffv1"])
    p.add_argument("--crf", type=_int_in(0, 51), default=None,
                   help=f"quality 0..51, lower is better (H.264 default {H264_CRF})")
    p.add_argument("--stabilise", "--stabilize", type=float, default=0.0, metavar="STRENGTH",
                   help="temporal chroma stabilisation 0..1 (0 off; 0.7 is a good start)")
    p.add_argument("--batch", type=_int_in(1, 256), default=8, help="frames per network batch")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("--deinterlace", action="store_true",
                   help="interlaced source: write progressive frames at double rate (bwdif) "
                        "instead of an interlaced master colourised field by field")
    p.add_argument("--allow-truncated", action="store_true",
                   help="render what decodes of a file cut short (default: refuse it)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_colourize(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("colourize", aliases=["colorize"], help="colourise a black-and-white video",
                       description="Colourise a video. Keeps the source's frame count, exact "
                                   "frame rate, size and audio; only colour is invented.")
    p.add_argument("input", type=Path,
                   help="black-and-white (or colour) video ffmpeg can read, or a desk project "
                        "(.restorer: its episode, model, look, marks and per-shot chroma)")
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="output file (.mp4/.mov/.mkv); never the input")
    p.add_argument("--start", default=None, help="first frame: frame number or time (12.5s, "
                   "00:01:02.5, 00:01:02:12)")
    p.add_argument("--end", default=None, help="end (exclusive): frame number or time")
    p.add_argument("--compare", action="store_true",
                   help="write original | colour side by side (double width)")
    add_render_options(p)
    p.set_defaults(func=_run_colourize)


def _run_colourize(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from restorer.look import Look
    from restorer.media import probe
    from restorer.project import PROJECT_SUFFIX
    from restorer.record import record_export
    from restorer.render import RenderJob, render
    from restorer.shots import ShotChroma

    src, model = args.input, args.model
    shots: tuple[ShotChroma, ...] = ()
    look = Look(chroma=args.chroma, working_size=args.size, stabilise=args.stabilise)
    start, end = args.start, args.end
    if Path(args.input).suffix.lower() == PROJECT_SUFFIX:
        # A desk project: its episode, model, look, marks and per-shot chroma; a flag given
        # with a value other than its default still wins.
        from restorer.project import load as load_project

        project = load_project(args.input)
        src, model, shots = project.episode, model or project.model, project.shots
        look = project.look.replace(
            **({"chroma": args.chroma} if args.chroma != 1.0 else {}),
            **({"stabilise": args.stabilise} if args.stabilise != 0.0 else {}),
            **({"working_size": args.size} if args.size is not None else {}))
        a, b = project.export_range()
        start = start if start is not None else str(a)
        end = end if end is not None else (str(b) if b is not None else None)
    info = probe(src)
    fps = float(info.fps)
    job = RenderJob(
        src=src, dst=args.output, model=model, look=look,
        device=args.device, codec=args.codec, crf=args.crf,
        start=to_frame(parse_position(start), fps) or 0,
        end=to_frame(parse_position(end), fps), compare=args.compare,
        batch_size=args.batch, overwrite=args.overwrite, allow_truncated=args.allow_truncated,
        deinterlace=args.deinterlace, shots=shots,
    )
    bar = None
    warn: Callable[[str], None] = lambda m: print(f"restorer: warning: {m}", file=sys.stderr)  # noqa: E731
    cancel = threading.Event()

    terminated = threading.Event()

    def on_sigint(signum: int, frame: object) -> None:
        # First Ctrl-C: a cooperative cancel, checked between batches, so cleanup starts from
        # a known state. A KeyboardInterrupt raised at an arbitrary bytecode can land in library
        # code that swallows it, or in cleanup that replaces it with another error (seen once
        # under load as a traceback and exit 1). A second Ctrl-C stops at once.
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        print("\nrestorer: cancelling (Ctrl-C again to stop at once)", file=sys.stderr)

    def on_sigterm(signum: int, frame: object) -> None:
        # What schedulers, `timeout` and container stops send: the same clean cancel, since a
        # SIGKILL may follow and the hidden temporary file must not outlive us.
        terminated.set()
        cancel.set()

    with signal_handlers(on_sigint, on_sigterm):
        try:
            told: set[str] = set()
            for ev in render(job, cancel=cancel, on_warning=warn):
                if bar is None:
                    print(f"restorer: {ev.message}", file=sys.stderr)
                # Notes arrive with any event (the encoder's come once it is set up).
                for note in ev.notes:
                    if note not in told:
                        told.add(note)
                        if bar is not None:
                            bar.clear()
                        warn(note)
                if bar is None:
                    bar = tqdm(total=ev.total, unit="frame", disable=args.quiet, dynamic_ncols=True,
                               desc="colourising")
                    continue
                bar.n = ev.done
                bar.set_postfix_str(f"{ev.fps:.1f} fps", refresh=True)
                if ev.output is not None:
                    bar.close()
                    print(f"restorer: wrote {ev.output} ({ev.total} frames, {ev.fps:.1f} fps)",
                          file=sys.stderr)
                    try:
                        record_export(job, ev.output, source_frames=info.frame_count,
                                      frames_written=ev.total)
                    except RestorerError as exc:  # the master itself is complete and kept
                        warn(str(exc))
        except Cancelled:
            if not terminated.is_set():
                raise
            if bar is not None:
                bar.close()
            print(f"restorer: terminated (SIGTERM); {args.output.name} was not written, and "
                  "nothing partial was left", file=sys.stderr)
            return 128 + signal.SIGTERM
        finally:
            if bar is not None:
                bar.close()
    return 0


def _add_doctor(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("doctor", help="show the device, ffmpeg, Qt platform and model in use")
    p.add_argument("--model", type=Path, default=None)
    p.set_defaults(func=_run_doctor)


def _run_doctor(args: argparse.Namespace) -> int:
    import os
    import subprocess

    import torch

    from restorer.checkpoint import default_model_path, read_meta
    from restorer.device import pick_device
    from restorer.media import ffmpeg_exe

    print(f"restorer {__version__}")
    print(f"python   {sys.version.split()[0]}")
    print(f"torch    {torch.__version__}; device found: {pick_device('auto')}")
    exe = ffmpeg_exe()
    first = subprocess.run([exe, "-version"], capture_output=True, text=True).stdout.splitlines()
    print(f"ffmpeg   {exe}\n         {first[0] if first else 'unknown version'}")
    print(f"qt       QT_QPA_PLATFORM={os.environ.get('QT_QPA_PLATFORM', '(default)')}")
    from importlib.metadata import PackageNotFoundError, version

    try:  # the version only: importing Qt is the GUI's business
        print(f"pyside6  {version('PySide6-Essentials')}")
    except PackageNotFoundError:
        print("pyside6  not installed (the GUI will not start)")
    try:
        import av

        print(f"pyav     {av.__version__} (in-process decoding for scrubbing)")
    except ImportError:
        print("pyav     not installed (scrubbing seeks with ffmpeg, slower)")
    path = args.model or default_model_path()
    try:
        meta = read_meta(path)
        print(f"model    {path}\n         {meta.name}: {meta.description} "
              f"(working size {meta.working_size})")
    except RestorerError as exc:
        print(f"model    {exc}")
    return 0


def _command_word(argv: Sequence[str]) -> str | None:
    """The sub-command named on the command line (the first word that is not an option)."""
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The whole parser; given ``argv``, only the sub-command it names is loaded in full and
    the others are listed by name and help alone."""
    parser = argparse.ArgumentParser(
        prog="restorer", description="Colourise black-and-white film and TV episodes.")
    parser.add_argument("--version", action="version", version=f"restorer {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_colourize(sub)
    wanted = _command_word(argv) if argv is not None else None
    for name, (help_text, load) in COMMANDS.items():
        if argv is None or name == wanted:
            load()(sub)
        else:
            sub.add_parser(name, help=help_text)
    _add_doctor(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="restorer: %(levelname)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except Cancelled as exc:
        print(f"restorer: {exc}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("restorer: interrupted; no partial output was left", file=sys.stderr)
        return 130
    except RestorerError as exc:
        print(f"restorer: error: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        if args.verbose:
            raise
        print(f"restorer: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
