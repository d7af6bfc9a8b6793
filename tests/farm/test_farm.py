"""``restorer farm`` on a local Ray cluster of 2 workers (what CI's 2 cores allow): outputs equal
to ``restorer colourize``, resume after the driver is killed, retries, and the storage check."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray")

from restorer.cli import main  # noqa: E402
from restorer.errors import FarmError  # noqa: E402
from restorer.farm.manifest import Manifest  # noqa: E402
from restorer.farm.options import FarmOptions  # noqa: E402
from restorer.farm.run import farm_run  # noqa: E402
from restorer.farm.tasks import FAULTS_ENV  # noqa: E402
from restorer.media import FrameReader, probe  # noqa: E402

pytestmark = pytest.mark.timeout(600)


def _frames(path: Path) -> np.ndarray:
    with FrameReader(probe(path), mode="rgb") as reader:
        return np.stack([f for _, f in reader])


def _run(inputs: list[Path], out: Path, **opts: object) -> list[str]:
    messages = []
    for ev in farm_run(inputs, out, FarmOptions(**opts), num_cpus=2):  # type: ignore[arg-type]
        if ev.message:
            messages.append(ev.message)
    return messages


@pytest.fixture
def episodes(clip_factory) -> list[Path]:
    # Two shows' worth of variety: PAL with one audio stream, NTSC's 30000/1001 with two.
    return [clip_factory("ep01.mp4", size=(96, 72), seconds=3.0, colour=False),
            clip_factory("ep02.mp4", size=(80, 64), seconds=2.0, colour=False,
                         fps="30000/1001", audio_streams=2)]


def test_farm_masters_equal_colourize(episodes: list[Path], tmp_path: Path,
                                      tiny_model_file: Path) -> None:
    out = tmp_path / "masters"
    said = _run(episodes, out, model=tiny_model_file, chunk="1s", codec="ffv1")
    assert any("finding the scene cuts of 2 episode(s) first" in m for m in said), said
    # 1 s chunks, evened out over the 2 workers: ep01's 3 become 4.
    chunks = {stem: len(rec.chunks) for stem, rec in Manifest.load(out).episodes.items()}
    assert chunks == {"ep01": 4, "ep02": 2}
    for src in episodes:
        master = out / f"{src.stem}.mkv"
        ref = tmp_path / f"ref-{src.stem}.mkv"
        assert main(["colourize", str(src), "-o", str(ref), "--model", str(tiny_model_file),
                     "--codec", "ffv1", "--quiet"]) == 0
        got, want = probe(master), probe(ref)
        assert got.frame_count == want.frame_count == probe(src).frame_count
        assert got.fps == want.fps == probe(src).fps
        assert len(got.audio) == len(want.audio) == len(probe(src).audio)
        assert abs(got.duration - want.duration) < 1 / float(got.fps)
        diff = np.abs(_frames(master).astype(int) - _frames(ref).astype(int))
        assert diff.max() <= 1, f"{src.name}: farm and colourize differ by {diff.max()}"
        record = json.loads((out / f"{src.stem}.mkv.restorer.json").read_text())
        assert record["range"]["frames"] == got.frame_count
    assert not list((out / "restorer-farm" / "chunks").rglob("*.mkv")), "chunks left behind"

    # The same command again: nothing to render, and no cluster is started for it.
    again = _run(episodes, out, model=tiny_model_file, chunk="1s", codec="ffv1")
    assert sum("already rendered and verified" in m for m in again) == 2
    assert any("nothing to do" in m for m in again)


def test_changed_settings_render_afresh_and_h264_keeps_audio(
        clip_factory, tmp_path: Path, tiny_model_file: Path) -> None:
    out = tmp_path / "masters"
    colour = clip_factory("ep01.mp4", size=(96, 72), seconds=3.0)  # a colour transfer
    said = _run([colour], out, model=tiny_model_file, chunk="1s")
    # Said once for the episode, not once per chunk.
    assert sum("ep01: source is in colour" in m for m in said) == 1, said
    assert len(Manifest.load(out).episodes["ep01"].chunks) == 4
    master = out / "ep01.mp4"
    first = master.stat().st_mtime_ns
    src, got = probe(colour), probe(master)
    assert (got.frame_count, got.fps, len(got.audio)) == (src.frame_count, src.fps, 1)
    assert abs(got.duration - src.duration) < 1 / float(src.fps)
    said = _run([colour], out, model=tiny_model_file, chunk="1s", overwrite=True,
                look=__import__("restorer.look").look.Look(chroma=0.5))
    assert any("changed since the last run; rendering it afresh" in m for m in said), said
    assert master.stat().st_mtime_ns != first


def test_a_failing_chunk_is_retried_then_reported_and_others_finish(
        episodes: list[Path], tmp_path: Path, tiny_model_file: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FAULTS_ENV, json.dumps({"fail": ["ep02:0"]}))
    out = tmp_path / "masters"
    rc = main(["farm", "run", *map(str, episodes), "-o", str(out), "--model",
               str(tiny_model_file), "--chunk", "1s", "--retries", "1", "--quiet"])
    assert rc == 1
    assert (out / "ep01.mp4").exists() and not (out / "ep02.mp4").exists()
    rec = Manifest.load(out).episodes["ep02"]
    assert rec.status == "failed"
    failed = [c for c in rec.chunks if c.status == "failed"]
    assert [c.start for c in failed] == [0] and failed[0].attempts == 2
    assert "chunk 0-30 (00:00:00:00 to 00:00:01:00)" in rec.error
    assert "after 2 attempt(s)" in rec.error
    assert "simulated failure" in rec.error


def test_a_node_that_cannot_see_the_output_stops_the_run(
        episodes: list[Path], tmp_path: Path, tiny_model_file: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "masters"
    monkeypatch.setenv(FAULTS_ENV, json.dumps({"hide": [str(out.resolve())]}))
    with pytest.raises(FarmError, match=r"^node \S+ cannot see the output folder .*masters: "
                                         "inputs and -o must be on storage every node sees"):
        _run(episodes, out, model=tiny_model_file, chunk="1s")
    assert not list(out.glob("*.mp4"))


def test_resume_after_the_driver_is_killed(clip_factory, tmp_path: Path,
                                           tiny_model_file: Path) -> None:
    src = clip_factory("long.mp4", size=(320, 240), seconds=8.0, colour=False)
    out = tmp_path / "masters"
    cmd = [sys.executable, "-m", "restorer.cli", "farm", "run", str(src), "-o", str(out),
           "--model", str(tiny_model_file), "--chunk", "20", "--codec", "ffv1", "--batch", "1",
           "--size", "240", "--quiet"]
    proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL, start_new_session=True)
    manifest = out / "restorer-farm" / "manifest.json"
    done = 0
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            chunks = json.loads(manifest.read_text())["episodes"]["long"]["chunks"]
            done = sum(c["status"] == "done" for c in chunks)
        except (OSError, ValueError, KeyError):
            done = 0
        if done >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)  # the driver only, as a crash or the OOM killer would
    proc.wait()
    total = len(chunks)
    assert 2 <= done < total
    said = _run([src], out, model=tiny_model_file, chunk="20", codec="ffv1", batch_size=1,
                look=__import__("restorer.look").look.Look(working_size=240))
    resumed = next(m for m in said if m.startswith("resuming:"))
    kept = int(resumed.split()[1])
    assert kept >= done, resumed
    rendered = next(m for m in said if m.startswith("1 episode(s) to render"))
    assert rendered.endswith(f": {total - kept} chunk(s) to render"), rendered
    ref = tmp_path / "ref.mkv"
    assert main(["colourize", str(src), "-o", str(ref), "--model", str(tiny_model_file),
                 "--codec", "ffv1", "--batch", "1", "--size", "240", "--quiet"]) == 0
    assert probe(out / "long.mkv").frame_count == probe(src).frame_count
    diff = np.abs(_frames(out / "long.mkv").astype(int) - _frames(ref).astype(int))
    assert diff.max() <= 1
