"""File <-> .lnc through a codec, one pipeline per modality: tiling, chunking and the container."""
