"""A desk project: one episode with its model, look, marks, cuts and per-shot settings, saved as
one human-readable JSON file (``*.restorer``) and reopened exactly.

Paths inside the file are written relative to the project's folder when they lie under it, so a
project folder can be moved or copied to another machine with its episode. The file is written
atomically (temporary file, then rename), so a crash or a full disk never leaves half a project.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from restorer.errors import RestorerError
from restorer.fsutil import atomic_path
from restorer.look import Look
from restorer.shots import ShotChroma, ShotChromas, check_shots

PROJECT_SUFFIX = ".restorer"
FORMAT = "restorer-project"
VERSION = 1


class ProjectError(RestorerError):
    """A project file that cannot be read or written."""


@dataclass
class Project:
    """Everything the desk needs to reopen an episode as it was left."""

    episode: Path
    model: Path | None = None
    look: Look = field(default_factory=Look)
    preset: str = "balanced"
    mode: str = "side"
    frame: int = 0
    in_point: int | None = None
    out_point: int | None = None
    cuts: list[int] | None = None  # None: not scanned yet
    shots: ShotChromas = ()
    wipe: float = 0.5

    def export_range(self) -> tuple[int, int | None]:
        """``(start, end)`` of the marked range (end exclusive; None: to the end)."""
        start = self.in_point or 0
        end = self.out_point + 1 if self.out_point is not None else None
        return start, end

    def to_json(self, folder: Path) -> dict[str, Any]:
        return {
            "format": FORMAT, "version": VERSION,
            "episode": _portable(self.episode, folder),
            "model": _portable(self.model, folder) if self.model is not None else None,
            "look": {"chroma": self.look.chroma, "stabilise": self.look.stabilise,
                     "working_size": self.look.working_size, "preset": self.preset},
            "view": {"mode": self.mode, "frame": self.frame, "wipe": round(self.wipe, 4)},
            "marks": {"in": self.in_point, "out": self.out_point},
            "cuts": self.cuts,
            "shots": [s.to_dict() for s in self.shots],
        }

    @classmethod
    def from_json(cls, d: Any, folder: Path) -> Project:
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise ProjectError("not a Restorer project (no \"format\": \"restorer-project\")")
        if int(d.get("version", 0)) > VERSION:
            raise ProjectError(f"made by a newer Restorer (project version {d.get('version')}; "
                               f"this one reads {VERSION})")
        try:
            look, view, marks = d.get("look") or {}, d.get("view") or {}, d.get("marks") or {}
            cuts = d.get("cuts")
            return cls(
                episode=_resolve(str(d["episode"]), folder),
                model=_resolve(str(d["model"]), folder) if d.get("model") else None,
                look=Look(chroma=look.get("chroma", 1.0), stabilise=look.get("stabilise", 0.0),
                          working_size=look.get("working_size")),
                preset=str(look.get("preset", "balanced")),
                mode=str(view.get("mode", "side")),
                frame=int(view.get("frame", 0)),
                in_point=_int_or_none(marks.get("in")),
                out_point=_int_or_none(marks.get("out")),
                cuts=[int(c) for c in cuts] if isinstance(cuts, list) else None,
                shots=check_shots(ShotChroma.from_dict(s) for s in d.get("shots") or []),
                wipe=float(view.get("wipe", 0.5)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProjectError(f"a damaged project: {type(exc).__name__} {exc}") from None
        except RestorerError as exc:
            raise ProjectError(f"a damaged project: {exc}") from None


def _int_or_none(v: Any) -> int | None:
    return None if v is None else int(v)


def _portable(path: Path, folder: Path) -> str:
    path = Path(os.path.abspath(path))
    try:
        return path.relative_to(Path(os.path.abspath(folder))).as_posix()
    except ValueError:
        return str(path)


def _resolve(text: str, folder: Path) -> Path:
    p = Path(text)
    return p if p.is_absolute() else Path(os.path.abspath(folder / p))


def save(project: Project, path: str | os.PathLike[str]) -> Path:
    """Write ``project`` to ``path`` (``.restorer`` added if missing), atomically."""
    path = Path(path)
    if path.suffix.lower() != PROJECT_SUFFIX:
        path = path.with_name(path.name + PROJECT_SUFFIX)
    if path.resolve() == Path(project.episode).resolve():
        raise ProjectError("a project cannot be saved over its own episode")
    text = json.dumps(project.to_json(path.parent), indent=2) + "\n"
    try:
        with atomic_path(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ProjectError(f"cannot save the project {path}: {exc.strerror or exc}") from None
    return path


def load(path: str | os.PathLike[str]) -> Project:
    """Read a project file; raises :class:`ProjectError` with a one-line reason."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProjectError(f"cannot read the project {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ProjectError(f"{path.name} is not a Restorer project (not text)") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProjectError(f"{path.name} is not a Restorer project (bad JSON at line "
                           f"{exc.lineno})") from None
    try:
        return Project.from_json(data, path.parent)
    except ProjectError as exc:
        raise ProjectError(f"{path.name}: {exc}") from None
