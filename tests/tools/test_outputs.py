"""Where the CLI may write (issue #18): special files are never replaced, symlinks stay links, an
output is never the input, any legal file name works, and eval/plot follow encode's --force rule.

Every case runs the real CLI in-process on real files: a small Kodak crop and the shipped default model.
"""
from __future__ import annotations

import io
import json
import os
import stat
import threading
from pathlib import Path

import pytest
import torch
from PIL import Image

from lnc.entropy.chunked import open_reader
from lnc.entropy.container import MAGIC, atomic_open, atomic_write
from lnc.entropy.errors import LncError
from lnc.tools.cli import eval as eval_cli
from lnc.tools.cli import main
from lnc.tools.cli import plot as plot_cli
from lnc.tools.eval.datasets import anchors_root
from lnc.tools.io.files import check_output

KODAK_CURVES = anchors_root() / "compressai" / "image" / "kodak"


@pytest.fixture(scope="module")
def crop_bytes(data_dir: Path) -> bytes:
    """A 64x48 crop of kodim01 as PNG bytes: encodes in a moment."""
    with Image.open(data_dir / "kodak" / "kodim01.png") as image:
        crop = image.convert("RGB").crop((300, 200, 364, 248))
    buffer = io.BytesIO()
    crop.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def crop(tmp_path: Path, crop_bytes: bytes) -> Path:
    path = tmp_path / "crop.png"
    path.write_bytes(crop_bytes)
    return path


@pytest.fixture(scope="module")
def reference(tmp_path_factory, crop_bytes: bytes) -> bytes:
    """The .lnc bytes of the crop written to a plain new file."""
    folder = tmp_path_factory.mktemp("reference")
    (folder / "crop.png").write_bytes(crop_bytes)
    assert main(["encode", str(folder / "crop.png"), "-o", str(folder / "crop.lnc")]) == 0
    data = (folder / "crop.lnc").read_bytes()
    assert data[:4] == MAGIC
    return data


def _one_error_line(capsys, code: int, *words: str) -> str:
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lnc: error: "), err
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def _no_temporaries(folder: Path) -> None:
    left = [p for p in os.listdir(folder) if p.endswith(".tmp") or p.startswith(".lnc-")]
    assert not left, left


# --- special files are written through, never replaced -------------------------------------------------------


def test_dev_null_is_written_through_and_stays_a_character_device(crop, capsys) -> None:
    code = main(["encode", str(crop), "-o", os.devnull])
    _one_error_line(capsys, code, "exists", "--force")  # an existing path still needs --force
    assert main(["encode", str(crop), "-o", os.devnull, "-f"]) == 0
    assert stat.S_ISCHR(os.lstat(os.devnull).st_mode)
    with atomic_open(os.devnull, force=True) as f:  # the helper itself, not only the CLI
        f.write(b"discarded")
    assert stat.S_ISCHR(os.lstat(os.devnull).st_mode)
    assert os.path.getsize(os.devnull) == 0


def test_symlink_output_writes_its_target_and_stays_a_link(crop, tmp_path, reference, capsys) -> None:
    target = tmp_path / "real.lnc"
    target.write_bytes(b"old bytes")
    link = tmp_path / "link.lnc"
    link.symlink_to("real.lnc")  # relative, as ln -s makes them

    _one_error_line(capsys, main(["encode", str(crop), "-o", str(link)]), "exists")
    assert target.read_bytes() == b"old bytes"
    assert main(["encode", str(crop), "-o", str(link), "-f"]) == 0
    assert link.is_symlink() and os.readlink(link) == "real.lnc"
    assert target.read_bytes() == reference

    # A dangling link counts as existing; with --force the file it names is created, the link kept.
    dangling = tmp_path / "dangling.lnc"
    dangling.symlink_to("made.lnc")
    _one_error_line(capsys, main(["encode", str(crop), "-o", str(dangling)]), "exists")
    assert not (tmp_path / "made.lnc").exists()
    assert main(["encode", str(crop), "-o", str(dangling), "-f"]) == 0
    assert dangling.is_symlink() and (tmp_path / "made.lnc").read_bytes() == reference
    _no_temporaries(tmp_path)


def test_fifo_with_a_reader_gets_the_bytes_and_without_one_is_an_error(crop, tmp_path, reference, capsys) -> None:
    fifo = tmp_path / "pipe.lnc"
    os.mkfifo(fifo)
    _one_error_line(capsys, main(["encode", str(crop), "-o", str(fifo)]), "exists")

    # Nobody reads: one error line at once, no hang, the FIFO stays a FIFO.
    line = _one_error_line(capsys, main(["encode", str(crop), "-o", str(fifo), "-f"]), "FIFO", "nothing is reading")
    assert str(fifo) in line and stat.S_ISFIFO(os.lstat(fifo).st_mode)

    # A reader: it gets exactly the bytes a plain file would. The test holds a second writer open
    # until lnc is done, so the reader sees EOF only after lnc's bytes, whatever the timing.
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    holder = os.open(fifo, os.O_WRONLY)
    os.set_blocking(reader, True)
    received = bytearray()

    def drain() -> None:
        while chunk := os.read(reader, 65536):
            received.extend(chunk)

    thread = threading.Thread(target=drain, daemon=True)
    thread.start()
    try:
        assert main(["encode", str(crop), "-o", str(fifo), "-f"]) == 0
    finally:
        os.close(holder)
        thread.join(timeout=60)
        os.close(reader)
    assert not thread.is_alive()
    assert bytes(received) == reference
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert sorted(os.listdir(tmp_path)) == ["crop.png", "pipe.lnc"]


def test_directory_output_is_one_error_line(crop, tmp_path, capsys) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    for force in ([], ["-f"]):
        _one_error_line(capsys, main(["encode", str(crop), "-o", str(folder), *force]), "is a directory")
    assert os.listdir(folder) == []
    with pytest.raises(LncError, match="is a directory"):
        atomic_write(folder, b"x", force=True)
    _no_temporaries(tmp_path)


# --- the output is never the input -----------------------------------------------------------------------------


def test_check_output_refuses_the_input_as_output_plain_symlink_and_hard_link(crop, tmp_path) -> None:
    before = crop.read_bytes()
    link = tmp_path / "link.png"
    link.symlink_to(crop)
    hard = tmp_path / "hard.png"
    os.link(crop, hard)
    for output in (crop, link, hard):
        for force in (False, True):
            with pytest.raises(LncError, match="it is the input") as info:
                check_output(str(output), force, inputs=(str(crop),))
            assert "\n" not in str(info.value)
    # The same input named through the link, and stdin / stdout / other files, are fine or refused as usual.
    with pytest.raises(LncError, match="it is the input"):
        check_output(str(crop), True, inputs=("-", str(link)))
    check_output(str(tmp_path / "new.lnc"), False, inputs=(str(crop),))
    check_output("-", True, inputs=(str(crop),))
    check_output(str(tmp_path / "other.png"), False, inputs=("-",))
    check_output(os.devnull, True, inputs=(os.devnull,))  # a device is written through, never replaced
    assert crop.read_bytes() == before and hard.read_bytes() == before


@pytest.mark.parametrize("how", ["plain", "symlink", "hard link"])
def test_cli_refuses_to_encode_or_decode_over_its_input(crop, tmp_path, reference, capsys, how) -> None:
    source = tmp_path / "in.lnc.png"  # decode writes .png names only, so the .lnc input is named .png
    source.write_bytes(reference)
    before_png, before_lnc = crop.read_bytes(), source.read_bytes()
    if how == "plain":
        outputs = (crop, source)
    else:
        make = Path.symlink_to if how == "symlink" else Path.hardlink_to
        outputs = (tmp_path / "a.png", tmp_path / "b.png")
        make(outputs[0], crop)
        make(outputs[1], source)
    code = main(["encode", str(crop), "-o", str(outputs[0]), "-f"])
    _one_error_line(capsys, code, "input")
    code = main(["decode", str(source), "-o", str(outputs[1]), "-f"])
    _one_error_line(capsys, code, "input")
    assert crop.read_bytes() == before_png and source.read_bytes() == before_lnc
    _no_temporaries(tmp_path)


# --- any legal file name works --------------------------------------------------------------------------------


def test_names_of_250_and_more_characters_work_for_encode_and_decode(crop, tmp_path, reference, capsys) -> None:
    limit = os.pathconf(tmp_path, "PC_NAME_MAX")
    encoded = tmp_path / ("e" * (limit - len(".lnc")) + ".lnc")
    decoded = tmp_path / ("d" * (limit - len(".png")) + ".png")
    assert len(encoded.name) == len(decoded.name) == limit >= 250
    assert main(["encode", str(crop), "-o", str(encoded)]) == 0, capsys.readouterr().err
    assert encoded.read_bytes() == reference
    assert main(["decode", str(encoded), "-o", str(decoded)]) == 0, capsys.readouterr().err
    with Image.open(decoded) as png:
        assert png.size == (64, 48)
    assert main(["encode", str(crop), "-o", str(encoded), "-f"]) == 0  # replacing one works too
    with open_reader(encoded.read_bytes()) as reader:
        assert reader.header.width == 64 and reader.header.height == 48
    _no_temporaries(tmp_path)


def test_failed_write_leaves_the_old_target_and_no_temporary(tmp_path) -> None:
    target = tmp_path / "kept.lnc"
    target.write_bytes(b"old")
    link = tmp_path / "link.lnc"
    link.symlink_to(target)
    with pytest.raises(RuntimeError):
        with atomic_open(link, force=True) as f:
            f.write(b"partial")
            assert [p for p in os.listdir(tmp_path) if p.startswith(".lnc-") and p.endswith(".tmp")]
            raise RuntimeError("fail mid-write")
    assert target.read_bytes() == b"old" and link.is_symlink()
    _no_temporaries(tmp_path)


# --- eval --json and plot -o follow the --force rule -----------------------------------------------------------


@pytest.fixture
def one_crop_dataset(tmp_path: Path, data_dir: Path, monkeypatch) -> Path:
    """A folder of one 176x176 crop (MS-SSIM needs 161 pixels a side); LPIPS is skipped."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    folder = tmp_path / "dataset"
    folder.mkdir()
    with Image.open(data_dir / "kodak" / "kodim01.png") as image:
        image.convert("RGB").crop((300, 200, 476, 376)).save(folder / "crop.png")
    return folder


def test_eval_json_existing_needs_force_checked_before_the_evaluation(one_crop_dataset, tmp_path, capsys, monkeypatch) -> None:
    out = tmp_path / "existing.json"
    out.write_text("keep me\n")
    argv = ["eval", "--codec", "jpeg", "--dataset", str(one_crop_dataset), "-q", "50", "--json", str(out)]

    def no_work(*args, **kwargs):
        raise AssertionError("evaluated before the output was checked")

    with monkeypatch.context() as patch:
        patch.setattr(eval_cli, "evaluate", no_work)
        _one_error_line(capsys, main(argv), "exists", "--force")
        assert out.read_text() == "keep me\n"
        missing = tmp_path / "no" / "r.json"
        _one_error_line(capsys, main(argv[:-1] + [str(missing)]), "no folder")

    assert main(argv + ["-f"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    written = json.loads(out.read_text())
    assert written["name"] == "JPEG" and written["results"]["quality"] == [50.0]
    assert out.read_text().endswith("}\n") and out.read_text().startswith('{\n  "name"')
    _no_temporaries(tmp_path)


def test_plot_output_existing_needs_force_checked_before_drawing(tmp_path, capsys, monkeypatch) -> None:
    out = tmp_path / "rd.png"
    out.write_bytes(b"keep me")
    argv = ["plot", str(KODAK_CURVES / "jpeg.json"), "-o", str(out)]

    def no_work(*args, **kwargs):
        raise AssertionError("drawn before the output was checked")

    with monkeypatch.context() as patch:
        patch.setattr(plot_cli, "figure", no_work)
        _one_error_line(capsys, main(argv), "exists", "--force")
    assert out.read_bytes() == b"keep me"

    assert main(argv + ["--force"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = tmp_path / "rd.svg"
    assert main(["plot", str(KODAK_CURVES / "jpeg.json"), "-o", str(svg)]) == 0
    assert b"<svg" in svg.read_bytes()[:1000]
    _one_error_line(capsys, main(["plot", str(KODAK_CURVES / "jpeg.json"), "-o", str(tmp_path / "rd.xyz")]),
                    "cannot write")
    assert not (tmp_path / "rd.xyz").exists()
    _no_temporaries(tmp_path)

