"""Video in and out through the static ffmpeg of imageio-ffmpeg: probe, read, write."""

from restorer.media.probe import AudioStream, ColourTags, VideoInfo, ffmpeg_exe, probe
from restorer.media.reader import FrameReader, read_frame
from restorer.media.writer import CODECS, VideoWriter

__all__ = [
    "AudioStream", "CODECS", "ColourTags", "FrameReader", "VideoInfo", "VideoWriter",
    "ffmpeg_exe", "probe", "read_frame",
]
