"""Training: typed config, losses, the loop (single process or torchrun/DDP), recipes."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from restorer.train.config import TrainConfig

if TYPE_CHECKING:
    from restorer.train.loop import TrainResult

__all__ = ["TrainConfig", "train"]


def train(cfg: TrainConfig, progress: bool = True,
          on_step: Callable[[int, dict[str, float]], None] | None = None) -> TrainResult:
    """:func:`restorer.train.loop.train`, imported on first call: `import restorer.train` stays
    light."""
    from restorer.train.loop import train as _train

    return _train(cfg, progress=progress, on_step=on_step)
