"""Atomic file writes: the destination holds the old file or the whole new one, never a part."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from restorer.fsutil import TEMP_PREFIX, atomic_path, temp_file_beside


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_atomic_path_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    dst = tmp_path / "model.safetensors"
    dst.write_text("old")
    with atomic_path(dst) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(TEMP_PREFIX)
        assert tmp.suffix == ".safetensors"  # tools that pick a format from the name still can
        tmp.write_text("new")
        assert dst.read_text() == "old"  # nothing visible until the body is done
    assert dst.read_text() == "new"
    assert os.listdir(tmp_path) == ["model.safetensors"]
    assert stat.S_IMODE(dst.stat().st_mode) == 0o666 & ~_umask()  # not mkstemp's private 0600


def test_atomic_path_keeps_the_old_file_when_the_body_raises(tmp_path: Path) -> None:
    dst = tmp_path / "cache.onnx"
    dst.write_text("old")
    with pytest.raises(KeyboardInterrupt):  # BaseException too: Ctrl-C mid-write
        with atomic_path(dst) as tmp:
            tmp.write_text("half")
            raise KeyboardInterrupt
    assert dst.read_text() == "old"
    assert os.listdir(tmp_path) == ["cache.onnx"]


def test_atomic_path_new_file_and_missing_folder(tmp_path: Path) -> None:
    with atomic_path(tmp_path / "a.json", durable=False) as tmp:
        tmp.write_text("{}")
    assert (tmp_path / "a.json").read_text() == "{}"
    with pytest.raises(FileNotFoundError), atomic_path(tmp_path / "no" / "b.json"):
        pass
    assert not (tmp_path / "no").exists()


def test_temp_file_beside(tmp_path: Path) -> None:
    tmp = temp_file_beside(tmp_path / "out.mkv")
    assert tmp.is_file() and tmp.stat().st_size == 0 and tmp.parent == tmp_path
    assert tmp.name.startswith(TEMP_PREFIX) and tmp.suffix == ".mkv"
    assert temp_file_beside(tmp_path / "out.mkv", ".part").suffix == ".part"
