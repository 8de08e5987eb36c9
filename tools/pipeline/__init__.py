"""File <-> .lnc through a codec, one pipeline per modality: tiling, chunking and the container."""

DEFAULT_INTRA_PERIOD = 32
"""Frames from one intra frame to the next in a coded video unless told otherwise: DCVC's test
conditions (which also use -1, the first frame only)."""
