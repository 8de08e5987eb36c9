"""Rate points of a VQ codec by codebook reduction (Mao et al. 2024, arXiv:2307.08265).

A trained :class:`~lnc.codecs.image.vq.VQGAN` codes at one rate, ``log2 K`` bits per index at
most. Reduction gives it more: for each smaller size ``K'`` the trained codebook is clustered to
``K'`` entries (k-means weighted by how often the training data uses each entry), then refined on
the encoder's own latents of training crops (Lloyd iterations: with the encoder and decoder frozen,
this is where the paper's codebook-only fine-tuning converges, since the codebook loss
‖sg(z) − e‖² is the k-means objective). Each size then gets its priors: the factorized one from
the index counts (with the Krichevsky–Trofimov ½), the context network from the trained model's
(:func:`inherit_context`), then fine-tuned by Adam on the index maps.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from lnc.codecs.image.vq import VQGAN
from lnc.codecs.layers.vq import kmeans, nearest, nearest_rows
from lnc.entropy.errors import InputError
from lnc.train.data import center_window, random_window
from lnc.train.image_data import list_images, load_rgb

DEFAULT_DIRS = ("train/images/sunhays80_hr", "train/images/mcmaster18", "train/images/bsds500")
"""The image codecs' training folders (configs/image/*.yaml)."""


@torch.no_grad()
def training_latents(
    codec: VQGAN, dirs: Sequence[str], crop: int = 256, crops_per_image: int = 2, seed: int = 0,
    progress: Callable[[], None] | None = None,
) -> Tensor:
    """The encoder's latents ``[N, D, crop/f, crop/f]`` of random crops of the training images, as
    the quantiser compares them (normalised if it normalises)."""
    if crop % codec.downsampling:
        raise InputError(f"crop {crop} is not a multiple of the codec's {codec.downsampling}")
    generator = torch.Generator().manual_seed(seed)
    out = []
    for path in list_images(dirs):
        rgb = load_rgb(path, crop)
        windows = [random_window(rgb.shape[:2], (crop, crop), generator) for _ in range(crops_per_image - 1)]
        batch = [center_window(rgb.shape[:2], (crop, crop)), *windows]
        x = torch.stack([torch.from_numpy(np.array(rgb[w])).permute(2, 0, 1) for w in batch]).float() / 255
        out.append(codec.quantizer.prepare(codec.g_a(x)))
        if progress:
            progress()
    return torch.cat(out)


@torch.no_grad()
def reduced_codebook(
    codebook: Tensor, latents: Tensor, size: int, normalize: bool = False, iterations: int = 20
) -> Tensor:
    """A codebook of ``size`` entries: k-means of ``codebook`` weighted by its use on ``latents``,
    then Lloyd iterations on the latent vectors themselves (spherical, centres kept on the unit
    sphere, when the quantiser ``normalize`` s)."""
    vectors = latents.movedim(1, -1).reshape(-1, latents.size(1)).double()
    counts = torch.bincount(nearest(latents, codebook).flatten(), minlength=codebook.size(0)).double()
    centres = kmeans(codebook.double(), counts, size)
    for _ in range(iterations):
        if normalize:
            centres = F.normalize(centres, dim=1)
        assign = nearest_rows(vectors, centres)
        mass = torch.bincount(assign, minlength=size).double()
        sums = torch.zeros_like(centres).index_add_(0, assign, vectors)
        used = mass > 0
        centres[used] = sums[used] / mass[used, None]
    return centres.float()


@torch.no_grad()
def inherit_context(reduced: VQGAN, point: int, source: VQGAN) -> None:
    """Start rate point ``point``'s context network from ``source``'s trained one: its hidden
    layers read codebook vectors of the same space, so they carry over. Each source entry is sent
    to its nearest reduced entry; a reduced entry's output row is the mean of the rows sent to it,
    its bias the log-sum-exp of theirs (the merged entries' mass); an entry that nothing is sent
    to (Lloyd moved it) takes the row and bias of its nearest source entry."""
    target, trained = reduced.context_models[point], source.context_models[0]
    for layer, origin in list(zip(target, trained))[:-1]:
        layer.load_state_dict(origin.state_dict())
    full, entries = source.quantizer.entries(), reduced.quantizer.entries(point)
    mapping = nearest_rows(full, entries)
    weight, source_bias = trained[-1].weight.flatten(1), trained[-1].bias
    size = entries.size(0)
    counts = torch.bincount(mapping, minlength=size)
    rows = torch.zeros(size, weight.size(1)).index_add_(0, mapping, weight) / counts.clamp_min(1)[:, None]
    bias = torch.full((size,), -torch.inf).scatter_reduce(0, mapping, source_bias, "amax")
    merged = torch.zeros(size).index_add_(0, mapping, (source_bias - bias[mapping]).exp())
    bias = bias + merged.log()
    orphans = torch.nonzero(counts == 0).flatten()
    if len(orphans):
        closest = nearest_rows(entries[orphans], full)
        rows[orphans], bias[orphans] = weight[closest], source_bias[closest]
    target[-1].weight.copy_(rows.reshape(target[-1].weight.shape))
    target[-1].bias.copy_(bias)


def train_priors(codec: VQGAN, point: int, indices: Tensor, steps: int = 300, batch: int = 16, lr: float = 3e-4) -> float:
    """Fit rate point ``point``'s priors to index maps ``[N, h, w]``: the factorized one from the
    counts, the context network by Adam on the four-pass likelihoods; returns the context prior's
    final bits per index on the first ``batch`` maps."""
    size = codec.quantizer.sizes[point]
    counts = torch.bincount(indices.flatten(), minlength=size).double() + 0.5
    with torch.no_grad():
        codec.index_models[point].logits.copy_(torch.log(counts / counts.sum()).float()[None])
    context = codec.context_models[point]
    optimizer = torch.optim.Adam(context.parameters(), lr=lr)
    latent = codec.index_codec(point, "context")
    generator = torch.Generator().manual_seed(point)
    context.train()
    for step in range(steps):
        picked = torch.randint(0, len(indices), (min(batch, len(indices)),), generator=generator)
        likelihoods = latent(indices[picked], None)[1]["indices"]
        loss = -torch.log2(likelihoods).mean()
        optimizer.zero_grad()
        loss.backward()
        for group in optimizer.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
        optimizer.step()
    context.eval()
    with torch.no_grad():
        return float(-torch.log2(latent(indices[:batch], None)[1]["indices"]).mean())


def reduce_codebook(
    codec: VQGAN, sizes: Sequence[int], dirs: Sequence[str] = DEFAULT_DIRS, crop: int = 256,
    crops_per_image: int = 2, prior_steps: int = 300, log: Callable[[str], None] = print,
) -> tuple[VQGAN, dict[str, Any]]:
    """A copy of ``codec`` with one reduced codebook (and its priors) per entry of ``sizes``; and a
    record of what was done, for the weights' metadata."""
    if codec.rate_points:
        raise InputError(f"{codec.name} already has reduced codebooks {codec.quantizer.sizes}")
    sizes = sorted(int(k) for k in sizes)
    config = {**codec.config, "codebook_sizes": sizes}
    try:
        reduced = VQGAN(**config)
    except ValueError as exc:
        raise InputError(f"cannot reduce to sizes {sizes}: {exc}") from None
    reduced.load_state_dict({k: v for k, v in codec.state_dict().items()
                             if k.startswith(("g_a.", "g_s."))}, strict=False)
    reduced.eval()
    latents = training_latents(codec.eval(), dirs, crop, crops_per_image)
    log(f"{len(latents)} training crops of {crop}², {latents[:, 0].numel()} latent vectors")
    full = codec.quantizer.entries().detach()
    record: dict[str, Any] = {"sizes": sizes, "crops": len(latents), "crop": crop, "prior_steps": prior_steps, "bits": {}}
    for point, size in enumerate(sizes):
        with torch.no_grad():
            reduced.quantizer.codebooks[point].copy_(reduced_codebook(full, latents, size, codec.quantizer.normalize))
        indices = nearest(latents, reduced.quantizer.entries(point))
        inherit_context(reduced, point, codec)
        bits = train_priors(reduced, point, indices, prior_steps)
        record["bits"][str(size)] = round(bits, 4)
        log(f"K' = {size}: {int(indices.unique().numel())} entries used, context prior {bits:.3f} bits/index "
            f"(uniform {math.log2(size):.3f})")
    reduced.update(force=True)
    return reduced.eval(), record
