"""Exception types of lnc: every failure a user can cause ends in one of these."""


class LncError(Exception):
    """Base of every error that the CLI reports as one line ``lnc: error: ...`` with exit code 2."""


class BitstreamError(LncError):
    """A ``.lnc`` file or coded stream is truncated, corrupted, of an unknown version or implausible."""


class ModelMismatchError(LncError):
    """A bitstream was written by another codec or other weights than the ones asked to decode it."""


class InputError(LncError):
    """An input file (image, audio, video) cannot be read or is of an unsupported kind."""
