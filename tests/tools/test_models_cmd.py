"""``lnc models``: every architecture with its modality, every shipped model with what its card says."""
from __future__ import annotations

import json

from lnc.codecs.registry import ARCHITECTURES, WEIGHTS_DIR
from lnc.tools.cli import main


def test_models_json_names_modality_architecture_and_training(capsys):
    assert main(["models", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    modalities = {a["name"]: a["modality"] for a in listing["architectures"]}
    assert modalities == {name: cls.modality for name, cls in ARCHITECTURES.items()}
    assert modalities["factorized-1d"] == "audio" and modalities["he2021-checkerboard"] == "image"
    shipped = {m["name"]: m for m in listing["models"]}
    assert set(shipped) == {p.stem for p in WEIGHTS_DIR.glob("*.safetensors")}
    for name, model in shipped.items():
        assert model["modality"] == modalities[model["architecture"]]
        card = (WEIGHTS_DIR / f"{name}.md").read_text()
        assert model["trained"] and model["trained"] in card  # the card's own words
    assert shipped["walloc-stereo-vr"]["modality"] == "audio"
    assert sum(m["default"] for m in shipped.values()) == 1
