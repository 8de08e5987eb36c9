"""BD-rate / BD-PSNR: reference vectors, an independent integration, identities, and the CLI."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.interpolate import PchipInterpolator

from lnc.entropy.errors import InputError, LncError
from lnc.tools.eval import bdrate, results
from lnc.tools.cli import main
from lnc.tools.eval.datasets import anchors_root

# The example RD data (kbps, Y-PSNR of x265 presets) shipped with the FAU-LMS `bjontegaard` package
# (github.com/FAU-LMS/bjontegaard, example_usage.py), whose pchip reproduces the JCT-VC CTC Excel
# sheet to 10 decimals. Expected figures were computed with bjontegaard 1.3.0
# (bd_rate / bd_psnr, require_matching_points=False), independently of this code.
JCTVC_CASES = {
    "four points": (
        [9487.76, 4593.60, 2486.44, 1358.24], [40.037, 38.615, 36.845, 34.851],
        [9787.80, 4469.00, 2451.52, 1356.24], [40.121, 38.651, 36.970, 34.987],
        {"pchip": (-4.4174853506, 0.1196927854), "akima": (-4.4252451570, 0.1194092703),
         "cubic": (-4.4204627061, 0.1204094191)},
    ),
    "high rates": (
        [82472.76, 26875.24, 9487.76, 4593.6], [43.825, 41.404, 40.037, 38.615],
        [99896.96, 33952.04, 9787.8, 4469.0], [44.731, 41.875, 40.121, 38.651],
        {"pchip": (-4.4721820028, 0.0888748470), "akima": (-4.0857609404, 0.0899028492),
         "cubic": (-4.6994375485, 0.0954044029)},
    ),
    "six points": (
        [82472.76, 26875.24, 9487.76, 4593.6, 3600, 2900], [43.825, 41.404, 40.037, 38.615, 36.5, 35.1],
        [99896.96, 33952.04, 9787.8, 4469.0, 4040, 3300], [44.731, 41.875, 40.121, 38.651, 37, 36.5],
        {"pchip": (-2.9528024116, 0.0895359019), "akima": (-2.5269201870, 0.0508893050),
         "cubic": (-0.6392886206, 0.1035808516)},
    ),
}
KODAK = anchors_root() / "compressai" / "image" / "kodak"
PUBLISHED = {
    "WebP": KODAK / "webp.json",
    "mbt2018-mean": KODAK / "compressai-mbt2018-mean_mse_cuda.json",
    "MLIC++": anchors_root() / "mlic" / "kodak" / "mlicplusplus_mse.json",
}


@pytest.mark.parametrize("case", sorted(JCTVC_CASES))
@pytest.mark.parametrize("method", bdrate.METHODS)
def test_reference_vectors(case, method) -> None:
    ra, qa, rt, qt, expected = JCTVC_CASES[case]
    found = bdrate.compare(ra, qa, rt, qt, method)
    assert found.bd_rate == pytest.approx(expected[method][0], abs=1e-6)
    assert found.bd_quality == pytest.approx(expected[method][1], abs=1e-6)


def _quad_bd(ra, qa, rt, qt) -> tuple[float, float]:
    """pchip BD by numerical quadrature of scipy's interpolant: rate in log10, percent at the end."""
    ra, qa, rt, qt = map(np.asarray, (ra, qa, rt, qt))
    lo, hi = max(qa.min(), qt.min()), min(qa.max(), qt.max())
    fa, ft = (PchipInterpolator(np.sort(q), np.log10(r)[np.argsort(q)]) for r, q in ((ra, qa), (rt, qt)))
    mean_log = (quad(ft, lo, hi)[0] - quad(fa, lo, hi)[0]) / (hi - lo)
    la, lt = np.log10(ra), np.log10(rt)
    lo, hi = max(la.min(), lt.min()), min(la.max(), lt.max())
    ga, gt = (PchipInterpolator(np.sort(x), q[np.argsort(x)]) for x, q in ((la, qa), (lt, qt)))
    return (10**mean_log - 1) * 100, (quad(gt, lo, hi)[0] - quad(ga, lo, hi)[0]) / (hi - lo)


@pytest.mark.parametrize("test", sorted(PUBLISHED))
def test_published_kodak_curves_against_vtm_match_an_independent_pchip_integration(test) -> None:
    anchor = results.load(KODAK / "vtm.json").points("psnr-rgb")
    curve = results.load(PUBLISHED[test]).points("psnr-rgb")
    found = bdrate.compare(*anchor, *curve)
    expected_rate, expected_psnr = _quad_bd(*anchor, *curve)
    assert found.bd_rate == pytest.approx(expected_rate, abs=1e-4)
    assert found.bd_quality == pytest.approx(expected_psnr, abs=1e-4)


@pytest.mark.parametrize("method", bdrate.METHODS)
def test_a_curve_against_itself_is_zero(method) -> None:
    rate, psnr = results.load(KODAK / "webp.json").points("psnr-rgb")
    found = bdrate.compare(rate, psnr, rate, psnr, method)
    assert found.bd_rate == pytest.approx(0.0, abs=1e-12)
    assert found.bd_quality == pytest.approx(0.0, abs=1e-12)
    assert found.overlap == 1.0


@pytest.mark.parametrize("method", bdrate.METHODS)
def test_swapping_anchor_and_test_inverts_the_rate_ratio_and_negates_bd_psnr(method) -> None:
    # Both directions integrate over the same shared interval, so the mean log-rate gap only flips sign.
    a = results.load(KODAK / "jpeg.json").points("psnr-rgb")
    b = results.load(KODAK / "webp.json").points("psnr-rgb")
    ab, ba = bdrate.compare(*a, *b, method), bdrate.compare(*b, *a, method)
    assert (1 + ab.bd_rate / 100) * (1 + ba.bd_rate / 100) == pytest.approx(1.0, abs=1e-12)
    assert ab.bd_quality == pytest.approx(-ba.bd_quality, abs=1e-12)
    assert ab.bd_rate < -20  # WebP needs far fewer bits than JPEG


@pytest.mark.parametrize("method", bdrate.METHODS)
def test_uniform_rate_scaling_and_psnr_shift_are_recovered_exactly(method) -> None:
    rate, psnr = results.load(KODAK / "vtm.json").points("psnr-rgb")
    # Same PSNR at 80% of the rate: every interpolant shifts by log(0.8), so BD-rate is exactly -20%.
    assert bdrate.compare(rate, psnr, 0.8 * rate, psnr, method).bd_rate == pytest.approx(-20.0, abs=1e-9)
    # 0.5 dB more at the same rates: BD-PSNR is exactly +0.5 dB.
    assert bdrate.compare(rate, psnr, rate, psnr + 0.5, method).bd_quality == pytest.approx(0.5, abs=1e-9)


def test_disjoint_curves_are_an_error() -> None:
    with pytest.raises(LncError, match="do not overlap"):
        bdrate.compare([0.1, 0.2, 0.3], [26, 28, 30], [0.5, 0.7, 0.9], [33, 35, 37])


def test_curves_that_are_not_monotone_or_too_short_are_input_errors() -> None:
    with pytest.raises(InputError, match="increase strictly"):
        bdrate.compare([0.1, 0.2, 0.3], [26, 25, 30], [0.1, 0.2, 0.3], [27, 28, 31])
    with pytest.raises(InputError, match="at least 4"):
        bdrate.compare([0.1, 0.2, 0.3], [26, 28, 30], [0.1, 0.2, 0.3], [27, 28, 31], "cubic")


def test_cli_json_lists_each_test_curve(capsys) -> None:
    tests = [PUBLISHED[name] for name in ("WebP", "mbt2018-mean", "MLIC++")]
    assert main(["bdrate", str(KODAK / "vtm.json"), *map(str, tests), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["test"] for r in rows] == ["WebP", "mbt2018-mean", "mlicplusplus_mse"]
    anchor = results.load(KODAK / "vtm.json").points("psnr-rgb")
    for row, path in zip(rows, tests):
        found = bdrate.compare(*anchor, *results.load(path).points("psnr-rgb"))
        assert row["bd_rate"] == found.bd_rate and row["bd_psnr"] == found.bd_quality
    assert rows[0]["bd_rate"] > 50 and rows[2]["bd_rate"] < -10  # WebP far behind VTM, MLIC++ ahead


def test_cli_table_and_small_overlap_warning(tmp_path, capsys) -> None:
    rate, psnr = results.load(KODAK / "vtm.json").points("psnr-rgb")
    # VTM's points 5-7, 20% cheaper and 0.5 dB worse: they share only a sliver with points 1-5.
    narrow = tmp_path / "narrow.json"
    results.save(results.RDCurve("narrow", results={"bpp": list(0.8 * rate[4:7]), "psnr-rgb": list(psnr[4:7] - 0.5)}),
                 narrow)
    low = tmp_path / "low.json"
    results.save(results.RDCurve("low", results={"bpp": list(rate[:5]), "psnr-rgb": list(psnr[:5])}), low)
    assert main(["bdrate", str(low), str(narrow)]) == 0
    out, err = capsys.readouterr()
    assert "share only" in err and err.startswith("lnc: warning:")
    assert "BD-rate (%)" in out and "narrow" in out


def test_cli_reports_no_overlap_as_one_error_line(tmp_path, capsys) -> None:
    for name, bpp, psnr in (("a", [0.1, 0.2], [26.0, 28.0]), ("b", [0.5, 0.9], [33.0, 37.0])):
        results.save(results.RDCurve(name, results={"bpp": bpp, "psnr-rgb": psnr}), tmp_path / f"{name}.json")
    assert main(["bdrate", str(tmp_path / "a.json"), str(tmp_path / "b.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("lnc: error: b against a:") and "do not overlap" in err


def test_ms_ssim_db_is_derived_from_ms_ssim_when_a_file_lacks_it() -> None:
    vtm = results.load(KODAK / "vtm.json")
    bpp, db = vtm.points("ms-ssim-rgb-db")
    _, raw = vtm.points("ms-ssim-rgb")
    assert db == pytest.approx(-10 * np.log10(1 - raw))
    webp = results.load(PUBLISHED["WebP"]).points("ms-ssim-rgb-db")
    assert math.isfinite(bdrate.compare(bpp, db, *webp).bd_rate)


def test_a_distance_metric_compares_by_its_negative(tmp_path, capsys) -> None:
    """The measured Opus and AAC music curves (mel distance falls with rate): a copy at 20 % less rate
    is −20 % whether the metric rises (SI-SDR) or falls (mel distance), and BD-quality keeps the
    metric's own sign (a lower distance is a negative gap)."""
    anchor = Path(__file__).resolve().parents[2] / "docs" / "results" / "music-opus.json"
    opus = results.load(anchor)
    cheaper = results.RDCurve("cheaper", results={**opus.results, "bitrate": [0.8 * r for r in opus.results["bitrate"]]})
    results.save(cheaper, tmp_path / "cheaper.json")
    for metric in ("si-sdr", "mel-distance"):
        assert main(["bdrate", str(anchor), str(tmp_path / "cheaper.json"), "--metric", metric, "--json"]) == 0
        (row,) = json.loads(capsys.readouterr().out)
        assert row["bd_rate"] == pytest.approx(-20.0, abs=1e-6)
        assert (row["bd_psnr"] < 0) == (metric == "mel-distance")
