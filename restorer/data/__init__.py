"""Training data: extract frames from colour episodes/photos, store them in shards, serve them."""

from restorer.data.dataset import Augment, ColourDataset
from restorer.data.extract import BuildOptions, BuildProgress, build_dataset
from restorer.data.store import FrameStore, read_manifest

__all__ = ["Augment", "BuildOptions", "BuildProgress", "ColourDataset", "FrameStore",
           "build_dataset", "read_manifest"]
