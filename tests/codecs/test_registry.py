"""Weights files: every malformed one is refused with one ``lnc: error:`` line, before anything big
is built; bitstreams can only name shipped models. Real files, written by ``save_codec`` and then
rewritten with safetensors."""
from __future__ import annotations

import functools
import io
import json
import shutil
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from lnc.codecs import build_codec, save_codec
from lnc.codecs import registry
from lnc.codecs import weights_check
from lnc.codecs.weights_check import MAX_TABLE_ENTRIES
from lnc.codecs.registry import (
    ARCHITECTURES,
    WEIGHTS_DIR,
    load_codec_file,
    load_shipped,
    resolve_model,
    shipped_models,
    weights_hash,
)
from lnc.entropy.chunked import ChunkWriter, Item, Layout, open_reader
from lnc.entropy.container import Header, Modality
from lnc.entropy.errors import LncError
from lnc.tools.cli import main

ARCH = "mbt2018-mean"
CONFIG = {"rate_points": 2, "N": 16, "M": 16}


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> tuple[Path, dict[str, torch.Tensor], dict[str, str]]:
    """A small real weights file (tables built) with its tensors and metadata."""
    torch.manual_seed(0)
    codec = build_codec(ARCH, **CONFIG)
    codec.update()
    path = tmp_path_factory.mktemp("weights") / "small.safetensors"
    save_codec(codec, path, {"lnc.train.steps": "0"})
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata()
    return path, load_file(str(path)), metadata


@pytest.fixture(scope="module")
def kodak_png(data_dir: Path) -> Path:
    return data_dir / "kodak" / "kodim01.png"


def _write(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> Path:
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata=metadata)
    return path


def _with_config(metadata: dict[str, str], text: str | None) -> dict[str, str]:
    out = {k: v for k, v in metadata.items() if k != "lnc.config"}
    if text is not None:
        out["lnc.config"] = text
    return out


def _assert_refused(capsys, tmp_path: Path, kodak_png: Path, weights: Path, *words: str) -> str:
    """``lnc encode -m weights`` ends in exit 2, one ``lnc: error:`` line naming the file, no output."""
    out = tmp_path / "out.lnc"
    code = main(["encode", str(kodak_png), "-o", str(out), "-m", str(weights)])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("lnc: error: "), err
    assert str(weights) in lines[0], err
    for word in words:
        assert word in lines[0], err
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.suffix != ".safetensors"] == []
    return lines[0]


# -- metadata ------------------------------------------------------------------------------------

BAD_CONFIGS = {
    "missing": (None, "no lnc.config"),
    "not-json": ('{"N": 16, "M": ', "not valid JSON"),
    "list": ("[16, 16]", "JSON object"),
    "string": ('"N=16"', "JSON object"),
    "unknown-key": (json.dumps({**CONFIG, "K": 3}), "'K'"),
    "str-int": (json.dumps({**CONFIG, "N": "16"}), "'N' must be an integer"),
    "float-int": (json.dumps({**CONFIG, "N": 16.5}), "'N' must be an integer"),
    "bool-int": (json.dumps({**CONFIG, "M": True}), "'M' must be an integer"),
    "int-bool": (json.dumps({**CONFIG, "mixed_quantization": 1}), "'mixed_quantization' must be a boolean"),
    "null": (json.dumps({**CONFIG, "N": None}), "'N' must be an integer"),
    "negative": (json.dumps({**CONFIG, "N": -16}), "outside 0..65535"),
    "absurd": (json.dumps({**CONFIG, "M": 10**9}), "outside 0..65535"),
    "other-size": (json.dumps({**CONFIG, "N": 32}), "shape"),
}


@pytest.mark.parametrize("value", [[8, "x"], [8, -1], [8, True], list(range(65)), "8,8"])
def test_integer_lists_in_a_config_are_checked(value):
    with pytest.raises(LncError, match="'channels' must be a list of at most 64 integers"):
        weights_check.check_config("w.safetensors", "vqgan", ARCHITECTURES["vqgan"], json.dumps({"channels": value}))


@pytest.mark.parametrize("case", BAD_CONFIGS)
def test_bad_config_is_one_line(case, good, tmp_path, kodak_png, capsys):
    path, tensors, metadata = good
    text, words = BAD_CONFIGS[case]
    bad = _write(tmp_path / f"{case}.safetensors", tensors, _with_config(metadata, text))
    _assert_refused(capsys, tmp_path, kodak_png, bad, words)


@pytest.mark.parametrize(
    "change, words",
    [
        ({"lnc.architecture": None}, "without lnc metadata"),
        ({"lnc.architecture": "no-such-codec"}, "unknown architecture 'no-such-codec'"),
        ({"lnc.architecture": "bmshj2018-factorized"}, "does not have"),
    ],
)
def test_bad_architecture_is_one_line(change, words, good, tmp_path, kodak_png, capsys):
    path, tensors, metadata = good
    metadata = {**metadata, **change}
    metadata = {k: v for k, v in metadata.items() if v is not None}
    bad = _write(tmp_path / "arch.safetensors", tensors, metadata)
    _assert_refused(capsys, tmp_path, kodak_png, bad, words)


def test_not_a_safetensors_file(good, tmp_path, kodak_png, capsys):
    bad = tmp_path / "garbage.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all" + bytes(64))
    _assert_refused(capsys, tmp_path, kodak_png, bad, "not a readable lnc weights file")
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good[0].read_bytes()[:1000])
    _assert_refused(capsys, tmp_path, kodak_png, truncated, "not a readable lnc weights file")


# -- tensors -------------------------------------------------------------------------------------


def _drop(name):
    return lambda t: {k: v for k, v in t.items() if k != name}


def _set(name, value):
    return lambda t: {**t, name: value(t[name]) if callable(value) else value}


def _cdf_with(change):
    def edit(cdf):
        cdf = cdf.clone()
        change(cdf)
        return cdf

    return edit


BAD_TENSORS = {
    "shape": (
        _set("g_a.0.weight", torch.zeros(16, 3, 3, 3, dtype=torch.float16)),
        "g_a.0.weight has shape [16, 3, 3, 3]",
    ),
    "missing": (_drop("g_s.0.bias"), "missing 1 of the 95 tensors of mbt2018-mean"),
    "missing-table": (_drop("gaussian_conditional._quantized_cdf"), "gaussian_conditional._quantized_cdf"),
    "unexpected": (_set("extra.weight", torch.zeros(3)), "does not have: extra.weight"),
    "int-weight": (_set("g_a.0.weight", lambda v: v.to(torch.int32)), "expected float values"),
    "bool-weight": (_set("h_s.0.bias", lambda v: v > 0), "expected float values"),
    "float-table": (_set("entropy_bottleneck._quantized_cdf", lambda v: v.float()), "expected int values"),
    "3d-table": (_set("gaussian_conditional._quantized_cdf", lambda v: v[None]), "implausible"),
    "huge-table": (
        _set("gaussian_conditional._quantized_cdf", torch.zeros(1, MAX_TABLE_ENTRIES + 1, dtype=torch.int32)),
        "implausible",
    ),
    "table-lengths": (_set("entropy_bottleneck._cdf_length", lambda v: v[:-1]), "inconsistent CDF tables"),
    "cdf-start": (
        _set("entropy_bottleneck._quantized_cdf", _cdf_with(lambda c: c[0].__setitem__(0, 7))),
        "invalid CDF tables",
    ),
    "cdf-length": (
        _set("gaussian_conditional._cdf_length", lambda v: v + 10_000),
        "invalid CDF tables",
    ),
    "no-tables": (
        lambda t: {
            **t,
            **{
                f"gaussian_conditional.{n}": torch.zeros(0, dtype=torch.int32)
                for n in ("_quantized_cdf", "_cdf_length", "_offset")
            },
        },
        "no CDF tables",
    ),
    "scale-table-length": (_set("gaussian_conditional.scale_table", lambda v: v[:-1]), "scale table of shape"),
    "scale-table-order": (
        _set("gaussian_conditional.scale_table", lambda v: v.flip(0)),
        "not positive and increasing",
    ),
    "nan": (_set("g_s.6.weight", lambda v: torch.full_like(v, float("nan"))), "non-finite"),
}


@pytest.mark.parametrize("case", BAD_TENSORS)
def test_bad_tensors_are_one_line(case, good, tmp_path, kodak_png, capsys):
    path, tensors, metadata = good
    edit, words = BAD_TENSORS[case]
    bad = _write(tmp_path / f"{case}.safetensors", edit(tensors), metadata)
    _assert_refused(capsys, tmp_path, kodak_png, bad, words)


def test_tiny_file_with_huge_config_fails_without_allocating(tmp_path, kodak_png, capsys, monkeypatch):
    """188 bytes that say N=M=1000 (2.2 GB once built) are refused from a meta-device skeleton."""
    bad = _write(
        tmp_path / "tiny.safetensors",
        {"x": torch.zeros(1)},
        {"lnc.architecture": ARCH, "lnc.config": json.dumps({"rate_points": 8, "N": 1000, "M": 1000})},
    )
    assert bad.stat().st_size < 200
    cls = ARCHITECTURES[ARCH]
    built: list[str] = []
    init = cls.__init__

    @functools.wraps(init)
    def spy(self, *args, **kwargs):
        init(self, *args, **kwargs)
        built.append(next(self.parameters()).device.type)

    monkeypatch.setattr(cls, "__init__", spy)
    tracemalloc.start()
    try:
        with pytest.raises(LncError, match="missing 95 of the 95 tensors"):
            load_codec_file(bad)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50e6
    assert built == ["meta"]  # a skeleton, never the real codec
    _assert_refused(capsys, tmp_path, kodak_png, bad, "missing 95 of the 95")


def test_tiny_file_with_huge_config_keeps_the_process_small(tmp_path):
    """The same in a fresh process, where the resident set is the real measure (torch's CPU
    allocations are invisible to tracemalloc)."""
    script = textwrap.dedent(
        """
        import json, resource, sys, torch
        from safetensors.torch import save_file
        from lnc.codecs.registry import load_codec_file
        from lnc.entropy.errors import LncError
        import lnc.codecs

        config = {"rate_points": 8, "N": 1000, "M": 1000}
        metadata = {"lnc.architecture": "mbt2018-mean", "lnc.config": json.dumps(config)}
        save_file({"x": torch.zeros(1)}, sys.argv[1], metadata=metadata)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            load_codec_file(sys.argv[1])
        except LncError:
            pass
        else:
            raise SystemExit("loaded")
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
        """
    )
    args = [sys.executable, "-c", script, str(tmp_path / "tiny.safetensors")]
    run = subprocess.run(args, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    grown_kib = int(run.stdout.strip())
    assert grown_kib < 500 * 1024, f"resident set grew by {grown_kib / 1024:.0f} MiB"  # it was 2.2 GB


# -- good files ----------------------------------------------------------------------------------


def test_good_file_loads_unchanged(good):
    path, tensors, metadata = good
    codec = load_codec_file(path)
    assert codec.file_hash == weights_hash(path.read_bytes())
    assert codec.metadata == metadata and codec.name == "small" and codec.config == CONFIG
    state = codec.state_dict()
    assert state.keys() == tensors.keys()
    for key, value in tensors.items():
        expected = value.float() if value.is_floating_point() else value
        assert torch.equal(state[key], expected), key
    assert not codec.training


SMALL_CONFIGS = {
    "vqgan": {"stem": 8, "channels": [8, 8], "dim": 4, "num_codes": 16, "codebook_sizes": [4, 16]},
    "rvq-speech": {"N": 8, "dim": 4, "num_codes": 16, "stage_counts": [1, 2], "context_hidden": 4},
}
"""Small instances of the architectures not sized by N and M."""


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_every_architecture_round_trips_through_the_checks(architecture, tmp_path):
    codec = build_codec(architecture, **SMALL_CONFIGS.get(architecture, {"N": 8, "M": 8, "rate_points": 2}))
    digest = save_codec(codec, tmp_path / "w.safetensors", {"lnc.name": "w"})
    loaded = load_codec_file(tmp_path / "w.safetensors")
    assert type(loaded) is type(codec) and loaded.weights_hash == digest and loaded.config == codec.config


@pytest.mark.parametrize("model", shipped_models(), ids=lambda m: m.name)
def test_shipped_models_load_also_as_outside_files(model, tmp_path):
    """Shipped files skip the meta skeleton; a copy outside the package goes through it."""
    shipped = load_shipped(model.name)
    copy = Path(shutil.copy(model.path, tmp_path / model.path.name))
    outside = load_codec_file(copy)
    assert shipped.weights_hash == outside.weights_hash == weights_hash(model.path.read_bytes())
    assert shipped.name == outside.name == model.name
    a, b = shipped.state_dict(), outside.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# -- model names ---------------------------------------------------------------------------------


def test_resolve_model_names_and_paths(tmp_path):
    assert resolve_model(None) == WEIGHTS_DIR / f"{registry.DEFAULT_MODEL}.safetensors"
    name = shipped_models()[0].name
    assert resolve_model(name, allow_path=False) == WEIGHTS_DIR / f"{name}.safetensors"
    assert resolve_model(str(tmp_path / "x.safetensors")) == tmp_path / "x.safetensors"
    for bad in ("../weights/" + name, f"{name}.safetensors", str(WEIGHTS_DIR / f"{name}.safetensors"), "", ".."):
        with pytest.raises(LncError, match="not a shipped model"):
            resolve_model(bad, allow_path=False)
        with pytest.raises(LncError, match="not a shipped model; give its weights with -m"):
            load_shipped(bad)
    with pytest.raises(LncError, match="unknown model"):
        resolve_model("no-such-model")


def _forged(tmp_path: Path, codec_name: str) -> Path:
    """A well-formed v2 image file whose header names ``codec_name``."""
    header = Header(Modality.IMAGE, codec_name, bytes(8), 1.0, height=16, width=16, channels=3)
    buffer = io.BytesIO()
    writer = ChunkWriter(buffer, header, Layout(("z", "y"), 1024))
    writer.write_chunk([Item({"z": b"\x00", "y": b"\x00"})])
    writer.close()
    path = tmp_path / "forged.lnc"
    path.write_bytes(buffer.getvalue())
    return path


@pytest.mark.parametrize(
    "codec_name", ["../weights/x", "./evil.safetensors", "/etc/passwd", "evil.safetensors", "nope"]
)
def test_bitstream_cannot_name_a_weights_file(codec_name, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lnc = _forged(tmp_path, codec_name)
    with open_reader(str(lnc)) as reader:
        assert reader.header.codec == codec_name
    code = main(["decode", str(lnc), "-o", str(tmp_path / "out.png")])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert lines[0] == (
        f"lnc: error: the bitstream names model {codec_name!r}, which is not a shipped model; "
        "give its weights with -m"
    )
    assert not (tmp_path / "out.png").exists()


def test_weights_named_like_a_path_decode_only_with_m(good, tmp_path, kodak_png, capsys, monkeypatch):
    """Weights whose name is a path write bitstreams naming that path; decoding them takes -m."""
    monkeypatch.chdir(tmp_path)
    path, tensors, metadata = good
    evil = _write(tmp_path / "evil.safetensors", tensors, {**metadata, "lnc.name": "./evil.safetensors"})
    lnc = tmp_path / "k01.lnc"
    assert main(["encode", str(kodak_png), "-o", str(lnc), "-m", str(evil)]) == 0
    with open_reader(str(lnc)) as reader:
        assert reader.header.codec == "./evil.safetensors"
    capsys.readouterr()
    code = main(["decode", str(lnc), "-o", str(tmp_path / "a.png")])
    err = capsys.readouterr().err
    assert code == 2 and err.strip().splitlines() == [
        "lnc: error: the bitstream names model './evil.safetensors', which is not a shipped model; "
        "give its weights with -m"
    ], err
    assert not (tmp_path / "a.png").exists()
    assert main(["decode", str(lnc), "-m", str(evil), "-o", str(tmp_path / "b.png")]) == 0, capsys.readouterr().err
    assert (tmp_path / "b.png").stat().st_size > 0
