"""RD plots from the published Kodak curves: real PNGs, one line per curve, anchors dashed."""
from __future__ import annotations

import shutil

import numpy as np
from PIL import Image

from lnc.tools.cli import plot as plot_cmd
from lnc.tools.eval import plot, results
from lnc.tools.cli import main
from lnc.tools.eval.datasets import anchors_root

KODAK = anchors_root() / "compressai" / "image" / "kodak"


def test_figure_has_a_line_per_curve_with_names_axes_and_dashed_anchors() -> None:
    names = ("compressai-mbt2018-mean_mse_cuda.json", "vtm.json", "jpeg.json")
    curves = [results.load(KODAK / name) for name in names]
    figure = plot.rd_figure(curves, "psnr-rgb", "Kodak", anchors=[False, True, True])
    (axes,) = figure.axes
    lines = axes.get_lines()
    assert [line.get_label() for line in lines] == ["mbt2018-mean", "VTM (anchor)", "JPEG (anchor)"]
    assert [line.get_linestyle() for line in lines] == ["-", "--", "--"]
    assert all(line.get_marker() not in (None, "None", "") for line in lines)
    assert [t.get_text() for t in axes.get_legend().get_texts()] == ["mbt2018-mean", "VTM (anchor)", "JPEG (anchor)"]
    assert axes.get_xlabel() == "Rate (bpp)" and axes.get_ylabel() == "PSNR-RGB (dB)"
    bpp, psnr = curves[1].points("psnr-rgb")
    assert np.array_equal(lines[1].get_xdata(), bpp) and np.array_equal(lines[1].get_ydata(), psnr)


def test_cli_writes_a_png_and_draws_files_from_the_anchors_folder_dashed(tmp_path) -> None:
    mine = tmp_path / "mine.json"  # outside the anchors folder: drawn solid
    shutil.copy(KODAK / "webp.json", mine)
    out = tmp_path / "rd.png"
    argv = ["plot", str(mine), str(KODAK / "vtm.json"), "--anchor", str(KODAK / "jpeg.json"),
            "-o", str(out), "--metric", "ms-ssim-rgb-db", "--title", "Kodak MS-SSIM"]
    assert main(argv) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20_000
    with Image.open(out) as png:
        assert png.size == (840, 600)
        pixels = np.asarray(png.convert("L"))
    assert pixels.std() > 10  # drawn, not blank

    figure = plot_cmd.figure([mine, KODAK / "vtm.json"], [KODAK / "jpeg.json"], "ms-ssim-rgb-db")
    assert figure.axes[0].get_ylabel() == "MS-SSIM-RGB (dB)"
    assert [line.get_linestyle() for line in figure.axes[0].get_lines()] == ["-", "--", "--"]


def test_cli_without_curves_or_with_an_unknown_image_suffix_is_one_error_line(tmp_path, capsys) -> None:
    assert main(["plot", "-o", str(tmp_path / "rd.png")]) == 2
    assert capsys.readouterr().err.startswith("lnc: error: nothing to plot")
    assert main(["plot", str(KODAK / "vtm.json"), "-o", str(tmp_path / "rd.xyz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lnc: error: cannot write") and err.count("\n") == 1
