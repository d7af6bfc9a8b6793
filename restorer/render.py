"""One export job: reader -> colouriser -> writer, as an iterator of progress events.

Work overlaps across threads: a reader thread pulls frames out of ffmpeg, the caller's thread runs
the network on batches (torch and OpenCV release the GIL), a small pool upsamples and merges, and
a writer thread feeds the encoder in order. Queues are bounded, so memory stays flat however long
the episode is.

Cancel is cooperative: set the event (or make the callable return True) and the next batch
boundary raises :class:`~restorer.errors.Cancelled`, after the temporary output is deleted.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from restorer.analysis import looks_colour
from restorer.cancel import CancelFlag, is_cancelled
from restorer.engine import Colouriser, Prediction
from restorer.errors import Cancelled, MediaError, OutputError, RestorerError
from restorer.interlace import FieldOrder as Woven
from restorer.interlace import (
    FieldPrediction,
    field_order_for,
    finish_fields,
    predict_fields,
)
from restorer.look import Look
from restorer.media import FrameReader, VideoInfo, VideoWriter, probe
from restorer.media.reader import deinterlaced
from restorer.media.writer import check_destination
from restorer.memory import reuse_freed_memory
from restorer.shots import ShotChromas, check_shots, chroma_at

log = logging.getLogger(__name__)



@dataclass
class RenderJob:
    """Everything one export needs; the CLI and the GUI's export dialog both fill this in."""

    src: Path
    dst: Path
    model: Path | None = None
    look: Look = field(default_factory=Look)
    device: str = "auto"
    codec: str = "h264"
    crf: int | None = None
    start: int = 0
    end: int | None = None
    compare: bool = False
    batch_size: int = 8
    overwrite: bool = False
    #: Render what decodes of a file cut short, instead of refusing it.
    allow_truncated: bool = False
    #: Interlaced source: progressive frames at field rate (bwdif) instead of an interlaced
    #: master colourised field by field.
    deinterlace: bool = False
    #: Frames before ``start`` fed to the temporal stabiliser and not written, so a range that
    #: starts mid-shot (a render-farm chunk) continues the stabilised colour of the frames
    #: before it. Only a look with stabilisation reads them.
    warmup: int = 0
    #: Carry the source's audio and subtitles (False: video only, as farm chunks are).
    streams: bool = True
    #: Look at the source's frames to say when it is in colour. A render farm says it once per
    #: episode, with its first chunk, not again for every chunk.
    check_colour: bool = True
    #: Per-shot chroma strengths (absolute frame ranges); other frames take ``look.chroma``.
    shots: ShotChromas = ()

    def __post_init__(self) -> None:
        self.src, self.dst = Path(self.src), Path(self.dst)
        if self.model is not None:
            self.model = Path(self.model)
        # The look checked its own ranges when it was made.
        if not isinstance(self.look, Look):
            raise TypeError(f"RenderJob.look must be a restorer.look.Look; got {self.look!r}")
        if self.warmup < 0:
            raise ValueError(f"RenderJob.warmup must be 0 or more; got {self.warmup}")
        self.shots = check_shots(self.shots)

    def look_at(self, n: int) -> Look:
        """The look source frame ``n`` is finished with: its shot's chroma, if it has one."""
        if not self.shots:
            return self.look
        chroma = chroma_at(self.shots, n, self.look.chroma)
        return self.look if chroma == self.look.chroma else self.look.replace(chroma=chroma)


@dataclass
class Progress:
    done: int
    total: int
    fps: float = 0.0
    eta_s: float = float("nan")
    message: str = ""
    notes: list[str] = field(default_factory=list)
    output: Path | None = None

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


def check_truncation(info: VideoInfo, allow: bool) -> str | None:
    """Refuse a file cut short (a failed copy), or with ``allow`` return the note saying how
    much of it will be rendered."""
    missing = info.missing_frames
    if not missing:
        return None
    assert info.declared_frames is not None
    told = (f"{info.path.name} is truncated: it declares {info.declared_frames} frames but only "
            f"the first {info.frame_count} decode ({missing} missing, "
            f"{missing / float(info.fps):.1f} s)")
    if not allow:
        raise MediaError(f"{told}; pass --allow-truncated to render what decodes")
    return f"{told}; rendering the {info.frame_count} that decode"


def source_notes(info: VideoInfo, check_colour: bool = True) -> list[str]:
    """Things the operator must know about the source before trusting the output.

    ``check_colour`` looks at frames to tell a colour source (over a second on an SD episode).
    """
    notes = []
    if info.vfr:
        notes.append("irregular frame timing (variable frame rate, or a truncated file): "
                     f"resampled to a constant {float(info.fps):.3f} fps, "
                     f"{info.frame_count} frames")
    if info.bit_depth > 8:
        notes.append(f"{info.bit_depth}-bit source ({info.pix_fmt}): processed at 8 bits per pixel")
    if info.width % 2 or info.height % 2:
        notes.append(f"odd size {info.width}x{info.height}: kept exactly (4:4:4 chroma)")
    try:
        if check_colour and looks_colour(info):
            notes.append("source is in colour: its colour is discarded and only its lightness (L) "
                         "is used")
    except RestorerError:
        pass
    return notes


class _Reader(threading.Thread):
    def __init__(self, reader: FrameReader, out: queue.Queue[tuple[int, np.ndarray] | None],
                 stop: threading.Event) -> None:
        super().__init__(daemon=True, name="restorer-reader")
        self.reader, self.out, self.stop = reader, out, stop
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for item in self.reader:
                while not self.stop.is_set():
                    try:
                        self.out.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if self.stop.is_set():
                    break
        except BaseException as exc:  # surfaced to the caller's thread
            self.error = exc
        finally:
            self.reader.close()
            while not self.stop.is_set():
                try:
                    self.out.put(None, timeout=0.1)
                    break
                except queue.Full:
                    continue


class _Writer(threading.Thread):
    def __init__(self, writer: VideoWriter, inbox: queue.Queue[Future[np.ndarray] | None]) -> None:
        super().__init__(daemon=True, name="restorer-writer")
        self.writer, self.inbox = writer, inbox
        self.error: BaseException | None = None
        self.written = 0

    def run(self) -> None:
        while True:
            fut = self.inbox.get()
            if fut is None:
                return
            if self.error is not None:
                continue  # keep draining so the producer never blocks
            try:
                self.writer.write(fut.result())
                self.written += 1
            except BaseException as exc:
                self.error = exc


def _finish(col: Colouriser, frame: Prediction | FieldPrediction, look: Look,
            compare: bool) -> np.ndarray:
    """The pool's part: the engine's second stage (field by field for a woven frame), and the
    comparison layout if asked."""
    rgb = (finish_fields(frame, look) if isinstance(frame, FieldPrediction)
           else col.finish(frame, look)).rgb
    if compare:
        return np.concatenate([np.repeat(frame.grey[..., None], 3, -1), rgb], axis=1)
    return rgb


def render(job: RenderJob, cancel: CancelFlag = None, colouriser: Colouriser | None = None,
           on_warning: Callable[[str], None] | None = None) -> Iterator[Progress]:
    """Run ``job``, yielding :class:`Progress` after each batch; the last event has ``output``."""
    reuse_freed_memory()
    info = probe(job.src)
    start = job.start
    end = info.frame_count if job.end is None else min(job.end, info.frame_count)
    if not 0 <= start < end:
        raise MediaError(f"empty frame range {start}..{end} (the video has {info.frame_count})")
    check_destination(job.dst, (job.src,), job.overwrite)
    cut_short = check_truncation(info, job.allow_truncated)
    notes = ([cut_short] if cut_short else []) + source_notes(info, job.check_colour)
    order, order_note = field_order_for(info, start, end)
    woven: Woven | None = "tt" if order == "tt" else "bb" if order == "bb" else None
    if order_note:
        notes.append(order_note)
    # What is read: the source's frames, or with --deinterlace its fields as frames.
    read, first, last = info, start, end
    filters: list[str] = []
    if woven and job.deinterlace:
        read, filters = deinterlaced(info, woven)
        first, last = 2 * start, 2 * end
        notes.append(f"interlaced source ({'top' if woven == 'tt' else 'bottom'} field first) "
                     f"deinterlaced with bwdif: {last - first} progressive frames at "
                     f"{float(read.fps):.3f} fps")
        woven = None
    elif woven:
        notes.append(f"interlaced source ({'top' if woven == 'tt' else 'bottom'} field first): "
                     "each field is colourised on its own and the master stays interlaced")
    elif job.deinterlace:
        notes.append("--deinterlace: the source is progressive, so nothing was deinterlaced")
    if info.rotation:
        notes.append(f"the source is shown turned {info.rotation} degrees: the master is "
                     f"written upright, {info.display_size[0]}x{info.display_size[1]}")
    yield Progress(0, last - first, message=info.describe(), notes=notes)
    if colouriser is None:
        colouriser = Colouriser.load(job.model, device=job.device, batch_size=job.batch_size,
                                     on_warning=on_warning)
    look = job.look
    stabiliser = colouriser.new_stabiliser(look)
    # A woven frame is two network inputs: half as many frames make one network batch.
    per_batch = max(1, colouriser.batch_size // 2) if woven else colouriser.batch_size

    total = last - first
    per_source = total // (end - start)  # frames read per source frame: 1, or 2 deinterlaced
    # Frames read ahead of the range only to settle the stabiliser; predicted, never written.
    lead = min(job.warmup, start) * per_source if stabiliser is not None else 0
    width, height = info.display_size  # frames arrive upright
    turned = info.rotation in (90, 270)
    writer = VideoWriter(job.dst, width * (2 if job.compare else 1), height, read.fps,
                         codec=job.codec, crf=job.crf,
                         streams_from=info if job.streams else None,
                         audio_start=info.time_of(start),
                         audio_duration=info.time_of(end) - info.time_of(start) if
                         (start > 0 or end < info.frame_count) else None,
                         colour=info.colour, sources=(job.src,), overwrite=job.overwrite,
                         sar=1 / info.sar if turned else info.sar,
                         field_order=woven or "progressive")
    notes = notes + list(writer.encoding.notes)
    stop = threading.Event()
    frames: queue.Queue[tuple[int, np.ndarray] | None] = queue.Queue(maxsize=2 * job.batch_size)
    to_write: queue.Queue[Future[np.ndarray] | None] = queue.Queue(maxsize=4 * job.batch_size)
    reader = _Reader(FrameReader(read, first - lead, last, filters=filters), frames, stop)
    wthread = _Writer(writer, to_write)
    pool = ThreadPoolExecutor(max_workers=max(1, min(4, (os.cpu_count() or 2))),
                              thread_name_prefix="restorer-post")
    # The post-processing pool already runs one frame per core; OpenCV's own threads inside
    # each call would only oversubscribe them.
    cv_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    reader.start()
    wthread.start()
    done = 0
    t0 = time.perf_counter()
    finished = False
    try:
        eof = False
        while not eof:
            batch: list[np.ndarray] = []
            while len(batch) < per_batch:
                item = frames.get()
                if item is None:
                    eof = True
                    break
                batch.append(item[1])
            if is_cancelled(cancel):
                raise Cancelled(f"export cancelled at frame {start + done // per_source}; "
                            "nothing was written")
            if reader.error is not None:
                raise MediaError(f"decoding {info.path.name} failed: {reader.error}")
            if wthread.error is not None:
                raise wthread.error
            if not batch:
                break
            # The network (and the stabiliser, which needs frames in order) on this thread;
            # upsample and merge on the pool.
            staged: list[Prediction] | list[FieldPrediction] = (
                predict_fields(colouriser, batch, look, stabiliser, woven) if woven
                else colouriser.predict(batch, look, stabiliser))
            warm = min(lead, len(staged))
            lead -= warm
            for k in range(warm, len(staged)):
                n = start + (done + k - warm) // per_source  # the source frame it shows
                to_write.put(pool.submit(_finish, colouriser, staged[k], job.look_at(n),
                                         job.compare))
            done += len(batch) - warm
            dt = time.perf_counter() - t0
            fps = done / dt if dt > 0 else 0.0
            yield Progress(done, total, fps, (total - done) / fps if fps > 0 else float("nan"),
                           notes=notes)
        reader.join()
        if reader.reader.shortfall > 0 or done < total:
            why = reader.reader.errors.splitlines()[-1] if reader.reader.errors else "eof"
            at = start + done // per_source
            raise MediaError(
                f"{info.path.name} ended at frame {at} of {end}: the file is truncated "
                f"or damaged ({why}); render a shorter range with --end {at}"
            )
        to_write.put(None)
        wthread.join()
        if wthread.error is not None:
            raise wthread.error
        if wthread.written != total:
            raise OutputError(f"wrote {wthread.written} of {total} frames; output discarded")
        if is_cancelled(cancel):  # a cancel during the final flush still leaves nothing
            raise Cancelled(f"export cancelled at frame {start + done // per_source}; "
                            "nothing was written")
        out = writer.commit()
        finished = True
        dt = time.perf_counter() - t0
        yield Progress(total, total, total / dt if dt > 0 else 0.0, 0.0, message="done",
                       notes=notes, output=out)
    finally:
        stop.set()
        if not finished:
            writer.abort()
            # Unblock the writer thread whatever state it is in.
            while wthread.is_alive():
                try:
                    to_write.put(None, timeout=0.05)
                except queue.Full:
                    try:
                        to_write.get_nowait()
                    except queue.Empty:
                        pass
                wthread.join(timeout=0.05)
        # The reader thread closes its own decoder once it sees ``stop``: closing a PyAV
        # container from here while that thread is inside a decode call crashes the process
        # (seen in CI as SIGSEGV on SIGTERM). Drain so it is never stuck on a full queue.
        while reader.is_alive():
            try:
                frames.get_nowait()
            except queue.Empty:
                pass
            reader.join(timeout=0.05)
        reader.reader.close()
        pool.shutdown(wait=True, cancel_futures=True)
        cv2.setNumThreads(cv_threads)


def run(job: RenderJob, cancel: CancelFlag = None, colouriser: Colouriser | None = None) -> Path:
    """Run a job to completion and return the output path."""
    events = list(render(job, cancel, colouriser))
    out = events[-1].output if events else None
    if out is None:
        raise OutputError(f"export of {job.src} ended without an output")
    return out
