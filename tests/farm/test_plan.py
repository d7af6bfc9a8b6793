"""Chunk planning and the farm's manifest: plain Python, no cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from restorer.errors import FarmError
from restorer.farm.manifest import (
    ChunkRecord,
    EpisodeRecord,
    Manifest,
    episode_key,
    fingerprint,
    folder_lock,
)
from restorer.farm.plan import Chunk, balanced_chunk, plan_chunks
from restorer.farm.tasks import FAULTS_ENV, check_storage


def _covers(chunks: list[Chunk], n: int) -> None:
    assert chunks[0].start == 0 and chunks[-1].end == n
    assert all(a.end == b.start for a, b in zip(chunks, chunks[1:], strict=False))


def test_boundaries_snap_to_the_nearest_cut_within_half_a_chunk() -> None:
    chunks = plan_chunks(1000, 100, cuts=[90, 130, 260, 420])
    _covers(chunks, 1000)
    ends = [c.end for c in chunks]
    # 90 is nearer 100 than 130; 200 has no cut within 150..250, so it stays mid-shot; the
    # next ideal is 300, and 260 is within reach.
    assert ends[:4] == [90, 190, 260, 360]
    assert all(c.warmup == 0 for c in chunks), "no stabilisation asked: no warm-up"


def test_a_mid_shot_start_warms_up_within_its_shot_only() -> None:
    chunks = plan_chunks(600, 100, cuts=[170], warmup_frames=25)
    _covers(chunks, 600)
    by_start = {c.start: c for c in chunks}
    assert by_start[0].warmup == 0
    assert by_start[170].warmup == 0, "a chunk starting at a cut starts fresh"
    # 170 + 100 = 270 has no cut near: mid-shot, so 25 frames of warm-up.
    assert by_start[270].warmup == 25
    # The warm-up never reaches back past the shot's first frame (the cut at 40).
    assert [(c.start, c.warmup) for c in plan_chunks(400, 100, cuts=[40], warmup_frames=80)] \
        == [(0, 0), (100, 60), (200, 80), (300, 80)]
    assert [(c.start, c.warmup) for c in plan_chunks(400, 100, cuts=[190], warmup_frames=25)] \
        == [(0, 0), (100, 25), (190, 0), (290, 25)]


def test_short_material_is_one_chunk_and_a_short_tail_joins_the_last() -> None:
    assert plan_chunks(120, 100) == [Chunk(0, 120)]
    chunks = plan_chunks(340, 100)
    assert [(c.start, c.end) for c in chunks] == [(0, 100), (100, 200), (200, 340)]
    with pytest.raises(ValueError):
        plan_chunks(0, 100)


def _record(stem: str = "ep01") -> EpisodeRecord:
    return EpisodeRecord(stem=stem, source={"path": "/x"}, key="k" * 16, settings={},
                         model={}, output=f"/m/{stem}.mp4", frame_count=100, fps="25/1",
                         chunks=[ChunkRecord(0, 50, 0, "chunks/ep01/a.mp4", "done", 10),
                                 ChunkRecord(50, 100, 0, "chunks/ep01/b.mp4")])


def test_manifest_round_trip_and_a_done_chunk_needs_its_file(tmp_path: Path) -> None:
    m = Manifest.load(tmp_path)
    m.episodes["ep01"] = _record()
    m.save()
    again = Manifest.load(tmp_path)
    assert again.episodes["ep01"] == m.episodes["ep01"]
    rec = again.episodes["ep01"]
    assert rec.done_chunks(again.root) == [], "the chunk file is missing: not done"
    (again.root / "chunks" / "ep01").mkdir(parents=True)
    (again.root / "chunks/ep01/a.mp4").write_bytes(b"x" * 10)
    assert [c.start for c in rec.done_chunks(again.root)] == [0]
    (again.root / "chunks/ep01/a.mp4").write_bytes(b"x" * 9)  # cut short
    assert rec.done_chunks(again.root) == []


def test_a_corrupt_manifest_is_one_clear_error(tmp_path: Path) -> None:
    root = tmp_path / "restorer-farm"
    root.mkdir()
    (root / "manifest.json").write_text("{not json")
    with pytest.raises(FarmError, match="unreadable.*move it away"):
        Manifest.load(tmp_path)


def test_the_key_changes_with_source_model_and_settings(tmp_path: Path) -> None:
    src = tmp_path / "ep.mp4"
    src.write_bytes(b"a")
    fp = fingerprint(src)
    key = episode_key(fp, "m1", {"chroma": 1.0})
    assert key == episode_key(fingerprint(src), "m1", {"chroma": 1.0})
    assert key != episode_key(fp, "m2", {"chroma": 1.0})
    assert key != episode_key(fp, "m1", {"chroma": 0.5})
    os.utime(src, ns=(fp["mtime_ns"] + 10**9, fp["mtime_ns"] + 10**9))
    assert key != episode_key(fingerprint(src), "m1", {"chroma": 1.0})


def test_one_driver_per_folder_and_stale_temp_files_go(tmp_path: Path) -> None:
    stale = tmp_path / "restorer-farm" / "chunks" / "ep01" / ".restorer-tmp-abc.mp4"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"half a chunk")
    with folder_lock(tmp_path):
        assert not stale.exists()
        code = ("import sys; from pathlib import Path; from restorer.farm.manifest import "
                "folder_lock\ntry:\n  with folder_lock(Path(sys.argv[1])): pass\n"
                "except Exception as e: print(e); sys.exit(3)")
        out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                             text=True)
        assert out.returncode == 3 and f"pid {os.getpid()}" in out.stdout
    with folder_lock(tmp_path):  # released
        pass


def test_storage_check_names_the_node_and_the_path(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "ep.mp4"
    src.write_bytes(b"a")
    out = tmp_path / "masters"
    out.mkdir()
    token = out / "restorer-farm" / ".token-1"
    token.parent.mkdir()
    token.write_bytes(b"")
    assert check_storage([str(src)], [str(out)], str(token)) == ""
    assert "cannot read" in check_storage([str(tmp_path / "nope.mp4")], [str(out)], str(token))
    token.unlink()
    msg = check_storage([str(src)], [str(out)], str(token))
    assert "sees a different" in msg and "shared storage" in msg
    monkeypatch.setenv(FAULTS_ENV, json.dumps({"hide": [str(out)]}))
    msg = check_storage([str(src)], [str(out)], str(token))
    assert msg.startswith("node ") and f"cannot see the output folder {out}" in msg


def test_status_reads_the_manifest_without_ray(tmp_path: Path) -> None:
    m = Manifest.load(tmp_path)
    m.episodes["ep01"] = _record()
    m.save()
    code = ("import sys; from restorer.cli import main; rc = main(['farm', 'status', "
            f"{str(tmp_path)!r}]); sys.exit(rc if 'ray' not in sys.modules else 9)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "ep01: rendering; chunks 0/2 done; 0/100 frames" in out.stdout
    empty = subprocess.run([sys.executable, "-m", "restorer.cli", "farm", "status",
                            str(tmp_path / "none")], capture_output=True, text=True)
    assert empty.returncode == 1 and empty.stderr.count("\n") == 1
    assert "no farm run has written" in empty.stderr


def test_segments_scanned_apart_find_the_cuts_of_a_whole_scan(tmp_path: Path) -> None:
    """The farm scans a long episode in segments on several workers; each reads a lead-in
    first, so together they find what one scan finds, a cut at a segment's start included."""
    from clips import FFMPEG

    from restorer.farm.tasks import scan_cuts
    from restorer.scenes import detect_cuts

    src = tmp_path / "shots.mp4"
    shots = ["testsrc2", "smptebars", "rgbtestsrc", "testsrc2", "smptebars"]
    cmd = [FFMPEG, "-v", "error", "-y"]
    for name in shots:
        cmd += ["-f", "lavfi", "-i", f"{name}=size=96x72:rate=25:duration=1"]
    cmd += ["-filter_complex", "".join(f"[{i}:v]" for i in range(len(shots)))
            + f"concat=n={len(shots)}:v=1,format=gray", "-c:v", "libx264", str(src)]
    subprocess.run(cmd, check=True)
    whole = detect_cuts(src)
    assert whole == [25, 50, 75, 100], whole
    bounds = [0, 50, 80, 125]  # a segment starts exactly at the cut at 50
    parts = [scan_cuts(str(src), a, b, lead=20)
             for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    assert sorted(c for part in parts for c in part) == whole
    assert scan_cuts(str(src), 50, 80, lead=0) == [75], "without a lead-in the cut at 50 is lost"


def test_few_chunks_are_evened_out_over_the_workers() -> None:
    # 5 minutes of PAL in 60 s chunks on 2 workers: 6 chunks of 50 s, not 5 of 60 s.
    assert balanced_chunk(7500, 1500, 2) == 1250
    assert len(plan_chunks(7500, balanced_chunk(7500, 1500, 2))) == 6
    assert balanced_chunk(7500, 1500, 5) == 1500, "already a multiple"
    assert balanced_chunk(7500, 1500, 1) == 1500
    assert balanced_chunk(100 * 1500, 1500, 2) == 1500, "many chunks: the asked length"
    assert balanced_chunk(100, 1500, 2) == 100, "one short chunk stays one"
    assert balanced_chunk(4500, 1500, 2) == 1125, "3 chunks on 2 workers: 4"


def test_existing_masters_and_clashing_names_are_refused_before_any_work(
        clip_factory, tmp_path: Path, tiny_model_file: Path) -> None:
    from restorer.farm.options import FarmOptions
    from restorer.farm.run import farm_run

    src = clip_factory("ep01.mp4", seconds=0.4, colour=False)
    out = tmp_path / "masters"
    out.mkdir()
    (out / "ep01.mp4").write_bytes(b"an earlier master")
    with pytest.raises(FarmError, match="ep01.mp4 already exists; pass --overwrite"):
        list(farm_run([src], out, FarmOptions(model=tiny_model_file)))
    assert (out / "ep01.mp4").read_bytes() == b"an earlier master"
    other = tmp_path / "b"
    other.mkdir()
    twin = clip_factory("b/ep01.mkv", seconds=0.4, colour=False)
    with pytest.raises(FarmError, match="would both be written as ep01.mp4"):
        list(farm_run([src, twin], tmp_path / "m2", FarmOptions(model=tiny_model_file)))
