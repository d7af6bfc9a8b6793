"""Training: typed config, losses, the loop (single process or torchrun/DDP), recipes."""

from restorer.train.config import TrainConfig

__all__ = ["TrainConfig", "train"]


def train(*args, **kwargs):  # noqa: ANN002, ANN003 - lazy: keep `import restorer.train` light
    from restorer.train.loop import train as _train

    return _train(*args, **kwargs)
