"""Video in and out: probe, decode and seek in process (PyAV); encode and mux through the static
ffmpeg of imageio-ffmpeg."""

from restorer.media.probe import AudioStream, ColourTags, VideoInfo, ffmpeg_exe, probe
from restorer.media.reader import FrameReader, read_frame
from restorer.media.writer import CODECS, VideoWriter

__all__ = [
    "AudioStream", "CODECS", "ColourTags", "FrameReader", "VideoInfo", "VideoWriter",
    "ffmpeg_exe", "probe", "read_frame",
]
