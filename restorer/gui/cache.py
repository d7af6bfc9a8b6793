"""A small thread-safe LRU cache bounded by bytes (no Qt): decoded frames and predicted ab."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

import numpy as np


def _nbytes(value: Any) -> int:
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, (tuple, list)):
        return sum(_nbytes(v) for v in value)
    return 64


class LRUCache:
    """Least-recently-used mapping, evicting oldest entries past ``max_bytes`` or ``max_items``.

    Parameters
    ----------
    max_bytes : int
        Budget for the summed ``nbytes`` of cached arrays.
    max_items : int
        Upper bound on the number of entries, whatever their size.
    """

    def __init__(self, max_bytes: int = 256 * 2**20, max_items: int = 512) -> None:
        self.max_bytes, self.max_items = int(max_bytes), int(max_items)
        self._data: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, default: Any = None) -> Any:
        with self._lock:
            item = self._data.get(key)
            if item is None:
                self.misses += 1
                return default
            self._data.move_to_end(key)
            self.hits += 1
            return item[0]

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._data

    def put(self, key: Hashable, value: Any) -> None:
        size = _nbytes(value)
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            if size > self.max_bytes:
                return
            self._data[key] = (value, size)
            self._bytes += size
            while self._data and (self._bytes > self.max_bytes or len(self._data) > self.max_items):
                _, (_, s) = self._data.popitem(last=False)
                self._bytes -= s

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._data)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def describe(self) -> str:
        """Short status-bar text, e.g. ``"12 items, 34.5 MB"``."""
        return f"{len(self._data)} items, {self._bytes / 1e6:.1f} MB"
