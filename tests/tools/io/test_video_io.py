"""lnc.tools.io.video on real clips: frame counts known up front, exact and near-exact round trips,
one-line errors for broken or unsupported inputs."""
from __future__ import annotations

import io
import itertools
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from lnc.entropy.errors import InputError
from lnc.tools.io.video import (
    MAX_FRAME_PIXELS,
    VideoInfo,
    VideoReader,
    VideoWriter,
    is_video_path,
    output_format,
    rgb_to_yuv420,
    rgb_to_yuv444,
    yuv420_to_rgb,
    yuv_clip_geometry,
)

BASKETBALL = "video/BasketballPass_416x240_64f"
AVI = "train/video/pedestrians_720p_clip/vtest_h264_1280x720.avi"
RAW_CLIPS = {  # name -> (width, height, fps, frames)
    "C_RaceHorses_2frames_832x480_30Hz_8bit_P420.yuv": (832, 480, 30.0, 2),
    "CiscoVT2people_320x192_12fps.yuv": (320, 192, 12.0, 9),
    "foreman_cif_352x288_2f.yuv": (352, 288, 30.0, 2),
    "foreman_qcif_176x144_10f.yuv": (176, 144, 30.0, 10),
}


@pytest.fixture(scope="module")
def basketball(data_dir: Path) -> list[np.ndarray]:
    """The first 8 BasketballPass frames (416×240), read by Pillow, not by the module under test."""
    return [np.asarray(Image.open(data_dir / BASKETBALL / f"f{n:03d}.png").convert("RGB")) for n in range(1, 9)]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255**2 / np.mean((a.astype(np.float64) - b) ** 2)))


def read_all(path: Path, **kwargs) -> tuple[VideoInfo, list[np.ndarray]]:
    with VideoReader(str(path), **kwargs) as reader:
        return reader.info, list(reader.frames())


def write_y4m(path: Path, frames: list[np.ndarray], fps: float = 50.0) -> None:
    height, width = frames[0].shape[:2]
    with open(path, "wb") as f, VideoWriter(f, width, height, fps, "y4m") as writer:
        for frame in frames:
            writer.write(frame)


def write_h264(path: Path, frames: list[np.ndarray], fps: int, options: dict[str, str] | None = None) -> None:
    with av.open(str(path), "w", options=options or {}) as container:
        stream = container.add_stream("libx264", rate=fps, options={"preset": "ultrafast"})
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def bt709_i420_to_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """I420 → RGB by the published BT.709 limited-range equations, chroma repeated over 2×2."""
    h, w = y.shape
    cb = u.repeat(2, 0).repeat(2, 1)[:h, :w] - 128.0
    cr = v.repeat(2, 0).repeat(2, 1)[:h, :w] - 128.0
    luma = 1.164384 * (y - 16.0)
    rgb = np.stack([luma + 1.792741 * cr, luma - 0.213249 * cb - 0.532909 * cr, luma + 2.112402 * cb], axis=-1)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def test_png_folder_reads_every_frame_in_order(data_dir: Path, basketball: list[np.ndarray]) -> None:
    folder = data_dir / BASKETBALL
    assert is_video_path(str(folder))
    with VideoReader(str(folder)) as reader:
        assert reader.info == VideoInfo(416, 240, 25.0, 64)  # PNGs record no rate: the default
    info, frames = read_all(folder, fps=50)
    assert info == VideoInfo(416, 240, 50.0, 64)
    assert len(frames) == 64 and all(f.shape == (240, 416, 3) and f.dtype == np.uint8 for f in frames)
    for got, want in zip(frames, basketball):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(frames[63], np.asarray(Image.open(folder / "f064.png").convert("RGB")))


@pytest.mark.parametrize("name", sorted(RAW_CLIPS))
def test_raw_yuv_geometry_from_the_name_and_frames_by_the_bt709_equations(data_dir: Path, name: str) -> None:
    path = data_dir / "video" / name
    width, height, fps, frames = RAW_CLIPS[name]
    assert yuv_clip_geometry(str(path)) == (width, height, fps)
    frame_bytes = width * height * 3 // 2
    assert path.stat().st_size == frames * frame_bytes
    info, rgb = read_all(path, size=(width, height), fps=fps)
    assert info == VideoInfo(width, height, fps, frames) and len(rgb) == frames
    planes = np.fromfile(path, np.uint8, count=frame_bytes)
    y = planes[: width * height].reshape(height, width)
    u, v = planes[width * height :].reshape(2, height // 2, width // 2)
    reference = bt709_i420_to_rgb(y, u, v)
    difference = np.abs(rgb[0].astype(int) - reference)
    assert difference.max() <= 1 and np.mean(difference == 0) > 0.999  # the reference's 6-digit coefficients
    np.testing.assert_array_equal(rgb[0], yuv420_to_rgb(y, u, v))


def test_y4m_round_trip_of_real_frames(tmp_path: Path, basketball: list[np.ndarray]) -> None:
    path = tmp_path / "clip.y4m"
    write_y4m(path, basketball)
    data = path.read_bytes()
    header = b"YUV4MPEG2 W416 H240 F50:1 Ip A1:1 C420jpeg\n"
    frame_bytes = 416 * 240 * 3 // 2
    assert data.startswith(header) and len(data) == len(header) + 8 * (6 + frame_bytes)
    first = np.frombuffer(data, np.uint8, frame_bytes, len(header) + 6)
    y, u, v = rgb_to_yuv420(basketball[0])
    np.testing.assert_array_equal(first, np.concatenate([y.ravel(), u.ravel(), v.ravel()]))
    info, frames = read_all(path)
    assert info == VideoInfo(416, 240, 50.0, 8)
    np.testing.assert_array_equal(frames[0], yuv420_to_rgb(y, u, v))
    assert min(psnr(got, want) for got, want in zip(frames, basketball)) > 35
    again = rgb_to_yuv420(frames[0])  # the planes survive a second pass through RGB
    assert np.mean(again[0] == y) > 0.99 and np.mean(again[1] == u) > 0.99


def test_odd_size_round_trips_through_y4m(tmp_path: Path, basketball: list[np.ndarray]) -> None:
    frames = [np.pad(f, ((0, 1), (0, 1), (0, 0)), mode="edge") for f in basketball[:3]]  # 417×241
    planes = rgb_to_yuv420(frames[0])
    assert [p.shape for p in planes] == [(241, 417), (121, 209), (121, 209)]
    path = tmp_path / "odd.y4m"
    write_y4m(path, frames, fps=30000 / 1001)
    header = b"YUV4MPEG2 W417 H241 F30000:1001 Ip A1:1 C420jpeg\n"
    assert path.stat().st_size == len(header) + 3 * (6 + 417 * 241 + 2 * 209 * 121)
    info, back = read_all(path)
    assert info == VideoInfo(417, 241, 30000 / 1001, 3)
    np.testing.assert_array_equal(back[0], yuv420_to_rgb(*planes))
    assert min(psnr(got, want) for got, want in zip(back, frames)) > 35


@pytest.mark.parametrize(("shape", "fps"), [((240, 416), 50.0), ((241, 417), 30000 / 1001)])
def test_mkv_ffv1_round_trip_is_bit_exact(tmp_path: Path, basketball: list[np.ndarray], shape, fps) -> None:
    frames = [np.ascontiguousarray(np.pad(f, ((0, 1), (0, 1), (0, 0)), mode="edge")[: shape[0], : shape[1]]) for f in basketball[:4]]
    buffer = io.BytesIO()
    with VideoWriter(buffer, shape[1], shape[0], fps, "mkv") as writer:
        for frame in frames:
            writer.write(frame)
    path = tmp_path / "clip.mkv"
    path.write_bytes(buffer.getvalue())
    info, back = read_all(path)
    assert info == VideoInfo(shape[1], shape[0], fps, 4)
    for got, want in zip(back, frames):
        np.testing.assert_array_equal(got, want)


def test_png_folder_write_is_exact_and_appears_only_when_complete(tmp_path: Path, basketball: list[np.ndarray]) -> None:
    out = tmp_path / "frames"
    with VideoWriter(str(out), 416, 240, 50.0, "png") as writer:
        for frame in basketball[:3]:
            writer.write(frame)
            assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]
    assert sorted(p.name for p in out.iterdir()) == ["f0001.png", "f0002.png", "f0003.png"]
    info, back = read_all(out, fps=50)
    assert info == VideoInfo(416, 240, 50.0, 3)
    for got, want in zip(back, basketball):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(RuntimeError), VideoWriter(str(tmp_path / "broken"), 416, 240, 50.0, "png") as writer:
        writer.write(basketball[0])
        raise RuntimeError("interrupted")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]  # no output, no temporary folder


def test_h264_mp4_and_avi_report_count_and_rate_before_decoding(
    tmp_path: Path, data_dir: Path, basketball: list[np.ndarray]
) -> None:
    path = tmp_path / "clip.mp4"
    write_h264(path, basketball[:6], fps=25)
    info, frames = read_all(path)
    assert info == VideoInfo(416, 240, 25.0, 6) and len(frames) == 6
    assert min(psnr(got, want) for got, want in zip(frames, basketball)) > 30
    with VideoReader(str(data_dir / AVI)) as reader:  # stamped in 1/50 s, one frame every 2 ticks
        assert reader.info == VideoInfo(1280, 720, 25.0, 341)
        first = next(reader.frames())
        assert first.shape == (720, 1280, 3) and first.dtype == np.uint8


@pytest.mark.parametrize("options", [{}, {"movflags": "+faststart"}], ids=["index-at-end", "index-first"])
def test_truncated_mp4_is_refused(tmp_path: Path, basketball: list[np.ndarray], options: dict[str, str]) -> None:
    path = tmp_path / "clip.mp4"
    write_h264(path, basketball, fps=25, options=options)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="cannot read video .*clip.mp4"):
        read_all(path)


def y4m_bytes(header: bytes, frames: int, width: int, height: int) -> bytes:
    return header + frames * (b"FRAME\n" + bytes(width * height * 3 // 2))


TINY = b"YUV4MPEG2 W8 H8 F25:1\n"
BAD_INPUTS = {  # file name -> (content, or None for no file; reader arguments; expected message)
    "short.yuv": (bytes(416 * 240 * 3 // 2 + 7), {"size": (416, 240), "fps": 50}, "7 bytes left over"),
    "empty.yuv": (b"", {"size": (416, 240), "fps": 50}, "no frames"),
    "nosize.yuv": (bytes(416 * 240 * 3 // 2), {}, "pass --size WxH --fps F"),
    "sized.y4m": (y4m_bytes(TINY, 1, 8, 8), {"size": (8, 8)}, "--size applies to raw .yuv"),
    "empty.y4m": (b"YUV4MPEG2 W416 H240 F25:1 C420\n", {}, "no frames"),
    "deep.y4m": (y4m_bytes(b"YUV4MPEG2 W8 H8 F25:1 C420p10\n", 1, 16, 8), {}, "10-bit; lnc reads 8-bit 4:2:0"),
    "mono.y4m": (y4m_bytes(b"YUV4MPEG2 W8 H8 F25:1 Cmono\n", 1, 8, 8), {}, "Cmono is not 4:2:0"),
    "wide.y4m": (b"YUV4MPEG2 W100000 H240 F25:1\n", {}, "frame size 100000x240 exceeds"),
    "huge.y4m": (b"YUV4MPEG2 W16000 H16000 F25:1\n", {}, f"{MAX_FRAME_PIXELS} pixels"),
    "zero.y4m": (b"YUV4MPEG2 W0 H240 F25:1\n", {}, "frame size 0x240 is empty"),
    "cut.y4m": (y4m_bytes(TINY, 2, 8, 8)[:-10], {}, "frame 2 lacks 10 bytes"),
    "marker.y4m": (y4m_bytes(TINY, 1, 8, 8) + b"FRANK\n" + bytes(96), {}, "frame 2 does not start with a FRAME"),
    "norate.y4m": (y4m_bytes(b"YUV4MPEG2 W8 H8\n", 1, 8, 8), {}, "no frame rate"),
    "notvideo.mkv": (b"hello", {}, "cannot read video"),
    "missing.mp4": (None, {}, "No such file"),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_inputs_are_one_line_input_errors(tmp_path: Path, name: str) -> None:
    content, kwargs, message = BAD_INPUTS[name]
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=message) as caught:
        read_all(path, **kwargs)
    assert "\n" not in str(caught.value) and name in str(caught.value)


def test_png_folder_of_mixed_sizes_is_refused(tmp_path: Path, basketball: list[np.ndarray]) -> None:
    Image.fromarray(basketball[0]).save(tmp_path / "f1.png")
    Image.fromarray(basketball[1][:, :400]).save(tmp_path / "f2.png")
    with pytest.raises(InputError, match="f2.png is 400x240 but f1.png is 416x240"):
        read_all(tmp_path)
    with pytest.raises(InputError, match="--fps applies to raw .yuv and PNG folders only"):
        VideoReader(str(tmp_path / "f1.mp4"), fps=25)


def test_colour_conversions_follow_bt709_limited_range() -> None:
    colours = np.array([[[255, 255, 255], [0, 0, 0], [255, 0, 0], [0, 0, 255]]], np.uint8)
    np.testing.assert_allclose(
        rgb_to_yuv444(colours)[0],
        [[235, 128, 128], [16, 128, 128], [16 + 219 * 0.2126, 128 - 112 * 0.2126 / 0.9278, 240], [16 + 219 * 0.0722, 240, 128 - 112 * 0.0722 / 0.7874]],
    )
    blocks = colours.repeat(2, 0).repeat(2, 1)  # flat 2×2 blocks lose nothing to 4:2:0 but rounding
    assert np.abs(yuv420_to_rgb(*rgb_to_yuv420(blocks)).astype(int) - blocks).max() == 1


@pytest.mark.parametrize(
    ("name", "geometry"),
    [
        ("BasketballPass_416x240_50Hz.yuv", (416, 240, 50.0)),
        ("akiyo_qcif.yuv", (176, 144, 30.0)),
        ("clip_1920x1080_29.97fps.yuv", (1920, 1080, 29.97)),
        ("clip_1920x1080.yuv", None),
        ("clip.yuv", None),
    ],
)
def test_yuv_clip_geometry_reads_sizes_and_rates_from_names(name: str, geometry) -> None:
    assert yuv_clip_geometry(name) == geometry


def test_output_format_by_name() -> None:
    assert [output_format(p) for p in ("a.y4m", "a.MKV", "frames", "out.d/", "-")] == ["y4m", "mkv", "png", "png", "y4m"]
    with pytest.raises(InputError, match="choose a .y4m or .mkv file"):
        output_format("a.mp4")
    assert is_video_path("a.webm") and not is_video_path("a.png")
