"""Questions about a video's content that need colour science: is this source already in colour?

It sits above :mod:`restorer.media` (which only decodes and encodes) and :mod:`restorer.color`,
for the export job's notes (:func:`restorer.render.source_notes`) and its callers.
"""

from __future__ import annotations

import numpy as np

from restorer.color import rgb8_to_lab
from restorer.media import FrameReader, VideoInfo


def looks_colour(info: VideoInfo, samples: int = 5, threshold: float = 4.0) -> bool:
    """True when sampled frames carry real chroma (mean |a|+|b| in Lab above ``threshold``).

    ``samples`` frames spread over the video are decoded at a quarter of its size; the median of
    their chroma decides, so a colour title card in a black-and-white episode does not.
    """
    step = max(1, info.frame_count // samples)
    size = (max(2, info.width // 4 * 2 // 2), max(2, info.height // 4 * 2 // 2))
    chroma = []
    for n in range(0, info.frame_count, step)[:samples]:
        with FrameReader(info, n, n + 1, mode="rgb", size=size) as r:
            for _, f in r:
                lab = rgb8_to_lab(f)
                chroma.append(float(np.abs(lab[..., 1:]).sum(-1).mean()))
    return bool(chroma) and float(np.median(chroma)) > threshold
