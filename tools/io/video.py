"""Video files <-> 8-bit RGB frames (H×W×3 uint8), streamed: memory stays bounded by one frame.

Read: mp4/mkv/avi/mov/webm (anything FFmpeg demuxes) through PyAV, which converts to RGB by the
stream's own colour tags; y4m and raw ``.yuv`` (8-bit 4:2:0 planar, I420), parsed here; folders of
PNG frames. Written: y4m, lossless FFV1 in Matroska (stored as RGB, so it round-trips bit-exactly)
and PNG folders. The frame count is known on opening, before any frame is decoded.

y4m and ``.yuv`` are YUV to lnc: BT.709, limited range, one matrix for every conversion here.
Chroma is the mean of each 2×2 block (centre-sited, which is what y4m's C420jpeg declares),
repeated over the block on the way back. Every failure caused by the input is one
``InputError`` line that names the file.
"""
from __future__ import annotations

import contextlib
import math
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import BinaryIO

import av
import numpy as np
from PIL import Image

from lnc.entropy.errors import InputError, LncError
from lnc.tools.io.files import AbandonOnError, error_reason
from lnc.tools.io.image import read_rgb

VIDEO_SUFFIXES = (".mp4", ".mkv", ".avi", ".mov", ".webm", ".y4m", ".yuv")
MAX_FRAME_PIXELS = 8192 * 8192
MAX_FRAME_SIDE = 16384
MAX_FRAMES = 1_000_000
FOLDER_FPS = 25.0
"""Frame rate of a PNG folder when none is given: PNG files record none."""
OUTPUT_FORMATS = ("y4m", "mkv", "png")

_Y4M_MAGIC = b"YUV4MPEG2"
_Y4M_LINE_MAX = 4096  # longest y4m header or FRAME line read: a bound, not a length from the file
_Y4M_420 = ("420", "420jpeg", "420mpeg2", "420paldv")  # 8-bit 4:2:0 differing in chroma siting, read alike
_READ_ERRORS = (OSError, EOFError, av.FFmpegError)

# BT.709 luma weights; code values are limited range: Y in 16..235, U and V in 16..240.
_KR, _KB = 0.2126, 0.0722
_KG = 1 - _KR - _KB
_RGB_TO_YUV = np.array(
    [
        [_KR, _KG, _KB],
        [-_KR / (2 - 2 * _KB), -_KG / (2 - 2 * _KB), 0.5],
        [0.5, -_KG / (2 - 2 * _KR), -_KB / (2 - 2 * _KR)],
    ]
) * (np.array([[219.0], [224.0], [224.0]]) / 255)
_YUV_TO_RGB = np.linalg.inv(_RGB_TO_YUV)
_YUV_OFFSET = np.array([16.0, 128.0, 128.0])


def is_video_path(path: str) -> bool:
    """True for a video suffix, or an existing folder holding PNG files: the CLI picks the video
    pipeline by this."""
    if os.path.splitext(path)[1].lower() in VIDEO_SUFFIXES:
        return True
    try:
        with os.scandir(path) as entries:
            return any(e.name.lower().endswith(".png") and e.is_file() for e in entries)
    except OSError:  # not a folder, or one we may not list
        return False


def output_format(path: str) -> str:
    """The format a decoded video is written in, chosen by the output name: ``y4m`` for ``.y4m``
    and for ``-`` (stdout, where y4m is what players and encoders read), ``mkv`` for ``.mkv``,
    ``png`` (a folder of frames) for a name without suffix or ending in a slash."""
    suffix = os.path.splitext(path)[1].lower()
    if path == "-" or suffix == ".y4m":
        return "y4m"
    if suffix == ".mkv":
        return "mkv"
    if not suffix or path.endswith(("/", os.sep)):
        return "png"
    raise InputError(f"cannot write video as {path}: choose a .y4m or .mkv file, or a folder (no suffix) for PNG frames")


_NAMED_SIZES = {"sqcif": (128, 96), "qcif": (176, 144), "cif": (352, 288), "4cif": (704, 576), "16cif": (1408, 1152)}
_NAMED_SIZE_FPS = 30.0  # the ITU CIF-family test sequences (foreman, akiyo, ...) were shot at 30 Hz


def yuv_clip_geometry(path: str) -> tuple[int, int, float] | None:
    """(width, height, fps) of a raw ``.yuv`` clip from its name, as test sequences spell them:
    ``RaceHorses_832x480_30Hz``, ``CiscoVT2people_320x192_12fps``, ``foreman_qcif_176x144``.
    A CIF-family name (qcif, cif, ...) gives the size when no WxH does, and 30 fps when no rate
    does; otherwise None when the name lacks a size or a rate."""
    name = os.path.basename(path).lower()
    tokens = re.split(r"[^0-9a-z.]+", os.path.splitext(name)[0])
    size = re.search(r"(?<![0-9])([1-9][0-9]{0,4})x([1-9][0-9]{0,4})(?![0-9])", name)
    named = next((_NAMED_SIZES[t] for t in tokens if t in _NAMED_SIZES), None)
    rate = next((m for t in tokens if (m := re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)(?:hz|fps)", t))), None)
    if size:
        width, height = int(size[1]), int(size[2])
    elif named:
        width, height = named
    else:
        return None
    if rate and float(rate[1]) > 0:
        return width, height, float(rate[1])
    return (width, height, _NAMED_SIZE_FPS) if named else None


def rgb_to_yuv444(rgb: np.ndarray) -> np.ndarray:
    """H×W×3 uint8 RGB → float64 H×W×3 BT.709 limited-range Y, U, V code values (unrounded),
    the planes PSNR-Y/U/V are measured on."""
    rgb = _check_rgb(rgb)
    return rgb.astype(np.float64) @ _RGB_TO_YUV.T + _YUV_OFFSET


def rgb_to_yuv420(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """H×W×3 uint8 RGB → uint8 planes Y (H×W), U and V (ceil(H/2)×ceil(W/2)), BT.709 limited
    range; each chroma sample is the mean of its 2×2 block (the last row or column repeated
    where H or W is odd)."""
    yuv = rgb_to_yuv444(rgb)
    height, width = yuv.shape[:2]
    uv = np.pad(yuv[..., 1:], ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
    uv = (uv[0::2, 0::2] + uv[1::2, 0::2] + uv[0::2, 1::2] + uv[1::2, 1::2]) / 4
    return _to_uint8(yuv[..., 0]), _to_uint8(uv[..., 0]), _to_uint8(uv[..., 1])


def yuv420_to_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The inverse of :func:`rgb_to_yuv420`: uint8 H×W×3 RGB, clipped. Each chroma sample is
    repeated over its 2×2 block (nearest neighbour), the adjoint of the 2×2 mean: planes read
    from a y4m or ``.yuv`` file come back from :func:`rgb_to_yuv420` as they were (up to RGB
    rounding and clipping), where bilinear upsampling would blur chroma on every pass through RGB."""
    height, width = y.shape
    chroma = ((height + 1) // 2, (width + 1) // 2)
    if u.shape != chroma or v.shape != chroma:
        raise ValueError(f"chroma planes of a {width}x{height} frame are {chroma[1]}x{chroma[0]}, got {u.shape} {v.shape}")
    uv = np.stack([u, v], axis=-1).repeat(2, axis=0).repeat(2, axis=1)[:height, :width]
    yuv = np.concatenate([y[..., None], uv], axis=-1).astype(np.float64)
    return _to_uint8((yuv - _YUV_OFFSET) @ _YUV_TO_RGB.T)


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _check_rgb(rgb: np.ndarray, shape: tuple[int, int] | None = None) -> np.ndarray:
    """``rgb`` as a uint8 H×W×3 array (of ``shape`` (H, W) when given); ValueError otherwise."""
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3 or (shape and rgb.shape[:2] != shape):
        want = f"{shape[0]}x{shape[1]}x3" if shape else "HxWx3"
        raise ValueError(f"expected a {want} uint8 RGB frame, got {rgb.dtype} of shape {list(rgb.shape)}")
    return rgb


def _i420_bytes(width: int, height: int) -> int:
    """Bytes of one 8-bit 4:2:0 planar frame: Y, then U and V at ceil(W/2)×ceil(H/2)."""
    return width * height + 2 * ((width + 1) // 2) * ((height + 1) // 2)


def _rate(fps: float) -> Fraction:
    """``fps`` as the rational a container stores: 30000/1001 stays exact, 25.0 becomes 25/1."""
    return Fraction(fps).limit_denominator(1001)


def _size_problem(width: int, height: int) -> str | None:
    """Why a frame size is refused (zero, or beyond the limits), or None."""
    if width < 1 or height < 1:
        return f"frame size {width}x{height} is empty"
    if max(width, height) > MAX_FRAME_SIDE or width * height > MAX_FRAME_PIXELS:
        return f"frame size {width}x{height} exceeds the limit ({MAX_FRAME_SIDE} a side, {MAX_FRAME_PIXELS} pixels)"
    return None




def _natural_key(name: str) -> list[int | str]:
    """Sort key that puts ``f2.png`` before ``f10.png`` (and ``f9999`` before ``f10000``)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"([0-9]+)", name)]


@dataclass(frozen=True)
class VideoInfo:
    """What a video holds: frame size, frame rate and the exact number of frames."""

    width: int
    height: int
    fps: float
    frames: int


class VideoReader:
    """Reads a video file, raw ``.yuv`` or PNG folder as RGB frames, one at a time.

    ``size=(W, H)`` and ``fps`` are needed for raw ``.yuv``; ``fps`` may be given for a PNG
    folder (default :data:`FOLDER_FPS`); other inputs record their own and refuse both. ``info``
    is known on opening: containers by counting the stream's packets (one demuxing pass, no
    decoding), y4m by walking its FRAME markers, ``.yuv`` from the file size, folders from the
    PNG headers. ``frames`` may be called again; each call reads from the start.
    """

    def __init__(self, path: str, size: tuple[int, int] | None = None, fps: float | None = None) -> None:
        self._path = os.fspath(path)
        self._file: BinaryIO | None = None
        self._pngs: list[str] = []
        self._start = 0  # where the first frame begins in a y4m or .yuv file
        if os.path.isdir(self._path):
            self._kind = "png"
        else:
            suffix = os.path.splitext(self._path)[1].lower()
            self._kind = suffix[1:] if suffix in (".y4m", ".yuv") else "av"
        if size is not None and self._kind != "yuv":
            raise self._error("--size applies to raw .yuv input only")
        if fps is not None and self._kind not in ("yuv", "png"):
            raise self._error("--fps applies to raw .yuv and PNG folders only; this file records its frame rate")
        if fps is not None and not (math.isfinite(fps) and fps > 0):
            raise self._error(f"frame rate {fps} is not a positive number")
        try:
            self.info: VideoInfo = self._open(size, fps)
        except BaseException as exc:
            self.close()
            if isinstance(exc, _READ_ERRORS):
                raise self._error(error_reason(exc)) from None
            raise

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the open y4m or ``.yuv`` file (PyAV and PNG reads close their own)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def frames(self) -> Iterator[np.ndarray]:
        """Yield exactly ``info.frames`` uint8 H×W×3 RGB frames in order; a file that turns out
        truncated, corrupt or changed since opening raises ``InputError``."""
        try:
            yield from getattr(self, f"_{self._kind}_frames")()
        except _READ_ERRORS as exc:
            raise self._error(error_reason(exc)) from None

    def _error(self, reason: str) -> InputError:
        """``cannot read video NAME: REASON`` on one line."""
        return InputError(f"cannot read video {self._path}: {' '.join(reason.split())}")

    def _open(self, size: tuple[int, int] | None, fps: float | None) -> VideoInfo:
        if self._kind == "yuv":
            return self._open_yuv(size, fps)
        if self._kind == "y4m":
            return self._open_y4m()
        if self._kind == "png":
            return self._open_png(FOLDER_FPS if fps is None else fps)
        return self._open_av()

    def _checked(self, info: VideoInfo) -> VideoInfo:
        """Refuse empty or absurd frame sizes, no frames, too many frames."""
        problem = _size_problem(info.width, info.height)
        if problem:
            raise self._error(problem)
        if info.frames == 0:
            raise self._error("no frames")
        if info.frames > MAX_FRAMES:
            raise self._error(f"more than {MAX_FRAMES} frames")
        return info

    def _open_yuv(self, size: tuple[int, int] | None, fps: float | None) -> VideoInfo:
        """Raw I420: the caller gives the geometry, the file size gives the frame count."""
        if size is None or fps is None:
            raise self._error("raw .yuv has no header: pass --size WxH --fps F")
        width, height = size
        problem = _size_problem(width, height)
        if problem:
            raise self._error(problem)
        self._file = open(self._path, "rb")
        file_size = os.fstat(self._file.fileno()).st_size
        frame = _i420_bytes(width, height)
        frames, rest = divmod(file_size, frame)
        if rest:
            raise self._error(
                f"{file_size} bytes are not whole {width}x{height} I420 frames of {frame} bytes: {rest} bytes left over"
            )
        return self._checked(VideoInfo(width, height, float(fps), frames))

    def _open_y4m(self) -> VideoInfo:
        """Parse the stream header; count frames by walking the FRAME lines, seeking over pixels."""
        self._file = f = open(self._path, "rb")
        file_size = os.fstat(f.fileno()).st_size
        line = f.readline(_Y4M_LINE_MAX)
        if not line.startswith(_Y4M_MAGIC):
            raise self._error("not a YUV4MPEG2 (y4m) file")
        if not line.endswith(b"\n"):
            raise self._error(f"y4m header line is cut short or longer than {_Y4M_LINE_MAX} bytes")
        params: dict[str, str] = {}
        for token in line[len(_Y4M_MAGIC) :].decode("ascii", "replace").split():
            params.setdefault(token[0], token[1:])
        colour = params.get("C", "420")
        if colour not in _Y4M_420:
            depth = re.search(r"p([0-9]+)", colour)
            kind = f"{depth[1]}-bit" if depth else "not 4:2:0"
            raise self._error(f"y4m colour space C{colour} is {kind}; lnc reads 8-bit 4:2:0 (C420, C420jpeg, C420mpeg2, C420paldv)")
        rate = re.fullmatch(r"([0-9]{1,9}):([0-9]{1,9})", params.get("F", ""))
        if not rate or not int(rate[1]) or not int(rate[2]):
            raise self._error(f"y4m header has no frame rate F<num>:<den> (got {params.get('F')!r})")
        dims = [params.get(key, "") for key in "WH"]
        if not all(re.fullmatch(r"[0-9]{1,9}", d) for d in dims):
            raise self._error(f"y4m header has no frame size W<width> H<height> (got {dims})")
        width, height = map(int, dims)
        problem = _size_problem(width, height)
        if problem:
            raise self._error(problem)
        self._start = position = f.tell()
        payload, frames = _i420_bytes(width, height), 0
        while position < file_size and frames <= MAX_FRAMES:
            f.seek(position)
            position += len(self._frame_line(frames)) + payload
            if position > file_size:
                raise self._error(f"truncated: frame {frames + 1} lacks {position - file_size} bytes")
            frames += 1
        return self._checked(VideoInfo(width, height, int(rate[1]) / int(rate[2]), frames))

    def _frame_line(self, index: int) -> bytes:
        """Read and check the FRAME line (with optional parameters) that starts frame ``index``."""
        assert self._file is not None
        line = self._file.readline(_Y4M_LINE_MAX)
        if not (line.startswith(b"FRAME") and line.endswith(b"\n") and line[5:6] in (b" ", b"\n")):
            raise self._error(f"frame {index + 1} does not start with a FRAME line")
        return line

    def _planes(self, index: int) -> np.ndarray:
        """Read the I420 planes of frame ``index`` at the file position, converted to RGB."""
        assert self._file is not None
        width, height = self.info.width, self.info.height
        data = self._file.read(_i420_bytes(width, height))
        if len(data) < _i420_bytes(width, height):
            raise self._error(f"truncated in frame {index + 1}")
        luma, chroma = width * height, ((width + 1) // 2) * ((height + 1) // 2)
        shape = ((height + 1) // 2, (width + 1) // 2)
        planes = np.frombuffer(data, np.uint8)
        y = planes[:luma].reshape(height, width)
        u = planes[luma : luma + chroma].reshape(shape)
        v = planes[luma + chroma :].reshape(shape)
        return yuv420_to_rgb(y, u, v)

    def _y4m_frames(self) -> Iterator[np.ndarray]:
        assert self._file is not None
        self._file.seek(self._start)
        for index in range(self.info.frames):
            self._frame_line(index)
            yield self._planes(index)

    def _yuv_frames(self) -> Iterator[np.ndarray]:
        assert self._file is not None
        self._file.seek(0)
        for index in range(self.info.frames):
            yield self._planes(index)

    def _open_png(self, fps: float) -> VideoInfo:
        """Frames are the folder's ``*.png`` files in natural name order, all of one size (read
        from their headers here; pixels are decoded by ``frames``)."""
        with os.scandir(self._path) as entries:
            names = sorted((e.name for e in entries if e.name.lower().endswith(".png") and e.is_file()), key=_natural_key)
        if not names:
            raise self._error("the folder holds no PNG frames")
        if len(names) > MAX_FRAMES:
            raise self._error(f"more than {MAX_FRAMES} frames")
        self._pngs = [os.path.join(self._path, name) for name in names]
        sizes = {}
        for name, png in zip(names, self._pngs):
            try:
                with Image.open(png) as image:
                    sizes.setdefault(image.size, name)
            except (OSError, Image.DecompressionBombError) as exc:
                raise self._error(f"{name}: {error_reason(exc)}") from None
            if len(sizes) > 1:
                (a, first), (b, other) = sizes.items()
                raise self._error(f"{other} is {b[0]}x{b[1]} but {first} is {a[0]}x{a[1]}; frames must have one size")
        width, height = next(iter(sizes))
        return self._checked(VideoInfo(width, height, float(fps), len(names)))

    def _png_frames(self) -> Iterator[np.ndarray]:
        shape = (self.info.height, self.info.width)
        for png in self._pngs:
            rgb = read_rgb(png)
            if rgb.shape[:2] != shape:
                raise self._error(f"{os.path.basename(png)} changed size since the folder was opened")
            yield rgb

    def _open_av(self) -> VideoInfo:
        """Size and bit depth from the first video stream; fps as FFmpeg guesses it (the stored
        average can be off: an AVI with 25 fps H.264 stamped in 1/50 s reports 50); frames by
        counting the stream's packets. A packet FFmpeg flags corrupt (a truncated file) is an error."""
        with av.open(self._path, "r") as container:
            if not container.streams.video:
                raise self._error(f"no video stream ({container.format.name})")
            stream = container.streams.video[0]
            self._check_depth(stream.codec_context.format)
            rate = stream.guessed_rate or stream.average_rate
            if not rate or rate <= 0:
                raise self._error("no frame rate")
            frames = 0
            for packet in container.demux(stream):
                if packet.is_corrupt:
                    raise self._error(f"truncated or corrupt at packet {frames + 1}")
                frames += packet.size > 0  # the demuxer ends with an empty packet
                if frames > MAX_FRAMES:
                    break
            info = VideoInfo(stream.codec_context.width, stream.codec_context.height, float(rate), frames)
        return self._checked(info)

    def _check_depth(self, fmt: av.VideoFormat | None) -> None:
        """Refuse pixel formats of more than 8 bits per component."""
        if fmt is not None and max((c.bits for c in fmt.components), default=8) > 8:
            raise self._error(f"pixel format {fmt.name} has more than 8 bits per component; lnc reads 8-bit video")

    def _av_frames(self) -> Iterator[np.ndarray]:
        size, frames = (self.info.width, self.info.height), 0
        with av.open(self._path, "r") as container:
            for frame in container.decode(container.streams.video[0]):
                frames += 1
                if frames > self.info.frames:
                    raise self._error(f"decodes to more than the {self.info.frames} frames counted")
                if (frame.width, frame.height) != size:
                    raise self._error(f"frame {frames} is {frame.width}x{frame.height}, not {size[0]}x{size[1]}")
                self._check_depth(frame.format)
                yield frame.to_ndarray(format="rgb24")
        if frames < self.info.frames:
            raise self._error(f"truncated: {frames} of {self.info.frames} frames decode")


class VideoWriter(AbandonOnError):
    """Writes RGB frames one at a time as y4m, lossless FFV1 Matroska, or a folder of PNGs.

    ``fmt`` is one of :data:`OUTPUT_FORMATS` (see :func:`output_format`). y4m and mkv go to a
    binary file object ``out`` that stays open: the CLI passes an atomic file
    (:func:`lnc.tools.io.files.open_output`), so an interrupted write leaves nothing. y4m is
    BT.709 limited-range 4:2:0 (:func:`rgb_to_yuv420`); mkv stores FFV1 ``bgr0``, exact RGB.
    ``png`` takes a folder path that must not exist: the frames ``f0001.png``, ... go to a hidden
    sibling folder renamed to ``out`` on closing, and removed on an error.
    """

    def __init__(self, out: BinaryIO | str, width: int, height: int, fps: float, fmt: str) -> None:
        if fmt not in OUTPUT_FORMATS:
            raise ValueError(f"cannot write video as {fmt!r}; choose from {', '.join(OUTPUT_FORMATS)}")
        problem = _size_problem(width, height)
        if problem:
            raise ValueError(problem)
        if not (math.isfinite(fps) and fps > 0 and _rate(fps) > 0):
            raise ValueError(f"frame rate {fps} is not a positive number")
        if (fmt == "png") != isinstance(out, str):
            raise ValueError("png frames go to a folder path; y4m and mkv to an open binary file")
        self.width, self.height, self.fmt = width, height, fmt
        self._written, self._closed = 0, False
        self._container: av.container.OutputContainer | None = None
        rate = _rate(fps)
        if fmt == "png":
            self._folder = os.path.abspath(out)
            if os.path.lexists(self._folder):
                raise LncError(f"{out} exists; refusing to overwrite it")
            parent, name = os.path.split(self._folder)
            self._tmp = os.path.join(parent, f".{name}-{secrets.token_hex(4)}.tmp")
            try:
                os.mkdir(self._tmp)
            except OSError as exc:
                raise LncError(f"cannot write {out}: {error_reason(exc)}") from None
        elif fmt == "y4m":
            self._out = out
            out.write(f"YUV4MPEG2 W{width} H{height} F{rate.numerator}:{rate.denominator} Ip A1:1 C420jpeg\n".encode())
        else:
            self._container = av.open(out, "w", format="matroska")
            try:
                self._stream = self._container.add_stream("ffv1", rate=rate)
                self._stream.width, self._stream.height, self._stream.pix_fmt = width, height, "bgr0"
            except BaseException:
                self._abandon()
                raise

    def write(self, rgb: np.ndarray) -> None:
        """Append one uint8 H×W×3 RGB frame of the writer's size."""
        if self._closed:
            raise ValueError("write to a closed VideoWriter")
        rgb = _check_rgb(rgb, (self.height, self.width))
        self._written += 1
        if self.fmt == "png":
            Image.fromarray(rgb).save(os.path.join(self._tmp, f"f{self._written:04d}.png"))
        elif self.fmt == "y4m":
            self._out.write(b"FRAME\n")
            for plane in rgb_to_yuv420(rgb):
                self._out.write(plane.tobytes())
        else:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts = self._written - 1
            for packet in self._stream.encode(frame):
                self._container.mux(packet)

    def close(self) -> None:
        """Finish the output: flush the encoder (mkv), or move the PNG folder into place."""
        if self._closed:
            return
        try:
            if self._container is not None:
                for packet in self._stream.encode(None):
                    self._container.mux(packet)
                self._container.close()
            elif self.fmt == "png":
                try:
                    os.rename(self._tmp, self._folder)
                except OSError as exc:
                    raise LncError(f"cannot write {self._folder}: {error_reason(exc)}") from None
        except BaseException:
            self._abandon()
            raise
        self._closed = True

    def _abandon(self) -> None:
        """Release everything after an error, quietly: the first exception is the one to report."""
        self._closed = True
        if self._container is not None:
            with contextlib.suppress(Exception):
                self._container.close()
        elif self.fmt == "png":
            shutil.rmtree(self._tmp, ignore_errors=True)
