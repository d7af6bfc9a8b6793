"""The render queue: jobs run in order, failures and cancels are reported per job, and the
queue survives a restart (a job interrupted while running waits again)."""

from __future__ import annotations

import json
import os
import threading

import pytest

from restorer.errors import RestorerError
from restorer.look import Look
from restorer.media import probe
from restorer.render import RenderJob
from restorer.render_queue import CANCELLED, DONE, FAILED, WAITING, RenderQueue
from restorer.shots import ShotChroma


def _drain(q, **kw):
    while q.next_waiting() is not None:
        for _ in q.run_next(**kw):
            pass


def test_jobs_run_in_order_and_persist(clip_factory, tmp_path, tiny_colouriser):
    src = clip_factory("ep.mp4", seconds=0.6, colour=False)
    store = tmp_path / "queue.json"
    q = RenderQueue.open(store)
    a = q.add(RenderJob(src, tmp_path / "a.mp4", start=2, end=9, look=Look(chroma=0.7),
                        shots=(ShotChroma(3, 5, 0.0),)))
    b = q.add(RenderJob(tmp_path / "missing.mp4", tmp_path / "b.mp4"))
    c = q.add(RenderJob(src, tmp_path / "c.mkv", codec="ffv1"))
    with pytest.raises(RestorerError, match="already the output of queued job"):
        q.add(RenderJob(src, tmp_path / "a.mp4"))
    again = RenderQueue.open(store)  # what a restart finds
    assert [j.id for j in again.jobs] == [1, 2, 3]
    assert again.jobs[0].job == a.job  # every setting, shots included
    done: list[str] = []
    _drain(q, colouriser=tiny_colouriser, on_done=lambda job, out: done.append(out.name))
    assert [j.status for j in q.jobs] == [DONE, FAILED, DONE]
    assert "missing.mp4" in b.message and "\n" not in b.message
    assert done == ["a.mp4", "c.mkv"]
    assert probe(tmp_path / "a.mp4").frame_count == 7 and c.fraction == 1.0
    stored = json.loads(store.read_text())
    assert [j["status"] for j in stored["jobs"]] == ["done", "failed", "done"]
    q.retry(b.id)
    q.clear_finished()
    assert [j.id for j in q.jobs] == [2] and q.jobs[0].status == WAITING
    assert RenderQueue.open(store).add(RenderJob(src, tmp_path / "d.mp4")).id == 4  # ids go on


def test_cancel_keeps_nothing_and_the_rest_waits(clip_factory, tmp_path, tiny_colouriser):
    src = clip_factory("ep.mp4", seconds=2.0, colour=False)
    q = RenderQueue(tmp_path / "q.json")
    first = q.add(RenderJob(src, tmp_path / "first.mp4", batch_size=2))
    second = q.add(RenderJob(src, tmp_path / "second.mp4"))
    third = q.add(RenderJob(src, tmp_path / "third.mp4"))
    q.cancel_waiting(third.id)
    cancel = threading.Event()
    for _entry, ev in q.run_next(cancel=cancel, colouriser=tiny_colouriser):
        if ev is not None and ev.done > 0:
            cancel.set()
    assert first.status == CANCELLED and "nothing was written" in first.message
    assert second.status == WAITING and third.status == CANCELLED
    assert not (tmp_path / "first.mp4").exists()
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".restorer-tmp-")]
    with pytest.raises(RestorerError, match="cancel it first"):
        second.status = "running"
        q.remove(second.id)


def test_restart_during_a_job_and_a_damaged_queue(tmp_path):
    store = tmp_path / "q.json"
    q = RenderQueue(store)
    q.add(RenderJob(tmp_path / "ep.mp4", tmp_path / "out.mp4"))
    q.jobs[0].status = "running"  # the desk was killed here
    q.save()
    back = RenderQueue.open(store)
    assert back.jobs[0].status == WAITING and "interrupted" in back.jobs[0].message
    store.write_text("{ not json")
    broken = RenderQueue.open(store)
    assert broken.jobs == [] and "could not be read" in broken.load_error
    assert (tmp_path / "q.json.damaged").read_text() == "{ not json"  # set aside, not lost
