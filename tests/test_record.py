"""The export record: ``<output>.restorer.json``, written atomically after the export commits."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

import pytest

from restorer import __version__
from restorer.cli import main
from restorer.errors import OutputError
from restorer.look import Look
from restorer.record import export_record, record_export, record_path, write_record
from restorer.render import RenderJob


def test_record_path_sits_beside_the_output() -> None:
    assert record_path(Path("/x/ep1_colour.mp4")) == Path("/x/ep1_colour.mp4.restorer.json")


def _job(tmp_path: Path, **kw) -> RenderJob:
    kw.setdefault("look", Look(chroma=0.8, working_size=None, stabilise=0.3))
    return RenderJob(src=tmp_path / "ep.mp4", dst=tmp_path / "out.mov", codec="prores",
                     start=10, end=60, **kw)


def test_export_record_fields(tmp_path: Path) -> None:
    when = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)
    rec = export_record(_job(tmp_path, model=tmp_path / "m.safetensors"), tmp_path / "out.mov",
                        model_path=tmp_path / "m.safetensors", model_name="show-s2",
                        model_working_size=192, end=60, frames_written=50, now=when)
    assert rec["source"] == str(tmp_path / "ep.mp4")
    assert rec["output"] == str(tmp_path / "out.mov")
    assert rec["model"] == {"path": str(tmp_path / "m.safetensors"), "name": "show-s2"}
    # The look named no working size, so the model's own was used, and is what is recorded.
    assert rec["look"] == {"chroma": 0.8, "working_size": 192, "stabilise": 0.3}
    assert rec["range"] == {"start": 10, "end": 60, "frames": 50, "frames_written": 50}
    assert rec["codec"] == "prores" and rec["restorer_version"] == __version__
    assert rec["date"] == "2024-05-06T07:08:09+00:00"
    json.dumps(rec)  # JSON-ready as it is


def test_write_record_is_atomic_and_replaces(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    write_record(out, {"a": 1})
    path = write_record(out, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    assert sorted(os.listdir(tmp_path)) == ["out.mp4.restorer.json"]  # no temp file left


def test_write_record_failure_is_an_output_error(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="export record"):
        write_record(tmp_path / "missing-folder" / "out.mp4", {"a": 1})


def test_record_export_reads_the_model_file(tmp_path: Path, tiny_model_file: Path) -> None:
    job = _job(tmp_path, model=tiny_model_file)
    path = record_export(job, job.dst, source_frames=40)
    rec = json.loads(path.read_text())
    assert rec["model"] == {"path": str(tiny_model_file), "name": "tiny-test"}
    assert rec["look"]["working_size"] == 32  # the tiny model's own
    assert rec["range"]["end"] == 40  # clipped to the source, as render() clips it


def test_colourize_writes_the_record(grey_clip: Path, tmp_path: Path,
                                     tiny_model_file: Path) -> None:
    out = tmp_path / "out.mp4"
    assert main(["colourize", str(grey_clip), "-o", str(out), "--model", str(tiny_model_file),
                 "--device", "cpu", "--quiet", "--chroma", "1.5", "--stabilise", "0.5",
                 "--start", "5", "--end", "20"]) == 0
    rec = json.loads(record_path(out).read_text())
    assert rec["source"] == str(grey_clip) and rec["output"] == str(out)
    assert rec["model"] == {"path": str(tiny_model_file), "name": "tiny-test"}
    assert rec["look"] == {"chroma": 1.5, "working_size": 32, "stabilise": 0.5}
    assert rec["range"]["start"] == 5 and rec["range"]["end"] == 20
    assert rec["range"]["frames_written"] == 15
    assert rec["codec"] == "h264" and rec["restorer_version"] == __version__


def test_colourize_keeps_the_master_when_the_record_fails(grey_clip: Path, tmp_path: Path,
                                                          tiny_model_file: Path,
                                                          capsys) -> None:
    out = tmp_path / "out.mp4"
    record_path(out).mkdir()  # something in the way of the record
    assert main(["colourize", str(grey_clip), "-o", str(out), "--model", str(tiny_model_file),
                 "--device", "cpu", "--quiet"]) == 0
    assert out.is_file()
    assert "cannot write the export record" in capsys.readouterr().err
