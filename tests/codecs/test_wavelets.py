"""The CDF 9/7 wavelet packet transform: the published filters, an exact inverse on real Kodak images and
a real stereo recording, where a constant's energy goes, the channel layout, and gradients."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lnc.codecs.layers.wavelets import WaveletPacket, cdf97_filters
from lnc.tools.io.audio import AudioReader

# JPEG 2000 Part 1 (ITU-T T.800, Table F.4), the 9/7 irreversible filters with DC gains 1 (analysis
# lowpass) and 2 (synthesis lowpass), from the centre tap outwards.
JPEG2000_ANALYSIS_LOW = (
    0.602949018236358, 0.266864118442872, -0.078223266528988, -0.016864118442875, 0.026748757410810
)
JPEG2000_SYNTHESIS_LOW = (1.115087052456994, 0.591271763114247, -0.057543526228500, -0.091271763114249)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def kodak_pair(kodim) -> torch.Tensor:
    """kodim01 and kodim23 (both 768×512 landscape), [2, 3, 512, 768] in [0, 1]."""
    rgb = np.stack([kodim(1), kodim(23)])
    return torch.from_numpy(rgb).permute(0, 3, 1, 2).float().div(255)


@pytest.fixture(scope="module")
def stereo_clip(data_dir) -> torch.Tensor:
    """jfk.flac (44.1 kHz stereo speech), as long as a multiple of 2^8 allows: [1, 2, T]."""
    with AudioReader(data_dir / "audio" / "jfk.flac") as reader:
        wave = np.concatenate(list(reader.chunks(1 << 20)), axis=1)
    assert wave.shape[0] == 2
    frames = wave.shape[1] // 256 * 256
    return torch.from_numpy(np.ascontiguousarray(wave[:, :frames])).unsqueeze(0)


def test_filters_are_the_published_cdf_9_7():
    f = cdf97_filters()
    assert (len(f["analysis_low"]), len(f["analysis_high"])) == (9, 7)
    assert (len(f["synthesis_low"]), len(f["synthesis_high"])) == (7, 9)
    for taps in f.values():
        assert all(math.isclose(taps[k], taps[-k], abs_tol=1e-15) for k in taps)  # symmetric about 0
    scale = math.sqrt(2)  # lnc's filters have DC gain √2 (PyWavelets' bior4.4); JPEG 2000's 1 and 2
    assert [f["analysis_low"][k] / scale for k in range(5)] == pytest.approx(JPEG2000_ANALYSIS_LOW, abs=1e-12)
    assert [f["synthesis_low"][k] * scale for k in range(4)] == pytest.approx(JPEG2000_SYNTHESIS_LOW, abs=1e-12)
    for k in range(-4, 5):  # the highpass filters are the other side's lowpass, modulated
        assert f["synthesis_high"][k] == pytest.approx((-1) ** k * f["analysis_low"][k], abs=1e-15)
        if abs(k) <= 3:
            assert f["analysis_high"][k] == pytest.approx((-1) ** k * f["synthesis_low"][k], abs=1e-15)
    # Biorthogonality: Σ_k h[k] g[k + 2n] = δ[n].
    for n in range(-3, 4):
        inner = sum(v * f["synthesis_low"].get(k + 2 * n, 0.0) for k, v in f["analysis_low"].items())
        assert inner == pytest.approx(float(n == 0), abs=1e-12)
    # Four vanishing moments: the analysis highpass annihilates cubics.
    for power in range(4):
        assert sum(v * k**power for k, v in f["analysis_high"].items()) == pytest.approx(0, abs=1e-12)


@pytest.mark.parametrize("levels", [1, 2, 3, 4])
def test_images_round_trip_exactly(kodak_pair, levels):
    packet = WaveletPacket(levels, dim=2)
    coefficients = packet(kodak_pair)
    assert coefficients.shape == (2, 3 * 4**levels, 512 // 2**levels, 768 // 2**levels)
    error = (packet.inverse(coefficients) - kodak_pair).abs().max().item()
    print(f"Kodak J={levels}: max |x - x̂| = {error:.2e}")
    assert error < 1e-5


def test_stereo_recording_round_trips_exactly(stereo_clip):
    for levels in range(1, 9):
        packet = WaveletPacket(levels, dim=1)
        coefficients = packet(stereo_clip)
        assert coefficients.shape == (1, 2 * 2**levels, stereo_clip.shape[-1] // 2**levels)
        error = (packet.inverse(coefficients) - stereo_clip).abs().max().item()
        print(f"jfk.flac J={levels}: max |x - x̂| = {error:.2e}")
        assert error < 1e-5, levels


@pytest.mark.parametrize(("dim", "levels"), [(1, 8), (2, 3)])
def test_a_constant_goes_to_the_lowpass_band_alone(dim, levels):
    x = torch.full((1, 2) + (2**levels * 4,) * dim, 0.7, dtype=torch.float64)
    coefficients = WaveletPacket(levels, dim)(x)
    bands = 2 ** (levels * dim)
    lowpass = coefficients[:, ::bands]  # channel 0 of each input channel's group
    assert torch.allclose(lowpass, torch.full_like(lowpass, 0.7 * math.sqrt(2) ** (levels * dim)))
    others = coefficients.reshape(1, 2, bands, -1)[:, :, 1:]
    assert others.abs().max() < 1e-12
    assert coefficients.pow(2).sum() == pytest.approx(x.pow(2).sum().item(), rel=1e-12)  # DC gain √2 per split


def test_band_layout_and_packet_recursion(kodak_pair):
    # A pattern alternating along the width only is the horizontal highpass band: channel c·4 + 1.
    x = torch.zeros(1, 1, 8, 8, dtype=torch.float64)
    x[..., 1::2] = 1.0
    x[..., ::2] = -1.0
    bands = WaveletPacket(1, dim=2)(x)[0].pow(2).flatten(1).sum(1)
    assert int(bands.argmax()) == 1 and bands[1] / bands.sum() > 1 - 1e-12
    # The full packet splits every band again: J levels are J one-level transforms in a row.
    one, three = WaveletPacket(1, dim=2), WaveletPacket(3, dim=2)
    crop = kodak_pair[:, :, :64, :64]
    torch.testing.assert_close(three(crop), one(one(one(crop))), rtol=0, atol=1e-5)


def test_gradients_flow_through_both_directions():
    packet = WaveletPacket(2, dim=1)
    x = torch.randn(1, 2, 16, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(packet, (x,))
    assert torch.autograd.gradcheck(packet.inverse, (packet(x).detach().requires_grad_(),))
    image = torch.rand(1, 3, 16, 16, requires_grad=True)
    WaveletPacket(2, dim=2)(image)[:, 5].sum().backward()
    assert image.grad is not None and image.grad.abs().sum() > 0


def test_sizes_must_be_multiples_of_2_to_the_levels():
    with pytest.raises(ValueError, match="multiples of 2"):
        WaveletPacket(3, dim=2)(torch.zeros(1, 3, 64, 60))
    with pytest.raises(ValueError, match=r"\[B, C, T\]"):
        WaveletPacket(3, dim=1)(torch.zeros(3, 64))
    with pytest.raises(ValueError, match="packet bands"):
        WaveletPacket(2, dim=1).inverse(torch.zeros(1, 6, 8))
    with pytest.raises(ValueError):
        WaveletPacket(2, dim=3)
