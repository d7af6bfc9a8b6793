"""What runs on the cluster's workers: the storage check, the scene scan and the chunk render.

The functions are plain Python; :func:`remote` wraps them for Ray where the driver needs them, so
they can be tested (and read) without a cluster. Every worker gets the model as bytes from the
object store and keeps it by its hash, so all nodes render with the same weights wherever the
package is installed.

``RESTORER_FARM_FAULTS`` (JSON, tests only) simulates what a test cannot stage on one machine:
``{"fail": ["<stem>:<start>", ...]}`` makes those chunks raise on every attempt, and
``{"hide": ["<path>", ...]}`` makes the storage check behave as a node that cannot see them.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from restorer.errors import FarmError
from restorer.farm.options import FarmOptions
from restorer.fsutil import atomic_path

FAULTS_ENV = "RESTORER_FARM_FAULTS"
#: Seconds between a chunk's progress reports to the driver.
REPORT_EVERY = 0.5


def _faults() -> dict[str, list[str]]:
    text = os.environ.get(FAULTS_ENV, "")
    return json.loads(text) if text else {}


def node_name() -> str:
    try:
        import ray

        return str(ray.util.get_node_ip_address())
    except Exception:  # outside a cluster (tests calling the plain functions)
        return socket.gethostname()


def check_storage(read: list[str], write: list[str], token: str) -> str:
    """On one node: can it read every input and the driver's token, and write the output
    folder? Returns "" or the first problem, naming the node and the path."""
    hidden = set(_faults().get("hide", []))
    where = f"node {node_name()}"

    def visible(path: str) -> bool:
        return path not in hidden and os.path.exists(path)

    for path in read:
        if not visible(path) or not os.access(path, os.R_OK):
            return (f"{where} cannot read {path}: inputs and -o must be on storage every node "
                    "sees at the same path")
    for folder in write:
        if not visible(folder):
            return (f"{where} cannot see the output folder {folder}: inputs and -o must be on "
                    "storage every node sees at the same path")
        probe = Path(folder) / f".restorer-farm-probe-{os.getpid()}-{time.monotonic_ns()}"
        try:
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            return f"{where} cannot write to {folder}: {exc.strerror or exc}"
    if not visible(token):
        # The path exists but is another disk: a folder of the same name on the node itself.
        return (f"{where} sees a different {Path(token).parent.parent} from the driver's (the "
                "driver's marker file is not there): -o must be shared storage, not a local "
                "folder of the same name")
    return ""


def scan_cuts(src: str, start: int = 0, end: int | None = None, lead: int = 0) -> list[int]:
    """The scene cuts in ``[start, end)`` of an episode (frame numbers starting a shot).

    The detector reads ``lead`` frames before ``start`` first, so it has the recent history it
    judges a cut against and a cut at ``start`` itself is seen: segments of one episode can be
    scanned on several workers at once.
    """
    from restorer.scenes import detect_cuts

    return [c for c in detect_cuts(src, max(0, start - lead), end) if c >= start]


# One colouriser per worker process: a worker renders chunk after chunk of the same model, and
# loading it (weights, ONNX Runtime session) costs seconds each time.
_COLOURISERS: dict[tuple[str, str, int, int], Any] = {}


def _colouriser(job: ChunkJob, model: bytes) -> Any:
    from restorer.engine import Colouriser

    key = (job.model_sha256, job.opts.device, job.opts.batch_size, job.threads)
    col = _COLOURISERS.get(key)
    if col is None:
        _COLOURISERS.clear()
        col = Colouriser.load(model_file(job.model_sha256, model), device=job.opts.device,
                              batch_size=job.opts.batch_size)
        _COLOURISERS[key] = col
    return col


def model_file(sha256: str, data: bytes) -> Path:
    """The model, kept on this node by its hash (written once, atomically)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    path = Path(base) / "restorer" / "farm-models" / f"{sha256}.safetensors"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
    return path


@dataclass(frozen=True)
class ChunkJob:
    """One chunk to render: an ordinary export of a range, video only, to ``dst``."""

    stem: str
    src: str
    dst: str
    start: int
    end: int
    warmup: int
    model_sha256: str
    #: The colourize options of the run (its model path is the driver's; the worker uses the
    #: bytes it is sent, by hash).
    opts: FarmOptions

    @property
    def threads(self) -> int:
        return self.opts.cpus_per_chunk

    @property
    def id(self) -> str:
        return f"{self.stem}:{self.start}"


def render_chunk(job: ChunkJob, model: bytes, board: Any = None) -> dict[str, Any]:
    """Render ``job`` on this worker; report frames done to ``board`` (a Ray actor) as it goes.

    The chunk file is written by the export's own atomic writer: it appears whole or not at all.
    """
    if board is not None:
        board.attempt.remote(job.id)
    if job.id in set(_faults().get("fail", [])):
        raise FarmError(f"simulated failure of chunk {job.id} ({FAULTS_ENV})")
    # Each chunk is given ``threads`` cores by the scheduler: the network uses that many.
    os.environ["RESTORER_ORT_THREADS"] = str(job.threads)
    import torch

    from restorer.render import RenderJob, render

    torch.set_num_threads(job.threads)
    t0 = time.perf_counter()
    o = job.opts
    rjob = RenderJob(src=Path(job.src), dst=Path(job.dst),
                     model=model_file(job.model_sha256, model), look=o.look, device=o.device,
                     codec=o.codec, crf=o.crf, start=job.start, end=job.end,
                     batch_size=o.batch_size, overwrite=True, allow_truncated=o.allow_truncated,
                     deinterlace=o.deinterlace, warmup=job.warmup, streams=False,
                     check_colour=job.start == 0)
    last = 0.0
    frames = 0
    setup = 0.0
    notes: list[str] = []
    for ev in render(rjob, colouriser=_colouriser(job, model)):
        frames = ev.done
        notes = ev.notes
        now = time.perf_counter()
        if not setup and ev.done:
            setup = now - t0  # model, ONNX session, decoder and the first batch
        if board is not None and (now - last >= REPORT_EVERY or ev.output is not None):
            board.report.remote(job.id, ev.done)
            last = now
    size = Path(job.dst).stat().st_size
    # The source's notes concern the whole episode: the first chunk brings them to the driver.
    return {"id": job.id, "bytes": size, "frames": frames, "setup": round(setup, 3),
            "notes": list(notes) if job.start == 0 else [],
            "seconds": round(time.perf_counter() - t0, 3), "node": node_name()}


class Board:
    """Frames done per running chunk, as the workers report them (a Ray actor)."""

    def __init__(self) -> None:
        self.done: dict[str, int] = {}
        self.attempts: dict[str, int] = {}

    def attempt(self, chunk: str) -> None:
        self.attempts[chunk] = self.attempts.get(chunk, 0) + 1
        self.done[chunk] = 0

    def tries(self, chunk: str) -> int:
        return self.attempts.get(chunk, 0)

    def report(self, chunk: str, done: int) -> None:
        self.done[chunk] = done

    def snapshot(self) -> dict[str, int]:
        return dict(self.done)
