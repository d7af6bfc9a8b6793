"""The farm's driver: plan every episode, schedule its chunks on Ray, assemble and verify.

:func:`farm_run` is a generator of :class:`FarmProgress`, like every long job here; the CLI
prints it. Cancel is two-stage, as an operator at a terminal expects: the first ``cancel`` stops
scheduling and lets the running chunks finish (they are kept, so the next run skips them); the
second (``stop_now``) cancels the running chunks too. Either way the manifest stays consistent
and :class:`~restorer.errors.Cancelled` ends the run, saying which happened.
"""

from __future__ import annotations

import dataclasses
import secrets
import shutil
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from restorer.cancel import CancelFlag, is_cancelled
from restorer.errors import Cancelled, FarmError, RestorerError
from restorer.farm.manifest import (
    ChunkRecord,
    EpisodeRecord,
    Manifest,
    episode_key,
    file_sha256,
    fingerprint,
    folder_lock,
    intact,
)
from restorer.farm.options import FarmOptions
from restorer.farm.plan import WARMUP_SECONDS, balanced_chunk, plan_chunks
from restorer.media import VideoInfo, probe
from restorer.media.writer import MASTER_SUFFIX, check_destination
from restorer.positions import parse_position, to_frame

#: An episode is scanned for cuts in segments of at least this long, one per free slot.
SCAN_SEGMENT_SECONDS = 60.0
#: Frames a segment's scan reads before it, so the detector has history at its start.
SCAN_LEAD_SECONDS = 2.0
#: How often the driver reports progress while chunks run (seconds).
TICK = 1.0


@dataclass
class EpisodeView:
    stem: str
    frames: int
    done_frames: int
    chunks: int
    done: int
    running: int
    failed: int
    status: str


@dataclass
class FarmProgress:
    """One event: a line to tell the operator (may be empty) and where every episode stands."""

    message: str
    episodes: list[EpisodeView]
    frames_done: int
    frames_total: int
    fps: float = 0.0
    eta_s: float = float("nan")
    finished: bool = False


@dataclass
class _Now:
    """What the driver last heard: running chunks per episode, frames done per running chunk
    (``stem:start``), and the rate of this run."""

    running: dict[str, int] = field(default_factory=dict)
    live: dict[str, int] = field(default_factory=dict)
    fps: float = 0.0


@dataclass
class _Episode:
    info: VideoInfo
    record: EpisodeRecord
    output: Path


def output_for(src: Path, masters: Path, codec: str) -> Path:
    """``masters/<input stem>.<container of the codec>``."""
    return masters / f"{src.stem}{MASTER_SUFFIX[codec]}"


def _settings(opts: FarmOptions, chunk_frames: int, warmup: int) -> dict[str, Any]:
    # Every field of the look decides pixels, so all of them go into the episode's key.
    return {"look": dataclasses.asdict(opts.look), "codec": opts.codec, "crf": opts.crf,
            "deinterlace": opts.deinterlace, "allow_truncated": opts.allow_truncated,
            "chunk_frames": chunk_frames, "warmup_frames": warmup}


def _chunk_frames(text: str, fps: Fraction) -> int:
    try:
        n = to_frame(parse_position(text), float(fps))
    except (ValueError, RestorerError) as exc:
        raise FarmError(f"--chunk {text!r}: {exc}") from None
    if not n or n <= 0:
        raise FarmError(f"--chunk must be longer than nothing; got {text!r}")
    return n


def _check_inputs(inputs: Sequence[Path], masters: Path, opts: FarmOptions
                  ) -> list[tuple[Path, VideoInfo, Path]]:
    if not inputs:
        raise FarmError("no episodes given")
    if masters.exists() and not masters.is_dir():
        raise FarmError(f"-o {masters} is a file; give a folder for the masters")
    if not masters.parent.is_dir():
        raise FarmError(f"the folder above -o does not exist: {masters.parent}")
    if opts.cpus_per_chunk < 1 or opts.retries < 0:
        raise FarmError("--cpus-per-chunk must be at least 1 and --retries at least 0")
    seen: dict[str, Path] = {}
    out = []
    for src in inputs:
        src = Path(src).resolve()
        dst = output_for(src, masters.resolve(), opts.codec)
        if dst.name in seen:
            raise FarmError(f"{seen[dst.name]} and {src} would both be written as {dst.name}; "
                            "rename one")
        seen[dst.name] = src
        info = probe(src)
        _chunk_frames(opts.chunk, info.fps)
        out.append((src, info, dst))
    return out


def farm_run(inputs: Sequence[Path], masters: Path, opts: FarmOptions | None = None,
             address: str | None = None, cancel: CancelFlag = None,
             stop_now: CancelFlag = None, num_cpus: int | None = None
             ) -> Iterator[FarmProgress]:
    """Render ``inputs`` into ``masters`` on Ray (a local cluster when ``address`` is None,
    with ``num_cpus`` of this machine's cores, default all)."""
    opts = opts or FarmOptions()
    masters = Path(masters)
    sources = _check_inputs(inputs, masters, opts)
    model = _model(opts)  # a missing or corrupt model stops the run before anything is written
    masters.mkdir(exist_ok=True)
    masters = masters.resolve()
    with folder_lock(masters):
        yield from _run_locked(sources, masters, opts, model, address, cancel, stop_now,
                               num_cpus)


def _model(opts: FarmOptions) -> tuple[Path, bytes, str, str]:
    from restorer.checkpoint import default_model_path, read_meta

    path = (opts.model or default_model_path()).resolve()
    meta = read_meta(path)
    data = path.read_bytes()
    return path, data, file_sha256(path), meta.name


def _plan_episodes(sources: list[tuple[Path, VideoInfo, Path]], manifest: Manifest,
                   opts: FarmOptions, model: dict[str, Any]) -> tuple[list[_Episode], list[str]]:
    """Match each source with its record: reuse it when nothing changed, else start afresh."""
    notes: list[str] = []
    episodes = []
    stale: list[Path] = []  # chunks of changed episodes: deleted once every episode is accepted
    for src, info, dst in sources:
        stem = dst.stem
        chunk_frames = _chunk_frames(opts.chunk, info.fps)
        warmup = round(WARMUP_SECONDS * float(info.fps)) if opts.look.stabilise > 0 else 0
        settings = _settings(opts, chunk_frames, warmup)
        source = fingerprint(src)
        key = episode_key(source, model["sha256"], settings)
        old = manifest.episodes.get(stem)
        changed = old is not None and old.key != key
        if changed:
            stale.append(manifest.root / "chunks" / stem)
            notes.append(f"{stem}: the source, model or settings changed since the last run; "
                         "rendering it afresh")
            old = None
        done_before = (old is not None and old.status == "done"
                       and intact(dst, int(old.verified.get("bytes", -1))))
        if not done_before:
            try:
                check_destination(dst, (src,), opts.overwrite)
            except RestorerError as exc:
                made = " (made by an earlier farm run with another source, model or settings)"
                raise FarmError(f"{exc}{made if changed else ''}") from None
        record = old or EpisodeRecord(
            stem=stem, source=source, key=key, settings=settings, model=model,
            output=str(dst), frame_count=info.frame_count,
            fps=f"{info.fps.numerator}/{info.fps.denominator}")
        if not done_before and record.status == "done":
            record.status = "rendering"  # the master was removed or replaced: make it again
        if record.status == "failed":
            record.status, record.error = "rendering", ""
            for c in record.chunks:
                if c.status == "failed":
                    c.status, c.error, c.attempts = "pending", "", 0
        manifest.episodes[stem] = record
        episodes.append(_Episode(info, record, dst))
    for folder in stale:
        shutil.rmtree(folder, ignore_errors=True)
    return episodes, notes


def _views(episodes: list[_Episode], running: dict[str, int],
           live: dict[str, int]) -> list[EpisodeView]:
    views = []
    for ep in episodes:
        rec = ep.record
        counts = {"done": 0, "pending": 0, "failed": 0}
        done_frames = 0
        for c in rec.chunks:
            counts[c.status] += 1
            if c.status == "done":
                done_frames += c.frames
            else:
                done_frames += live.get(f"{rec.stem}:{c.start}", 0)
        views.append(EpisodeView(rec.stem, rec.frame_count, min(done_frames, rec.frame_count),
                                 len(rec.chunks), counts["done"], running.get(rec.stem, 0),
                                 counts["failed"], rec.status))
    return views


def _run_locked(sources: list[tuple[Path, VideoInfo, Path]], masters: Path, opts: FarmOptions,
                model: tuple[Path, bytes, str, str], address: str | None, cancel: CancelFlag,
                stop_now: CancelFlag, num_cpus: int | None) -> Iterator[FarmProgress]:
    model_path, model_bytes, sha, name = model
    manifest = Manifest.load(masters)
    root = manifest.root
    episodes, notes = _plan_episodes(sources, manifest, opts,
                                     {"path": str(model_path), "sha256": sha, "name": name})
    total = sum(ep.info.frame_count for ep in episodes)

    now = _Now()

    def event(message: str, finished: bool = False) -> FarmProgress:
        views = _views(episodes, now.running, now.live)
        done = sum(v.done_frames for v in views)
        left = sum(v.frames - v.done_frames for v in views if v.status == "rendering")
        return FarmProgress(message, views, done, total, now.fps,
                            left / now.fps if now.fps > 0 else float("nan"), finished)

    for note in notes:
        yield event(note)
    todo = [ep for ep in episodes if ep.record.status != "done"]
    for ep in episodes:
        if ep.record.status == "done":
            yield event(f"{ep.record.stem}: already rendered and verified ({ep.output.name}); "
                        "skipped")
    if not todo:
        yield event("nothing to do: every master is already rendered", finished=True)
        return

    from restorer.farm import cluster

    token = root / f".token-{secrets.token_hex(8)}"
    token.write_bytes(b"")
    try:
        with cluster.connect(address, num_cpus) as farm:
            yield event(farm.describe())
            farm.check_storage([str(ep.record.source["path"]) for ep in todo],
                               [str(masters)], str(token))
            yield from _schedule(todo, farm, manifest, opts, model_bytes, sha, cancel,
                                 stop_now, event, now)
    finally:
        token.unlink(missing_ok=True)


def _plan(ep: _Episode, cuts: list[int], codec: str, slots: int) -> None:
    """Cut the episode into chunks, once: the plan is kept in the manifest, so a resumed run
    on a cluster of another size renders the same chunks."""
    rec = ep.record
    s = rec.settings
    rec.cuts = cuts
    suffix = MASTER_SUFFIX[codec]
    length = balanced_chunk(rec.frame_count, s["chunk_frames"], slots)
    rec.chunks = [ChunkRecord(c.start, c.end, c.warmup,
                              f"chunks/{rec.stem}/{rec.key[:8]}-{c.name}{suffix}")
                  for c in plan_chunks(rec.frame_count, length, cuts, s["warmup_frames"])]


def _schedule(todo: list[_Episode], farm: Any, manifest: Manifest, opts: FarmOptions,
              model_bytes: bytes, sha: str, cancel: CancelFlag, stop_now: CancelFlag,
              event: Any, now: _Now) -> Iterator[FarmProgress]:
    from restorer.farm.tasks import ChunkJob

    root = manifest.root
    pending: deque[tuple[_Episode, ChunkRecord]] = deque()
    skipped = 0

    def queue(ep: _Episode) -> None:
        nonlocal skipped
        (root / "chunks" / ep.record.stem).mkdir(parents=True, exist_ok=True)
        for c in ep.record.chunks:
            if c.status == "done" and intact(root / c.file, c.bytes):
                skipped += 1
                continue
            c.status = "pending"
            pending.append((ep, c))

    # Episodes not cut yet: short ones are one chunk; long ones are scanned for scene cuts in
    # segments on the cluster, and rendering starts on the others meanwhile.
    scans: dict[Any, tuple[_Episode, int]] = {}
    parts: dict[str, list[list[int] | None]] = {}
    for ep in todo:
        rec = ep.record
        if not rec.chunks and rec.frame_count >= 1.5 * rec.settings["chunk_frames"]:
            fps = float(ep.info.fps)
            n = rec.frame_count
            segs = max(1, min(farm.slots(1), int(n // (SCAN_SEGMENT_SECONDS * fps))))
            bounds = [round(i * n / segs) for i in range(segs + 1)]
            parts[rec.stem] = [None] * segs
            for i in range(segs):
                ref = farm.scan(str(rec.source["path"]), bounds[i], bounds[i + 1],
                                round(SCAN_LEAD_SECONDS * fps))
                scans[ref] = (ep, i)
            continue
        if not rec.chunks:
            _plan(ep, [], opts.codec, farm.slots(opts.cpus_per_chunk))
            manifest.save()
        queue(ep)
    n_chunks = sum(len(ep.record.chunks) for ep in todo)
    if skipped:
        yield event(f"resuming: {skipped} of {n_chunks} chunks were already rendered and are "
                    "kept")
    yield event(f"{len(todo)} episode(s) to render, {farm.slots(opts.cpus_per_chunk)} "
                "chunk(s) at a time"
                + (f": {len(pending)} chunk(s) to render" if pending else "")
                + (f"; finding the scene cuts of {len(parts)} episode(s) first" if parts
                   else ""))
    model_ref = farm.put(model_bytes)
    running: dict[Any, tuple[_Episode, ChunkRecord]] = {}
    submitted: dict[str, float] = {}
    stopping = False
    t0 = time.monotonic()
    rendered = 0
    last_tick = 0.0
    ready_eps = [ep for ep in todo if ep.record.chunks
                 and all(c.status == "done" for c in ep.record.chunks)]

    def stop_message() -> str:
        return (f"stopping: no more chunks will start; {len(running)} running chunk(s) will "
                "finish and be kept (interrupt again to cancel them)")

    def heard() -> None:
        """Refresh ``now`` from the running chunks and the workers' reports."""
        now.running = {}
        for ep, _ in running.values():
            now.running[ep.record.stem] = now.running.get(ep.record.stem, 0) + 1
        now.live = farm.live()
        dt = time.monotonic() - t0
        inflight = sum(now.live.get(f"{ep.record.stem}:{c.start}", 0)
                       for ep, c in running.values())
        now.fps = (rendered + inflight) / dt if dt > 0 else 0.0

    for ep in ready_eps:
        yield from _finish_episode(ep, manifest, opts, event)
    while pending or running or scans:
        if is_cancelled(stop_now) and (running or scans):
            n = len(running)
            farm.cancel(list(running) + list(scans))
            running.clear()
            manifest.save()
            raise Cancelled(f"farm stopped: {n} running chunk(s) cancelled and discarded; the "
                            f"manifest in {root} is consistent, run again to resume")
        if is_cancelled(cancel) and not stopping:
            stopping = True
            pending.clear()
            yield event(stop_message())
        if stopping and scans:
            farm.cancel(list(scans))  # nothing of a scan is kept: its episode is cut next time
            scans.clear()
        while (pending and len(running) + len(scans) < farm.slots(opts.cpus_per_chunk)
               and not stopping):
            ep, c = pending.popleft()
            if ep.record.status == "failed":
                continue
            job = ChunkJob(stem=ep.record.stem, src=str(ep.record.source["path"]),
                           dst=str(root / c.file), start=c.start, end=c.end, warmup=c.warmup,
                           model_sha256=sha, opts=opts)
            running[farm.submit(job, model_ref, opts.cpus_per_chunk, opts.retries)] = (ep, c)
            submitted[f"{ep.record.stem}:{c.start}"] = time.monotonic()
        if not running and not scans:
            break
        results = farm.wait(list(running) + list(scans), timeout=0.5)
        if is_cancelled(cancel) and not stopping:  # said before the results that follow
            stopping = True
            pending.clear()
            yield event(stop_message())
        for ref, outcome in results:
            if ref in scans:
                ep, i = scans.pop(ref)
                rec = ep.record
                if isinstance(outcome, BaseException):
                    if rec.status != "failed":
                        rec.status = "failed"
                        rec.error = f"finding its scene cuts failed: {outcome}"
                        manifest.save()
                        yield event(f"{rec.stem}: {rec.error}")
                    continue
                parts[rec.stem][i] = list(outcome)
                if rec.status != "failed" and all(x is not None for x in parts[rec.stem]):
                    cuts = sorted({c for part in parts[rec.stem] for c in (part or [])})
                    _plan(ep, cuts, opts.codec, farm.slots(opts.cpus_per_chunk))
                    manifest.save()
                    queue(ep)
                    yield event(f"{rec.stem}: {len(cuts)} scene cut(s); {len(rec.chunks)} "
                                "chunk(s) to render")
                continue
            ep, c = running.pop(ref)
            rec = ep.record
            c.attempts = farm.attempts(f"{rec.stem}:{c.start}")
            if isinstance(outcome, BaseException):
                c.status, c.error = "failed", str(outcome)
                rec.status = "failed"
                rec.error = (f"chunk {c.start}-{c.end} ({ep.info.timecode(c.start)} to "
                             f"{ep.info.timecode(c.end)}) failed after {c.attempts} attempt(s): "
                             f"{outcome}")
                manifest.save()
                heard()
                yield event(f"{rec.stem}: {rec.error}; its other chunks are not rendered")
                continue
            c.status, c.bytes = "done", int(outcome["bytes"])
            c.seconds, c.node = float(outcome["seconds"]), str(outcome["node"])
            c.setup = float(outcome["setup"])
            c.wall = round(time.monotonic() - submitted[f"{rec.stem}:{c.start}"], 3)
            rendered += c.frames
            manifest.save()
            heard()
            for note in outcome.get("notes", []):
                yield event(f"{rec.stem}: {note}")
            yield event(f"{rec.stem}: chunk {c.start}-{c.end} done on {c.node} in "
                        f"{c.seconds:.1f} s")
            if all(x.status == "done" for x in rec.chunks):
                yield from _finish_episode(ep, manifest, opts, event)
        if time.monotonic() - last_tick >= TICK:
            last_tick = time.monotonic()
            heard()
            yield event("")
    heard()
    failed = [ep.record for ep in todo if ep.record.status == "failed"]
    if stopping:
        raise Cancelled(f"farm stopped: the running chunks finished and were kept; run again to "
                        f"render the rest (manifest in {root})")
    yield event(f"finished: {sum(ep.record.status == 'done' for ep in todo)} master(s) written"
                + (f", {len(failed)} failed: " + "; ".join(f"{r.stem}: {r.error}" for r in failed)
                   if failed else ""), finished=True)


def _finish_episode(ep: _Episode, manifest: Manifest, opts: FarmOptions, event: Any
                    ) -> Iterator[FarmProgress]:
    """Assemble, verify, record and clean up one episode whose chunks are all done."""
    from restorer.farm.assemble import assemble
    from restorer.record import record_export
    from restorer.render import RenderJob

    rec = ep.record
    root = manifest.root
    files = [root / c.file for c in rec.chunks]
    written = sum(c.frames for c in rec.chunks)
    per_source = 1
    if opts.deinterlace:
        # Field-rate output from an interlaced source: twice the frames at twice the rate.
        per_source = probe(files[0]).frame_count // max(1, rec.chunks[0].frames)
    fps = ep.info.fps * per_source
    try:
        measured, notes = assemble(files, ep.info, ep.output, written * per_source, fps)
    except RestorerError as exc:
        rec.status, rec.error = "failed", str(exc)
        manifest.save()
        yield event(f"{rec.stem}: {exc}")
        return
    measured["bytes"] = ep.output.stat().st_size
    rec.verified, rec.status, rec.error = measured, "done", ""
    job = RenderJob(src=Path(rec.source["path"]), dst=ep.output, model=Path(rec.model["path"]),
                    look=opts.look, device=opts.device, codec=opts.codec, crf=opts.crf,
                    deinterlace=opts.deinterlace)
    try:
        record_export(job, ep.output, source_frames=rec.frame_count,
                      frames_written=written * per_source)
    except RestorerError as exc:
        notes.append(str(exc))
    if not opts.keep_chunks:
        shutil.rmtree(root / "chunks" / rec.stem, ignore_errors=True)
    manifest.save()
    for note in notes:
        yield event(f"{rec.stem}: {note}")
    yield event(f"{rec.stem}: wrote {ep.output} ({measured['frames']} frames at "
                f"{measured['fps']} fps, verified against the source)")


def status_lines(masters: Path) -> list[str]:
    """What ``restorer farm status`` prints: the manifest alone, no cluster needed."""
    manifest = Manifest.load(masters)
    if not manifest.episodes:
        raise FarmError(f"no farm run has written to {masters} (no {manifest.path})")
    lines = []
    for stem, rec in manifest.episodes.items():
        if rec.status == "done":
            v = rec.verified
            lines.append(f"{stem}: done; {Path(rec.output).name} verified ({v.get('frames')} "
                         f"frames at {v.get('fps')} fps, {len(rec.chunks)} chunks)")
            continue
        counts = rec.counts(manifest.root)
        frames = sum(c.frames for c in rec.done_chunks(manifest.root))
        failed = f", {counts['failed']} failed" if counts["failed"] else ""
        lines.append(f"{stem}: {rec.status}; chunks {counts['done']}/{len(rec.chunks)} done"
                     f"{failed}; {frames}/{rec.frame_count} frames")
        if rec.error:
            lines.append(f"  {rec.error}")
    return lines
