"""Training configuration: one typed dataclass; the CLI flags and the saved state mirror it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from restorer.errors import RestorerError

LOSSES = ("l1", "huber")
SELECT_BY = ("delta_e", "l1")


@dataclass
class TrainConfig:
    """Everything that decides a training run (saved in the model file and the state file)."""

    dataset: str = ""
    out: str = "model.safetensors"
    # network and sizes
    arch: dict[str, Any] = field(default_factory=lambda: {"arch": "unet", "base": 16, "depth": 3})
    working_size: int = 160        # inference short side written into the model file
    crop: int = 128                # random square crops taken from the stored frames
    # optimisation
    batch_size: int = 16
    lr: float = 2e-3
    min_lr_ratio: float = 0.05     # cosine decay ends at lr * this
    warmup_steps: int = 50
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    steps: int = 5000              # upper bound; --minutes usually ends a run first
    minutes: float | None = None   # wall-clock budget (the lr schedule follows it)
    # losses
    loss: str = "l1"               # "l1" or "huber" on normalised ab
    huber_delta: float = 0.05      # in normalised ab units (x110 = Lab units)
    rebalance: float = 0.0         # 0 off; 1 = Zhang et al. class rebalancing; between: softer
    rebalance_mix: float = 0.5     # Zhang's lambda: mix of the empirical and uniform ab priors
    colourfulness_weight: float = 0.0  # penalise |mean chroma(pred) - mean chroma(truth)|
    gan: bool = False
    gan_weight: float = 0.01       # adversarial weight with pixel weight 1 (= pix2pix's 1:100)
    disc: dict[str, Any] = field(default_factory=lambda: {"arch": "patchgan", "base": 32,
                                                          "layers": 3})
    disc_lr: float = 2e-4
    # data
    augment: bool = True
    num_workers: int = 2
    # validation and checkpoints
    val_every: int = 200
    val_frames: int = 64           # validation frames scored each time (deltaE is slow on CPU)
    select_by: str = "delta_e"     # which validation figure picks the best model
    # run
    seed: int = 0
    device: str = "auto"
    threads: int = 0               # CPU threads for torch (0: torch's default)
    amp: bool = True               # mixed precision, CUDA only
    init: str | None = None        # fine-tune from this model file
    resume: bool = False
    name: str = ""
    description: str = ""
    command: str = ""

    def validate(self) -> TrainConfig:
        if self.loss not in LOSSES:
            raise RestorerError(f"unknown loss {self.loss!r}; choose {' or '.join(LOSSES)}")
        if self.select_by not in SELECT_BY:
            raise RestorerError(f"unknown --select-by {self.select_by!r}; choose "
                                f"{' or '.join(SELECT_BY)}")
        for name in ("batch_size", "crop", "working_size", "steps", "val_every"):
            if getattr(self, name) < 1:
                raise RestorerError(f"{name.replace('_', '-')} must be at least 1")
        if self.minutes is not None and self.minutes <= 0:
            raise RestorerError("--minutes must be positive")
        if self.num_workers < 0:
            raise RestorerError("--workers must be 0 or more")
        return self

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
