"""What ``restorer farm run`` takes beyond its inputs; the driver and the workers share it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from restorer.look import Look

DEFAULT_CHUNK = "60s"


@dataclass(frozen=True)
class FarmOptions:
    """What ``restorer farm run`` takes beyond its inputs: the colourize options, and how to cut
    and schedule."""

    model: Path | None = None
    look: Look = field(default_factory=Look)
    codec: str = "h264"
    crf: int | None = None
    device: str = "auto"
    batch_size: int = 8
    deinterlace: bool = False
    allow_truncated: bool = False
    #: About how long each chunk is: seconds ("60s"), a timecode or a frame count.
    chunk: str = DEFAULT_CHUNK
    cpus_per_chunk: int = 1
    #: Further attempts at a failed chunk before its episode is reported failed.
    retries: int = 2
    overwrite: bool = False
    keep_chunks: bool = False
