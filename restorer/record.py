"""The record of an export: a small JSON file beside the output saying how it was made.

A master outlives the session that made it; months later nobody remembers which model, chroma
strength or range produced it. ``<output>.restorer.json`` answers that: the source, the model
(path and name), the look (chroma, working size, stabilisation), the frame range, the codec, the
Restorer version and the date. The desk and ``restorer colourize`` both write it, once the
export has committed, atomically (a reader sees no record or a whole one). No Qt here.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from restorer import __version__
from restorer.errors import OutputError
from restorer.fsutil import atomic_path

if TYPE_CHECKING:
    from restorer.checkpoint import ModelMeta
    from restorer.render import RenderJob

RECORD_SUFFIX = ".restorer.json"
#: Bumped when a field changes meaning, so tools reading old records can tell.
RECORD_FORMAT = 1


def record_path(output: str | os.PathLike[str]) -> Path:
    """Where the record of ``output`` lives: ``out.mp4`` -> ``out.mp4.restorer.json``."""
    output = Path(output)
    return output.with_name(output.name + RECORD_SUFFIX)


def export_record(job: RenderJob, output: str | os.PathLike[str], *,
                  model_path: Path | None, model_name: str, model_working_size: int | None,
                  end: int, frames_written: int | None = None,
                  now: datetime | None = None) -> dict[str, Any]:
    """The record of ``job`` as a JSON-ready dict.

    Parameters
    ----------
    job
        The job that ran.
    output
        The file it wrote.
    model_path, model_name
        The model used (``model_path`` None: one handed over in memory, not read from a file).
    model_working_size
        The model's own working size, which the look used when it named none.
    end
        Exclusive end of the range rendered (``job.end`` may be None: the whole episode).
    frames_written
        Frames in the output, when known (twice the range when deinterlaced to field rate).
    now
        The date to record (default: the current time, UTC).
    """
    look = job.look
    working_size = look.working_size if look.working_size is not None else model_working_size
    when = (now or datetime.now(timezone.utc)).isoformat(timespec="seconds")
    return {
        "format": RECORD_FORMAT,
        "output": str(Path(output)),
        "source": str(job.src),
        "model": {"path": str(model_path) if model_path is not None else None,
                  "name": model_name},
        "look": {"chroma": look.chroma, "working_size": working_size,
                 "stabilise": look.stabilise},
        "shots": [sh.to_dict() for sh in job.shots],
        "range": {"start": job.start, "end": end, "frames": end - job.start,
                  **({"frames_written": frames_written} if frames_written is not None else {})},
        "codec": job.codec,
        "crf": job.crf,
        "compare": job.compare,
        "deinterlace": job.deinterlace,
        "restorer_version": __version__,
        "date": when,
    }


def write_record(output: str | os.PathLike[str], record: dict[str, Any]) -> Path:
    """Write ``record`` beside ``output`` atomically and return its path.

    Raises
    ------
    OutputError
        The folder cannot be written (the output itself is not touched).
    """
    path = record_path(output)
    try:
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n",
                           encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"cannot write the export record {path.name}: "
                          f"{exc.strerror or exc}") from exc
    return path


def record_export(job: RenderJob, output: str | os.PathLike[str], *,
                  model: ModelMeta | None = None, source_frames: int | None = None,
                  frames_written: int | None = None) -> Path:
    """Record a finished export of ``job`` beside ``output``; return the record's path.

    ``model`` is the metadata of the model used when the caller has it (the desk hands its
    colouriser over); without it, the job's model file (or the shipped default, which a job
    with no model uses) is read for its name. ``source_frames`` resolves a job with no end.

    Raises
    ------
    OutputError
        The record cannot be written.
    """
    from restorer.checkpoint import default_model_path, read_meta

    path = job.model
    if model is None:
        path = path if path is not None else default_model_path()
        model = read_meta(path)
    end = job.end if job.end is not None else source_frames
    if end is None:
        from restorer.media import probe

        end = probe(job.src).frame_count
    if source_frames is not None:
        end = min(end, source_frames)
    record = export_record(job, output, model_path=path, model_name=model.name,
                           model_working_size=model.working_size, end=end,
                           frames_written=frames_written)
    return write_record(output, record)
