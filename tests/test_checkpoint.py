from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch

from restorer.checkpoint import ModelMeta, load_model, read_meta, save_model
from restorer.errors import ModelError
from restorer.nets import build_net


def test_round_trip_rebuilds_from_file_alone(tmp_path: Path, tiny_net_meta) -> None:
    net, meta = tiny_net_meta
    meta.metrics = {"deltaE2000": 12.5}
    path = save_model(tmp_path / "m.safetensors", net, meta)
    net2, meta2 = load_model(path)
    assert meta2.arch == net.spec() and meta2.working_size == 32
    assert meta2.metrics == {"deltaE2000": 12.5}
    x = torch.randn(1, 1, 24, 24)
    torch.testing.assert_close(net.eval()(x), net2(x))


def test_file_is_safetensors_with_json_header(tiny_model_file: Path) -> None:
    raw = tiny_model_file.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8: 8 + n])
    assert json.loads(header["__metadata__"]["restorer"])["arch"]["arch"] == "unet"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        load_model(tmp_path / "absent.safetensors")


def test_corrupt_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x80\x04garbage-pickle-lookalike" * 10)
    with pytest.raises(ModelError, match="not a valid safetensors"):
        load_model(bad)


def test_truncated_weights(tmp_path: Path, tiny_model_file: Path) -> None:
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(tiny_model_file.read_bytes()[:-200])
    with pytest.raises(ModelError):
        load_model(cut)


def test_mismatched_architecture(tmp_path: Path, tiny_net_meta) -> None:
    net, meta = tiny_net_meta
    path = save_model(tmp_path / "m.safetensors", net, meta)
    # Rewrite the metadata so it claims a deeper network than the weights hold.
    from safetensors.torch import load_file, save_file

    lying = ModelMeta(**{**meta.__dict__, "arch": {"arch": "unet", "base": 4, "depth": 3}})
    save_file(load_file(str(path)), str(path), metadata={"restorer": lying.to_json()})
    with pytest.raises(ModelError, match="does not match its declared architecture"):
        load_model(path)


def test_not_a_restorer_model(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    p = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(p))
    with pytest.raises(ModelError, match="not a Restorer model"):
        read_meta(p)


def test_save_is_atomic_on_failure(tmp_path: Path, tiny_net_meta, monkeypatch) -> None:
    net, meta = tiny_net_meta
    path = save_model(tmp_path / "m.safetensors", net, meta)
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError("No space left on device")

    monkeypatch.setattr("restorer.checkpoint.save_file", boom)
    with pytest.raises(OSError):
        save_model(path, build_net({"arch": "unet", "base": 2, "depth": 1}), meta)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]
