"""Classical video codecs through PyAV (FFmpeg): x264, x265 and SVT-AV1, measured the same way as lnc's learned ones.

Every codec codes the same RGB frames as 4:2:0 planes made by :func:`lnc.tools.io.video.rgb_to_yuv420`
(BT.709, limited range, and the stream is tagged so), not by an encoder's own conversion, and its decoded
planes return to RGB through :func:`lnc.tools.io.video.yuv420_to_rgb`. ``quality`` is the CRF. Settings:
x264 and x265 at preset medium, SVT-AV1 at preset 8; an intra frame exactly every ``intra_period``
frames and nowhere else (keyint = min-keyint, scene-cut detection off, closed GOPs), or on the first
frame only for ``-1``; two threads each. The rate is every byte of the elementary stream's packets,
no container; FFmpeg's h264, hevc and dav1d decoders read them back in memory.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from lnc.entropy.errors import InputError, LncError
from lnc.tools.eval.video import ClipFrames, CodedVideo

if TYPE_CHECKING:
    import av

_BT709 = 1  # ITU-T H.273 code point of BT.709 primaries, transfer and matrix


@dataclass(frozen=True)
class VideoBaseline:
    """An FFmpeg video encoder at a fixed preset; ``quality`` is its CRF, an integer."""

    name: str  # also how FFmpeg names the option that takes the encoder's own parameters, "<name>-params"
    label: str
    encoder: str  # FFmpeg encoder name
    decoder: str  # FFmpeg decoder name
    preset: str
    params: str  # the encoder's own parameters; {keyint} is the intra period
    no_keyint: str  # how the encoder spells "no intra frame after the first"
    qualities: tuple[float, ...]  # default CRF sweep
    crf_range: tuple[int, int]  # inclusive

    def check_quality(self, quality: float) -> None:
        """Raise ``InputError`` unless ``quality`` is an integer CRF in the encoder's range."""
        low, high = self.crf_range
        if quality != int(quality) or not low <= quality <= high:
            raise InputError(f"{self.label} quality is an integer CRF in [{low}, {high}], got {quality:g}")

    def packets(self, clip: ClipFrames, quality: float, intra_period: int) -> list[av.Packet]:
        """The clip's frames coded at CRF ``quality``: ``av.Packet`` s in decoding order, ``pts`` = frame index."""
        import av
        from av.video.reformatter import ColorRange, Colorspace

        from lnc.tools.io.video import rgb_to_yuv420

        self.check_quality(quality)
        info = clip.info
        if info.width % 2 or info.height % 2:
            raise InputError(
                f"{self.label} codes 4:2:0, which needs an even width and height, not {info.width}x{info.height}"
            )
        os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its whole configuration unless told: errors only
        context = av.CodecContext.create(self.encoder, "w")
        context.width, context.height, context.pix_fmt = info.width, info.height, "yuv420p"
        context.framerate = Fraction(info.fps).limit_denominator(1001)
        context.time_base = 1 / context.framerate
        context.colorspace, context.color_range = Colorspace.ITU709, ColorRange.MPEG
        context.color_primaries = context.color_trc = _BT709
        keyint = self.no_keyint if intra_period == -1 else intra_period
        context.options = {"preset": self.preset, "crf": str(int(quality)),
                           f"{self.name}-params": self.params.format(keyint=keyint)}
        packets = []
        for index, rgb in enumerate(clip.frames()):
            planes = np.concatenate([plane.ravel() for plane in rgb_to_yuv420(rgb)]).reshape(-1, info.width)
            frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
            frame.pts = index
            packets += context.encode(frame)
        return packets + context.encode(None)

    def encode(self, clip: ClipFrames, quality: float, intra_period: int) -> CodedVideo:
        """The clip coded at CRF ``quality``, with each frame's bits in display order: its packet's (an AV1
        packet is a temporal unit, which also carries the hidden frames coded with it)."""
        packets = self.packets(clip, quality, intra_period)
        frame_bits = [8 * packet.size for packet in sorted(packets, key=lambda packet: packet.pts)]
        return CodedVideo([bytes(packet) for packet in packets], frame_bits)

    def decode(self, coded: CodedVideo) -> list[np.ndarray]:
        """Decode the packets to uint8 RGB frames in display order."""
        import av

        from lnc.tools.io.video import yuv420_to_rgb

        context = av.CodecContext.create(self.decoder, "r")
        context.thread_count = 2
        frames = [frame for unit in coded.units for frame in context.decode(av.Packet(unit))]
        frames += context.decode(None)
        rgb = []
        for frame in frames:
            if frame.format.name != "yuv420p":
                raise LncError(f"{self.label} decoded {frame.format.name} frames, expected yuv420p")
            flat, luma = frame.to_ndarray().reshape(-1), frame.width * frame.height  # Y, U, V planes in a row
            chroma = (frame.height // 2, frame.width // 2)
            u, v = flat[luma:].reshape(2, *chroma)
            rgb.append(yuv420_to_rgb(flat[:luma].reshape(frame.height, frame.width), u, v))
        return rgb

    @property
    def description(self) -> str:
        """What was measured, with the library versions that produced it."""
        import av

        return (
            f"{self.label} ({self.encoder}, preset {self.preset}, quality = CRF, {self.params.format(keyint='N')}), "
            f"BT.709 limited-range 4:2:0, elementary stream bytes. "
            f"FFmpeg {av.ffmpeg_version_info}, PyAV {av.__version__}"
        )


CODECS: dict[str, VideoBaseline] = {
    c.name: c
    for c in (
        VideoBaseline(
            name="x264", label="x264", encoder="libx264", decoder="h264", preset="medium",
            params="keyint={keyint}:min-keyint={keyint}:scenecut=0:open-gop=0:threads=2", no_keyint="infinite",
            qualities=(12, 16, 20, 24, 28, 32, 36, 40), crf_range=(0, 51),
        ),
        VideoBaseline(
            name="x265", label="x265", encoder="libx265", decoder="hevc", preset="medium",
            params="keyint={keyint}:min-keyint={keyint}:scenecut=0:open-gop=0:pools=2:frame-threads=1:log-level=error",
            no_keyint="-1", qualities=(12, 16, 20, 24, 28, 32, 36, 40), crf_range=(0, 51),
        ),
        VideoBaseline(
            name="svtav1", label="SVT-AV1", encoder="libsvtav1", decoder="libdav1d", preset="8",
            params="keyint={keyint}:scd=0:lp=2", no_keyint="-1",
            qualities=(13, 20, 27, 34, 41, 48, 55, 62), crf_range=(1, 63),
        ),
    )
}


def get(name: str) -> VideoBaseline:
    """The classical video codec ``name``, checked to be built into this FFmpeg."""
    import av

    if name not in CODECS:
        raise InputError(f"unknown classical video codec {name!r}; choose from {', '.join(CODECS)}")
    codec = CODECS[name]
    for which, mode in ((codec.encoder, "w"), (codec.decoder, "r")):
        try:
            av.codec.Codec(which, mode)
        except av.codec.codec.UnknownCodecError:
            raise LncError(f"{codec.label} is not available: PyAV's FFmpeg was built without {which}") from None
    return codec
