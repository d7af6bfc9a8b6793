"""Training configuration: one typed dataclass; the CLI flags and the saved state mirror it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from restorer.errors import RestorerError

LOSSES = ("l1", "huber")
SELECT_BY = ("delta_e", "l1")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass
class TrainConfig:
    """Everything that decides a training run (saved in the model file and the state file)."""

    dataset: str = ""
    out: str = "model.safetensors"
    # network and sizes: None = chosen from the data and device (restorer.train.auto)
    arch: dict[str, Any] | None = None
    working_size: int | None = None  # inference short side; training frames are scaled to it
    crop: int | None = None        # square crop side at the working size; None: auto
    crop_hw: list[int] | None = None  # the (h, w) actually trained on (set by auto.resolve)
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
    rebalance: float = 0.5         # 0 off; 1 = Zhang et al. class rebalancing; between: softer
    rebalance_mix: float = 0.5     # Zhang's lambda: mix of the empirical and uniform ab priors
    colourfulness_weight: float = 0.0  # penalise |mean chroma(pred) - mean chroma(truth)|
    gan: bool = False
    gan_weight: float = 0.01       # adversarial weight with pixel weight 1 (= pix2pix's 1:100)
    disc: dict[str, Any] = field(default_factory=lambda: {"arch": "patchgan", "base": 32,
                                                          "layers": 3})
    disc_lr: float = 2e-4
    # data
    augment: bool = True           # flips and a small random zoom
    degrade: float = 0.0           # probability of each archive degradation (grain, blur, tone)
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
    precision: str = "auto"        # auto, fp32, bf16 (CPU autocast), fp16 (CUDA autocast)
    channels_last: bool = True     # NHWC memory layout: faster convolutions on CPU and GPU
    init: str | None = None        # fine-tune from this model file (None: random weights)
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
        if self.precision not in PRECISIONS:
            raise RestorerError(f"unknown precision {self.precision!r}; choose "
                                f"{', '.join(PRECISIONS)}")
        if not 0.0 <= self.degrade <= 1.0:
            raise RestorerError(f"--degrade must be in 0..1; got {self.degrade}")
        for name in ("batch_size", "crop", "working_size", "steps", "val_every"):
            value = getattr(self, name)
            if value is not None and value < 1:
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
