"""The farm's record of an output folder: what each episode is, how it is cut, which chunks are
done, and whether its master is assembled and verified. No Ray here.

It lives in ``<masters>/restorer-farm/manifest.json`` beside the chunk files, and only the driver
writes it, atomically after every finished chunk: a driver killed at any moment leaves a manifest
that is the state before or after one chunk, never a torn one. A chunk counts as done only when
the manifest says so *and* its file is there with the size recorded.

An episode's :attr:`EpisodeRecord.key` is a hash of everything that decides its pixels: the
source file (path, size, modification time), the model's bytes, the look, the codec and the chunk
plan. A run whose key differs starts the episode again; its old chunks are deleted.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from restorer.errors import FarmError
from restorer.fsutil import TEMP_PREFIX, atomic_path

FOLDER = "restorer-farm"
MANIFEST = "manifest.json"
#: Bumped when a field changes meaning.
FORMAT = 1


def farm_dir(masters: Path) -> Path:
    return masters / FOLDER


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fingerprint(path: Path) -> dict[str, Any]:
    """What identifies a source file without reading it: a changed file gets a new key."""
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def episode_key(source: dict[str, Any], model_sha256: str, settings: dict[str, Any]) -> str:
    blob = json.dumps({"source": source, "model": model_sha256, "settings": settings},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class ChunkRecord:
    start: int
    end: int
    warmup: int
    #: Relative to the farm folder.
    file: str
    status: str = "pending"  # pending | done | failed
    bytes: int = 0
    #: The worker's time for the chunk, of it the time to its first frames (model, ONNX
    #: session, decoder, first batch), and the driver's from submitting to the result.
    seconds: float = 0.0
    setup: float = 0.0
    wall: float = 0.0
    node: str = ""
    attempts: int = 0
    error: str = ""

    @property
    def frames(self) -> int:
        return self.end - self.start


@dataclass
class EpisodeRecord:
    stem: str
    source: dict[str, Any]
    key: str
    settings: dict[str, Any]
    model: dict[str, Any]
    output: str
    frame_count: int
    fps: str
    cuts: list[int] = field(default_factory=list)
    chunks: list[ChunkRecord] = field(default_factory=list)
    status: str = "rendering"  # rendering | done | failed
    verified: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    def done_chunks(self, root: Path) -> list[ChunkRecord]:
        """Chunks the manifest calls done whose file is still there, whole."""
        return [c for c in self.chunks if c.status == "done" and intact(root / c.file, c.bytes)]

    def counts(self, root: Path) -> dict[str, int]:
        """Chunks done (with their files intact), pending and failed."""
        out = {"done": 0, "pending": 0, "failed": 0}
        for c in self.chunks:
            ok = c.status != "done" or intact(root / c.file, c.bytes)
            out[c.status if ok else "pending"] += 1
        return out


def intact(path: Path, size: int) -> bool:
    """``path`` is there with ``size`` bytes (a file cut short or replaced is not)."""
    try:
        return path.stat().st_size == size and size > 0
    except OSError:
        return False


@dataclass
class Manifest:
    root: Path
    episodes: dict[str, EpisodeRecord] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return self.root / MANIFEST

    @classmethod
    def load(cls, masters: Path) -> Manifest:
        """The manifest of ``masters`` (an empty one when there is none yet)."""
        root = farm_dir(masters)
        path = root / MANIFEST
        if not path.exists():
            return cls(root)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != FORMAT:
                raise ValueError(f"format {data.get('format')!r}, expected {FORMAT}")
            episodes = {}
            for stem, ep in data["episodes"].items():
                chunks = [ChunkRecord(**c) for c in ep.pop("chunks")]
                episodes[stem] = EpisodeRecord(**ep, chunks=chunks)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise FarmError(f"the farm manifest {path} is unreadable ({exc}); move it away to "
                            "start the folder afresh") from exc
        return cls(root, episodes)

    def save(self) -> None:
        data = {"format": FORMAT,
                "episodes": {s: dataclasses.asdict(e) for s, e in self.episodes.items()}}
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            with atomic_path(self.path) as tmp:
                tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        except OSError as exc:
            raise FarmError(f"cannot write the farm manifest {self.path}: "
                            f"{exc.strerror or exc}") from exc


@contextmanager
def folder_lock(masters: Path) -> Iterator[None]:
    """Hold ``masters`` for one driver: a second ``farm run`` on it stops with a clear error.

    An OS lock, so a driver killed with SIGKILL leaves none behind. Temporary files of chunks
    cut off by such a kill are deleted once the lock is held (nobody else writes there).
    """
    root = farm_dir(masters)
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            raise FarmError(f"another farm run (pid {holder}) is writing to {masters}; wait for "
                            "it or stop it first") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        for stale in root.rglob(f"{TEMP_PREFIX}*"):
            stale.unlink(missing_ok=True)
        yield
    finally:
        os.close(fd)
