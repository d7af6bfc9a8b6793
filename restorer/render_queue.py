"""A render queue: export jobs waiting their turn, run one after another, kept across restarts.

The desk queues an episode or a range with the settings it has when it is queued (model, look,
per-shot chroma, codec, output), shows each job's progress and lets the operator cancel one. The
queue is a plain JSON file written atomically after every change, so a crash or a restart keeps
it: a job that was running when the desk stopped is waiting again (its output was never
committed, as every export writes to a temporary file first).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from restorer.cancel import CancelFlag, is_cancelled
from restorer.errors import Cancelled, RestorerError
from restorer.fsutil import atomic_path
from restorer.look import Look
from restorer.render import Progress, RenderJob, render
from restorer.shots import ShotChroma, check_shots

FORMAT = "restorer-queue"
WAITING, RUNNING, DONE, FAILED, CANCELLED = "waiting", "running", "done", "failed", "cancelled"
STATUSES = (WAITING, RUNNING, DONE, FAILED, CANCELLED)


def job_to_json(job: RenderJob) -> dict[str, Any]:
    return {"src": str(job.src), "dst": str(job.dst),
            "model": str(job.model) if job.model is not None else None,
            "look": {"chroma": job.look.chroma, "working_size": job.look.working_size,
                     "stabilise": job.look.stabilise},
            "codec": job.codec, "crf": job.crf, "start": job.start, "end": job.end,
            "compare": job.compare, "overwrite": job.overwrite,
            "allow_truncated": job.allow_truncated, "deinterlace": job.deinterlace,
            "shots": [s.to_dict() for s in job.shots]}


def job_from_json(d: dict[str, Any]) -> RenderJob:
    look = d.get("look") or {}
    return RenderJob(
        src=Path(d["src"]), dst=Path(d["dst"]),
        model=Path(d["model"]) if d.get("model") else None,
        look=Look(chroma=look.get("chroma", 1.0), working_size=look.get("working_size"),
                  stabilise=look.get("stabilise", 0.0)),
        codec=str(d.get("codec", "h264")), crf=d.get("crf"), start=int(d.get("start", 0)),
        end=None if d.get("end") is None else int(d["end"]), compare=bool(d.get("compare")),
        overwrite=bool(d.get("overwrite")), allow_truncated=bool(d.get("allow_truncated")),
        deinterlace=bool(d.get("deinterlace")),
        shots=check_shots(ShotChroma.from_dict(s) for s in d.get("shots") or []))


@dataclass
class QueuedJob:
    """One entry: the job, and how it went."""

    id: int
    job: RenderJob
    status: str = WAITING
    done: int = 0
    total: int = 0
    message: str = ""
    added: float = field(default_factory=time.time)

    @property
    def fraction(self) -> float:
        return 1.0 if self.status == DONE else self.done / self.total if self.total else 0.0

    @property
    def label(self) -> str:
        end = "end" if self.job.end is None else str(self.job.end - 1)
        return f"{self.job.src.name} [{self.job.start}–{end}] → {self.job.dst.name}"

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "job": job_to_json(self.job), "status": self.status,
                "done": self.done, "total": self.total, "message": self.message,
                "added": self.added}


class RenderQueue:
    """Jobs in order; ``path`` (optional) is where the queue persists after each change."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.jobs: list[QueuedJob] = []
        self.next_id = 1  # never reused, so a job's number means one job for good
        self.load_error = ""  # why a stored queue could not be read, if it could not

    # ------------------------------------------------------------------ persistence
    def save(self) -> None:
        if self.path is None:
            return
        text = json.dumps({"format": FORMAT, "version": 1, "next_id": self.next_id,
                           "jobs": [j.to_json() for j in self.jobs]}, indent=1)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.path) as tmp:
            tmp.write_text(text + "\n", encoding="utf-8")

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> RenderQueue:
        """The queue stored at ``path`` (empty if none). A damaged file is set aside beside
        itself (``.damaged``), never overwritten, and the reason kept in ``load_error``."""
        q = cls(path)
        assert q.path is not None
        if not q.path.exists():
            return q
        try:
            data = json.loads(q.path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or data.get("format") != FORMAT:
                raise ValueError("not a Restorer queue")
            q.next_id = int(data.get("next_id", 1))
            for d in data.get("jobs", []):
                status = str(d.get("status", WAITING))
                if status not in STATUSES:
                    raise ValueError(f"unknown status {status!r}")
                entry = QueuedJob(int(d["id"]), job_from_json(d["job"]), status,
                                  int(d.get("done", 0)), int(d.get("total", 0)),
                                  str(d.get("message", "")), float(d.get("added", 0.0)))
                if entry.status == RUNNING:  # the desk stopped under it: nothing was kept
                    entry.status, entry.done = WAITING, 0
                    entry.message = "interrupted; will start again"
                q.jobs.append(entry)
        except (OSError, ValueError, KeyError, TypeError, RestorerError) as exc:
            q.jobs = []
            aside = q.path.with_name(q.path.name + ".damaged")
            q.load_error = f"the stored render queue could not be read ({exc}); kept as {aside}"
            try:
                os.replace(q.path, aside)
            except OSError:
                pass
        q.next_id = max([q.next_id, *(j.id + 1 for j in q.jobs)])
        return q

    # ------------------------------------------------------------------ editing
    def add(self, job: RenderJob) -> QueuedJob:
        """Queue ``job``; refuses an output another waiting job already writes."""
        for j in self.jobs:
            if j.status in (WAITING, RUNNING) and j.job.dst.resolve() == job.dst.resolve():
                raise RestorerError(f"{job.dst.name} is already the output of queued job "
                                    f"{j.id}; choose another file name")
        entry = QueuedJob(self.next_id, job)
        self.next_id += 1
        self.jobs.append(entry)
        self.save()
        return entry

    def get(self, job_id: int) -> QueuedJob:
        for j in self.jobs:
            if j.id == job_id:
                return j
        raise KeyError(job_id)

    def remove(self, job_id: int) -> None:
        """Take a job that is not running off the queue."""
        j = self.get(job_id)
        if j.status == RUNNING:
            raise RestorerError("the job is running; cancel it first")
        self.jobs.remove(j)
        self.save()

    def cancel_waiting(self, job_id: int) -> None:
        j = self.get(job_id)
        if j.status == WAITING:
            j.status, j.message = CANCELLED, "cancelled before it started"
            self.save()

    def retry(self, job_id: int) -> None:
        j = self.get(job_id)
        if j.status in (FAILED, CANCELLED):
            j.status, j.done, j.message = WAITING, 0, ""
            self.save()

    def clear_finished(self) -> None:
        self.jobs = [j for j in self.jobs if j.status in (WAITING, RUNNING, FAILED)]
        self.save()

    def next_waiting(self) -> QueuedJob | None:
        return next((j for j in self.jobs if j.status == WAITING), None)

    # ------------------------------------------------------------------ running
    def run_next(self, cancel: CancelFlag = None, colouriser: Any = None,
                 on_done: Any = None) -> Iterator[tuple[QueuedJob, Progress | None]]:
        """Run the first waiting job, yielding ``(entry, progress)``; its outcome is in the
        entry (done, failed or cancelled) when this ends. ``on_done(job, output)`` runs once
        the output is committed (the desk writes the export record there)."""
        entry = self.next_waiting()
        if entry is None:
            return
        entry.status, entry.done, entry.message = RUNNING, 0, "starting"
        self.save()
        yield entry, None
        try:
            for ev in render(entry.job, cancel=cancel, colouriser=colouriser):
                entry.done, entry.total = ev.done, ev.total
                entry.message = (f"{ev.done} / {ev.total} frames, {ev.fps:.1f} fps"
                                 if ev.done else ev.message)
                if ev.output is not None:
                    if on_done is not None:
                        on_done(entry.job, ev.output)
                    entry.status, entry.message = DONE, f"wrote {ev.output}"
                yield entry, ev
            if entry.status == RUNNING:  # render ended without committing: never expected
                raise RestorerError("the export ended without writing its output")
        except Cancelled:
            entry.status, entry.message = CANCELLED, "cancelled; nothing was written"
        except (RestorerError, OSError) as exc:
            entry.status, entry.message = FAILED, str(exc).splitlines()[0] if str(exc) else \
                type(exc).__name__
        finally:
            if entry.status == RUNNING:  # an unexpected error or a closed generator
                entry.status = CANCELLED if is_cancelled(cancel) else FAILED
                entry.message = entry.message or "stopped"
            self.save()
        yield entry, None
