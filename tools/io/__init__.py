"""File <-> tensor I/O per modality: the only place that knows file formats."""
