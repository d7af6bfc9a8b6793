"""Desk project files: a round trip, portable paths, atomic saves, one-line errors, and
``restorer colourize PROJECT`` rendering the project's marks and per-shot chroma."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from skimage import color as skcolor

from restorer.cli import main
from restorer.look import Look
from restorer.media import FrameReader, probe
from restorer.project import Project, ProjectError, load, save
from restorer.record import record_path
from restorer.shots import ShotChroma


def _project(tmp_path: Path) -> Project:
    return Project(episode=tmp_path / "ep.mp4", model=Path("/models/show.safetensors"),
                   look=Look(chroma=0.8, working_size=144, stabilise=0.4), preset="best",
                   mode="wipe", frame=17, in_point=5, out_point=40, cuts=[12, 30],
                   shots=(ShotChroma(12, 30, 1.3),), wipe=0.25)


def test_round_trip_is_exact_and_readable(tmp_path):
    p = _project(tmp_path)
    path = save(p, tmp_path / "show")
    assert path.name == "show.restorer"
    assert load(path) == p
    data = json.loads(path.read_text())
    assert data["episode"] == "ep.mp4"  # under the project's folder: relative, so it moves
    assert data["model"] == "/models/show.safetensors"
    assert data["shots"] == [{"start": 12, "end": 30, "chroma": 1.3}]
    assert [f for f in os.listdir(tmp_path)] == ["show.restorer"]  # no temporary file left


def test_moved_folder_still_finds_its_episode(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    p = _project(a)
    save(p, a / "show.restorer")
    a.rename(b)
    assert load(b / "show.restorer").episode == b / "ep.mp4"


@pytest.mark.parametrize("text, why", [
    ("not json {", "bad JSON"),
    ('{"format": "something-else"}', "not a Restorer project"),
    ('{"format": "restorer-project", "version": 99, "episode": "x"}', "newer Restorer"),
    ('{"format": "restorer-project", "version": 1}', "damaged"),
    ('{"format": "restorer-project", "version": 1, "episode": "x", "look": {"chroma": 7}}',
     "chroma"),
    ('{"format": "restorer-project", "version": 1, "episode": "x", "shots": '
     '[{"start": 0, "end": 9, "chroma": 1}, {"start": 5, "end": 12, "chroma": 1}]}', "overlap"),
])
def test_bad_projects_give_one_line(tmp_path, text, why):
    f = tmp_path / "bad.restorer"
    f.write_text(text)
    with pytest.raises(ProjectError, match=why) as err:
        load(f)
    assert "\n" not in str(err.value) and "bad.restorer" in str(err.value)


def test_failed_save_keeps_the_old_file(tmp_path, monkeypatch):
    path = save(_project(tmp_path), tmp_path / "show.restorer")
    before = path.read_text()

    def full(*_a, **_k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(ProjectError, match="No space left"):
        save(_project(tmp_path), path)
    monkeypatch.undo()
    assert path.read_text() == before
    assert sorted(os.listdir(tmp_path)) == ["show.restorer"]


def test_colourize_renders_a_project(clip_factory, tmp_path, tiny_model_file):
    """The marks give the range; a shot at chroma 0 comes out grey, the others in colour."""
    src = clip_factory("ep.mp4", seconds=1.0, colour=False)  # 25 frames
    proj = save(Project(episode=src, model=tiny_model_file, in_point=4, out_point=15,
                        shots=(ShotChroma(8, 12, 0.0),)), tmp_path / "ep.restorer")
    out = tmp_path / "out.mkv"
    assert main(["colourize", str(proj), "-o", str(out), "--codec", "ffv1", "--device", "cpu",
                 "--quiet"]) == 0
    info = probe(out)
    assert info.frame_count == 12  # frames 4..15
    for k, rgb in FrameReader(info, mode="rgb"):
        chroma = np.abs(skcolor.rgb2lab(rgb)[..., 1:]).mean()
        if 8 <= k + 4 < 12:
            assert chroma < 1.0, k
        else:
            assert chroma > 3.0, k
    record = json.loads(record_path(out).read_text())
    assert record["shots"] == [{"start": 8, "end": 12, "chroma": 0.0}]
    assert record["range"]["start"] == 4
