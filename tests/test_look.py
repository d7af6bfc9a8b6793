"""Look: the frozen value every engine call, export job and desk state carries."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from restorer.errors import RestorerError
from restorer.look import DEFAULT_WORKING_SIZE, Look


def _one_line_error(match: str, **kwargs) -> str:
    with pytest.raises(RestorerError, match=match) as info:
        Look(**kwargs)
    text = str(info.value)
    assert "\n" not in text
    return text


def test_defaults() -> None:
    look = Look()
    assert (look.chroma, look.working_size, look.stabilise) == (1.0, None, 0.0)
    assert Look(chroma=1, working_size=240, stabilise=0) == Look(1.0, 240, 0.0)


@pytest.mark.parametrize("chroma", [-0.01, 2.01, float("nan"), float("inf")])
def test_rejects_chroma_out_of_range(chroma: float) -> None:
    text = _one_line_error("chroma must be within 0..2", chroma=chroma)
    assert text.endswith(str(chroma))


def test_rejects_chroma_that_is_not_a_number() -> None:
    _one_line_error("chroma must be a number within 0..2", chroma="lots")


@pytest.mark.parametrize("strength", [-0.5, 1.5, float("nan")])
def test_rejects_stabilise_out_of_range(strength: float) -> None:
    _one_line_error("stabilisation strength must be within 0..1", stabilise=strength)


@pytest.mark.parametrize("size", [0, 15, 4097, -160])
def test_rejects_working_size_out_of_range(size: int) -> None:
    _one_line_error(r"working size must be within 16\.\.4096; got " + str(size),
                    working_size=size)


@pytest.mark.parametrize("size", [240.5, "240", True])
def test_rejects_working_size_that_is_not_whole_pixels(size: object) -> None:
    _one_line_error("working size must be a whole number", working_size=size)


def test_bounds_are_allowed() -> None:
    for kwargs in ({"chroma": 0.0}, {"chroma": 2.0}, {"stabilise": 1.0},
                   {"working_size": 16}, {"working_size": 4096}):
        Look(**kwargs)


def test_is_immutable_and_replace_checks_again() -> None:
    look = Look(chroma=0.5, working_size=128)
    with pytest.raises(dataclasses.FrozenInstanceError):
        look.chroma = 2.0  # type: ignore[misc]
    other = look.replace(stabilise=0.7)
    assert other == Look(0.5, 128, 0.7) and look == Look(0.5, 128, 0.0)
    assert hash(other) != hash(look) and {look, Look(0.5, 128)} == {look}
    with pytest.raises(RestorerError, match="chroma must be within"):
        look.replace(chroma=3.0)


def test_size_for_a_model(tiny_net_meta) -> None:
    _, meta = tiny_net_meta
    assert Look().size_for(meta) == meta.working_size == 32
    assert Look(working_size=240).size_for(meta) == 240


def test_one_default_working_size() -> None:
    from restorer.checkpoint import ModelMeta
    from restorer.gui.state import ViewState

    assert ModelMeta(arch={"arch": "unet"}).working_size == DEFAULT_WORKING_SIZE
    assert ViewState().working_size == DEFAULT_WORKING_SIZE  # "balanced": the model's own


def test_render_job_carries_a_look(tmp_path: Path) -> None:
    from restorer.render import RenderJob

    job = RenderJob(tmp_path / "a.mp4", tmp_path / "b.mp4")
    assert job.look == Look()
    with pytest.raises(TypeError, match="must be a restorer.look.Look"):
        RenderJob(tmp_path / "a.mp4", tmp_path / "b.mp4", look=1.5)  # type: ignore[arg-type]


@pytest.mark.parametrize("flag, value, message", [
    ("--chroma", "3", "chroma must be within 0..2; got 3.0"),
    ("--stabilise", "-1", "stabilisation strength must be within 0..1; got -1.0"),
    ("--size", "8", "working size must be within 16..4096; got 8"),
])
def test_cli_reports_a_bad_look_in_one_line(grey_clip: Path, tmp_path: Path, capsys, flag: str,
                                            value: str, message: str) -> None:
    from restorer.cli import main

    assert main(["colourize", str(grey_clip), "-o", str(tmp_path / "o.mp4"), flag, value]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"restorer: error: {message}"
    assert not (tmp_path / "o.mp4").exists()
