"""The Ray side of the driver: connect, check every node's storage, submit and watch tasks.

Kept apart so the rest of the farm reads as plain Python, and so Ray is imported only when a
farm runs (``restorer farm status`` and the rest of the program never load it).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from restorer.errors import FarmError
from restorer.farm import tasks

#: The local cluster's object store holds the model and the tasks' small results only.
LOCAL_OBJECT_STORE = 256 * 2**20
#: Seconds a cancelled chunk is given to delete its temporary file and stop.
CANCEL_GRACE = 15.0


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise FarmError("restorer farm needs Ray: pip install 'restorer[farm]' (or "
                        "pip install ray)") from None
    return ray


class Farm:
    """A connected cluster, as the driver uses it."""

    def __init__(self, ray: Any, address: str | None) -> None:
        self.ray = ray
        self.address = address
        remote = ray.remote
        self._check = remote(num_cpus=0)(tasks.check_storage)
        self._scan = remote(num_cpus=1)(tasks.scan_cuts)
        self._render = remote(tasks.render_chunk)
        self.board = remote(num_cpus=0)(tasks.Board).remote()
        self._cpus = 0.0
        self._cpus_at = 0.0

    def cpus(self) -> float:
        now = time.monotonic()
        if now - self._cpus_at > 5.0:  # nodes may join or leave while the farm runs
            self._cpus = float(self.ray.cluster_resources().get("CPU", 0.0))
            self._cpus_at = now
        return self._cpus

    def slots(self, cpus_per_chunk: int) -> int:
        return max(1, int(self.cpus() // cpus_per_chunk))

    def nodes(self) -> list[dict[str, Any]]:
        return [n for n in self.ray.nodes() if n.get("Alive")]

    def describe(self) -> str:
        nodes = self.nodes()
        where = ("a local Ray cluster on this machine" if self.address is None
                 else f"the Ray cluster at {self.address}")
        return (f"running on {where}: {len(nodes)} node(s), {self.cpus():g} CPUs")

    def check_storage(self, read: list[str], write: list[str], token: str) -> None:
        """Run the storage check on every node; raise the first problem found."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        refs = [self._check.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
                    n["NodeID"], soft=False)).remote(read, write, token) for n in self.nodes()]
        try:
            problems = [p for p in self.ray.get(refs, timeout=300) if p]
        except self.ray.exceptions.GetTimeoutError:
            raise FarmError("a node did not answer the storage check within 5 minutes") from None
        if problems:
            raise FarmError(problems[0])

    def scan(self, src: str, start: int, end: int, lead: int) -> Any:
        """Start a scan for the cuts in ``[start, end)``; its result is a list of frames."""
        return self._scan.remote(src, start, end, lead)

    def put(self, data: bytes) -> Any:
        return self.ray.put(data)

    def submit(self, job: tasks.ChunkJob, model_ref: Any, cpus: int, retries: int) -> Any:
        return self._render.options(num_cpus=cpus, max_retries=retries,
                                    retry_exceptions=True).remote(job, model_ref, self.board)

    def wait(self, refs: list[Any], timeout: float) -> list[tuple[Any, Any]]:
        """Finished tasks among ``refs``: (ref, result), or (ref, the error) for a failure."""
        ready, _ = self.ray.wait(refs, num_returns=len(refs), timeout=timeout)
        out = []
        for ref in ready:
            try:
                out.append((ref, self.ray.get(ref)))
            except self.ray.exceptions.RayTaskError as exc:
                cause = exc.cause if exc.cause is not None else exc
                out.append((ref, RuntimeError(str(cause).strip().splitlines()[-1])))
            except self.ray.exceptions.RayError as exc:
                out.append((ref, RuntimeError(str(exc).strip().splitlines()[0])))
        return out

    def cancel(self, refs: list[Any]) -> None:
        """Cancel running chunks; each deletes its temporary file as it stops."""
        for ref in refs:
            self.ray.cancel(ref)
        self.ray.wait(refs, num_returns=len(refs), timeout=CANCEL_GRACE)

    def live(self) -> dict[str, int]:
        try:
            return dict(self.ray.get(self.board.snapshot.remote(), timeout=5))
        except self.ray.exceptions.RayError:
            return {}

    def attempts(self, chunk: str) -> int:
        try:
            return int(self.ray.get(self.board.tries.remote(chunk), timeout=5))
        except self.ray.exceptions.RayError:
            return 0


@contextmanager
def connect(address: str | None, num_cpus: int | None = None) -> Iterator[Farm]:
    """Join the cluster at ``address`` ("auto" or HOST:PORT), or with None start a local one on
    this machine's cores (``num_cpus`` of them, default all); leave it on exit."""
    ray = _ray()
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                              "logging_level": logging.ERROR}
    faults = os.environ.get(tasks.FAULTS_ENV)
    if faults:
        json.loads(faults)  # a malformed test hook fails here, not inside every task
        kwargs["runtime_env"] = {"env_vars": {tasks.FAULTS_ENV: faults}}
    try:
        if address is None:
            ray.init(num_cpus=num_cpus or os.cpu_count() or 1,
                     object_store_memory=LOCAL_OBJECT_STORE, **kwargs)
        else:
            ray.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = "start a local Ray cluster" if address is None else f"reach Ray at {address}"
        raise FarmError(f"cannot {where}: {str(exc).strip().splitlines()[0]}") from None
    try:
        yield Farm(ray, address)
    finally:
        ray.shutdown()
