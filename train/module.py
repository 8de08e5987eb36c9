"""The rate–distortion LightningModule: one training recipe for every lnc codec, of any modality.

Per step: sample each item's rate point (variable-rate codecs, Cui et al. 2021, arXiv:2003.02012)
and its λ, minimise λ·D + R with Adam on the transforms and entropy models, then take one Adam step
of the auxiliary quantile loss on the entropy bottlenecks' ``quantiles`` (CompressAI's recipe).
Optimisation is manual because the two objectives have two optimisers; Lightning still handles
devices, DDP, mixed precision, checkpoints and logging.
"""
from __future__ import annotations

import importlib
import json
import math
import os
from typing import Any, Literal

import torch
from pytorch_lightning import LightningModule
from torch import Tensor
from torch.optim.lr_scheduler import LambdaLR

from lnc.codecs.base import Codec
from lnc.codecs.layers.gain import COMPRESSAI_MSE_LAMBDAS, regrid_log_gains
from lnc.codecs.layers.vq import usage
from lnc.entropy.errors import InputError
from lnc.train.discriminator import discriminator_loss, generator_loss
from lnc.train.losses import RateDistortionLoss

Schedule = Literal["constant", "multistep", "cosine"]


def codec_spec(codec: Codec) -> dict[str, Any]:
    """``{"class_path", "init_args"}`` that rebuilds ``codec``'s architecture (stored in checkpoints)."""
    cls = type(codec)
    return {"class_path": f"{cls.__module__}.{cls.__qualname__}", "init_args": dict(codec.config)}


def lr_factor(
    step: int, schedule: Schedule, warmup_steps: int, milestones: list[int], gamma: float, total_steps: int
) -> float:
    """Learning-rate multiplier at ``step``: linear warm-up, then constant, ×``gamma`` at each
    milestone, or a cosine decay to ``gamma`` at ``total_steps`` (Loshchilov & Hutter 2016, arXiv:1608.03983)."""
    warm = min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0
    if schedule == "multistep":
        return warm * gamma ** sum(step >= m for m in milestones)
    if schedule == "cosine":
        progress = min(1.0, max(0.0, (step - warmup_steps) / max(1, total_steps - warmup_steps)))
        return warm * (gamma + (1.0 - gamma) * 0.5 * (1.0 + math.cos(math.pi * progress)))
    return warm


def load_initial_weights(codec: Codec, name: str, lmbdas: list[float] | None = None) -> dict[str, Any]:
    """Copy the weights of a saved codec (shipped name or path) into ``codec``; returns their
    provenance (name, weights hash, training steps, what was grown) for the checkpoint.

    The source has the codec's architecture and config, or is a smaller relative of the same
    config: an architecture the codec ``grows_from`` (its added layers keep their initialisation,
    e.g. a context model on a trained hyperprior). A variable-rate source may also have other rate
    points than the codec: given the codec's ``lmbdas``, its gain units are carried from the λ it was
    trained at (its recorded training config) to these (:func:`~lnc.codecs.layers.gain.regrid_log_gains`).
    """
    from lnc.codecs.registry import load

    try:
        source = load(name)
    except FileNotFoundError:
        raise InputError(f"init_weights: {name}: no such file") from None
    added = codec.grows_from.get(source.architecture, ())
    # Options that leave the weights as they are may differ; a grown codec may add options of its own.
    ignored = (*codec.numeric_options, *(codec.grown_options if added else ()))
    theirs = {k: v for k, v in source.config.items() if k not in ignored}
    mine = {k: v for k, v in codec.config.items() if k not in codec.numeric_options}
    state = source.state_dict()
    if lmbdas and source.rate_points and codec.rate_points and lmbdas != _trained_lmbdas(source):
        state = _regrid_rate_points(state, source, lmbdas)
        theirs["rate_points"] = codec.rate_points
    fits = all(mine.get(k) == v for k, v in theirs.items()) if added else theirs == mine
    if (source.architecture != codec.architecture and not added) or not fits:
        raise InputError(
            f"init_weights: {name} is {source.architecture} {source.config}, "
            f"the codec to train is {codec.architecture} {codec.config}"
        )
    # Layers the codec adds in place of the source's (a new synthesis) keep their initialisation.
    state = codec.adopt_state(source.architecture, state)
    state = {key: value for key, value in state.items() if not (added and key.startswith(added))}
    missing, unexpected = codec.load_state_dict(state, strict=False)
    if unexpected or any(not key.startswith(added) for key in missing):
        raise InputError(f"init_weights: {name} does not fit {codec.architecture}: "
                         f"missing {missing[:3]}, unexpected {unexpected[:3]}")
    provenance: dict[str, Any] = {
        "weights": str(name),
        "hash": source.weights_hash.hex(),
        "steps": int(source.metadata.get("lnc.train.steps", 0)),
    }
    if added:
        provenance["grown_from"] = source.architecture
    return provenance


def _trained_lmbdas(source: Codec) -> list[float] | None:
    """The λ of each rate point that ``source`` was trained at, from its export's metadata."""
    config = json.loads(source.metadata.get("lnc.train.config", "{}"))
    lmbdas = config.get("lmbdas")
    if lmbdas is None and source.rate_points == len(COMPRESSAI_MSE_LAMBDAS) and config.get("distortion", "mse") == "mse":
        lmbdas = list(COMPRESSAI_MSE_LAMBDAS)
    return lmbdas


def _regrid_rate_points(state: dict[str, Tensor], source: Codec, lmbdas: list[float]) -> dict[str, Tensor]:
    """``state`` with every gain table carried from the source's trained λ to ``lmbdas``."""
    trained = _trained_lmbdas(source)
    if trained is None or len(trained) != source.rate_points:
        raise InputError("init_weights: the source records no λ for its rate points; give its own lmbdas")
    return {
        key: regrid_log_gains(value, trained, lmbdas) if key.endswith(("log_gain", "log_inverse_gain")) else value
        for key, value in state.items()
    }


class RDModule(LightningModule):
    """Train ``codec`` on λ·D + R.

    Args:
        codec: the codec to train (in configs a ``class_path``/``init_args`` sub-config).
        distortion: ``"mse"``, ``"ms-ssim"``, ``"mel"`` or a mix such as ``{"mse": w1, "ms-ssim": w2}``
            (see :class:`~lnc.train.losses.RateDistortionLoss`).
        lmbda: λ of a fixed-rate codec.
        lmbdas: λ of each rate point of a variable-rate codec (default: CompressAI's MSE λ of
            qualities 1..8); every item of a batch draws its rate point uniformly.
        lr: Adam learning rate of the rate–distortion objective.
        aux_lr: Adam learning rate of the entropy bottlenecks' quantiles.
        lr_schedule: ``constant``, ``multistep`` (×``gamma`` at each of ``milestones``) or ``cosine``
            (to ``gamma``·lr at the last step); all after ``warmup_steps`` of linear warm-up.
        clip_max_norm: clip the global gradient norm of the main parameters (None: no clipping).
        val_qualities: rate points validated (default: all of a variable-rate codec).
        lr_multipliers: learning-rate factors by parameter-name prefix, e.g. ``{"context_": 10}``
            for layers added to trained weights, which start from nothing while the rest fine-tunes.
        init_weights: start from these weights (a shipped model's name or a ``.safetensors`` path
            written by ``lnc export``) instead of a random initialisation, to fine-tune or grow
            (:func:`load_initial_weights`). Exports count their steps in.
        mel_sample_rate: the audio data's sample rate, for a mel distortion (the data module's
            ``sample_rate`` set to the same resamples every file to it).
        loss_weights: weights of the losses a codec adds to its output (``output["losses"]``, e.g. a
            vector quantiser's codebook and commitment loss ``vq``); 1 for any not named.
        discriminator: an adversarial critic of the decoded signal (e.g.
            :class:`~lnc.train.discriminator.PatchDiscriminator`), trained with hinge losses by its
            own Adam; None (default) trains without one.
        adversarial_weight: weight of the codec's adversarial loss.
        adversarial_start: the step from which the discriminator trains and the codec sees it
            (VQGAN starts it once reconstructions are reasonable).
        discriminator_lr: Adam learning rate of the discriminator.
    """

    def __init__(
        self,
        codec: Codec,
        distortion: str | dict[str, float] = "mse",
        lmbda: float = 0.0130,
        lmbdas: list[float] | None = None,
        lr: float = 1e-4,
        aux_lr: float = 1e-3,
        lr_schedule: Schedule = "constant",
        warmup_steps: int = 0,
        milestones: list[int] | None = None,
        gamma: float = 0.1,
        clip_max_norm: float | None = 1.0,
        val_qualities: list[float] | None = None,
        init_weights: str | None = None,
        lr_multipliers: dict[str, float] | None = None,
        mel_sample_rate: int | None = None,
        loss_weights: dict[str, float] | None = None,
        discriminator: torch.nn.Module | None = None,
        adversarial_weight: float = 0.1,
        adversarial_start: int = 0,
        discriminator_lr: float = 1e-4,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["codec", "discriminator"])
        self.save_hyperparameters({"codec": codec_spec(codec)})
        self.automatic_optimization = False
        self.codec = codec
        self.discriminator = discriminator
        if init_weights is not None:
            self.save_hyperparameters({"init_from": load_initial_weights(codec, init_weights, lmbdas)})
        self.criterion = RateDistortionLoss(distortion, codec.modality, mel_sample_rate)
        points = codec.rate_points
        if points:
            if lmbdas is None:
                if distortion != "mse" or points != len(COMPRESSAI_MSE_LAMBDAS):
                    raise InputError(f"give lmbdas: one λ for each of the codec's {points} rate points")
                lmbdas = list(COMPRESSAI_MSE_LAMBDAS)
            if len(lmbdas) != points:
                raise InputError(f"lmbdas has {len(lmbdas)} values for {points} rate points")
        self.register_buffer("lmbda_table", torch.tensor(lmbdas or [lmbda], dtype=torch.float32), persistent=False)
        self.val_qualities = [float(q) for q in (val_qualities or codec.quality_points)]

    # -- objective --------------------------------------------------------------------------------

    def _rate_targets(self, batch: int) -> tuple[Tensor | None, Tensor]:
        """Per-item quality (None for a fixed-rate codec) and λ."""
        if not self.codec.rate_points:
            return None, self.lmbda_table[0]
        quality = torch.randint(1, self.codec.rate_points + 1, (batch,), device=self.device)
        return quality.float(), self.lmbda_table[quality - 1]

    def _lambda_at(self, quality: float) -> Tensor:
        return self.lmbda_table[max(0, round(quality) - 1)]

    @property
    def _has_aux(self) -> bool:
        """Whether the codec has entropy bottlenecks, whose quantiles the auxiliary loss trains."""
        return any(True for _ in self.codec.aux_parameters())

    def _adversarial(self) -> bool:
        return self.discriminator is not None and self.global_step >= self.hparams.adversarial_start

    @staticmethod
    def _untouched(parameters: Any) -> Tensor:
        """A zero that depends on ``parameters``: added to a loss they take no part in, it keeps DDP
        from waiting for their gradients."""
        return sum((p.sum() for p in parameters if p.requires_grad), torch.zeros(())) * 0.0

    def _codec_terms(self, output: dict[str, Any], terms: dict[str, Tensor]) -> None:
        """Add the codec's own losses (weighted) and the adversarial loss to ``terms["loss"]``."""
        weights = self.hparams.loss_weights or {}
        for name, value in (output.get("losses") or {}).items():
            terms["loss"] = terms["loss"] + weights.get(name, 1.0) * value
            terms[name] = value
        if self._adversarial():
            terms["adversarial"] = generator_loss(self.discriminator(output["x_hat"].float()))
            terms["loss"] = terms["loss"] + self.hparams.adversarial_weight * terms["adversarial"]

    def training_step(self, batch: Tensor, batch_idx: int) -> None:
        optimizers = self.optimizers()
        optimizer, *others = optimizers if isinstance(optimizers, list) else [optimizers]
        aux_optimizer = others.pop(0) if self._has_aux else None
        quality, lmbda = self._rate_targets(batch.shape[0])
        output = self.codec(batch, quality)
        # A predictive codec reconstructs only the frames it predicts: it names them "target".
        terms = self.criterion(output, output.get("target", batch), lmbda)
        self._codec_terms(output, terms)
        # The quantiles (and a critic) take no part in the RD loss.
        untouched = self._untouched(self.codec.aux_parameters())
        if self.discriminator is not None:
            untouched = untouched + self._untouched(self.discriminator.parameters())
        optimizer.zero_grad()
        self.manual_backward(terms["loss"] + untouched)
        if self.hparams.clip_max_norm:
            self.clip_gradients(
                optimizer, gradient_clip_val=self.hparams.clip_max_norm, gradient_clip_algorithm="norm"
            )
        optimizer.step()
        if aux_optimizer is not None:
            terms["aux_loss"] = self._aux_step(aux_optimizer.optimizer)
        if self._adversarial():
            terms["discriminator"] = self._critic_step(others[0].optimizer, batch, output["x_hat"].detach().float())
        self.lr_schedulers().step()
        self.log("train/loss", terms["loss"].detach(), prog_bar=True)
        # The other terms only on the steps the loggers write: self.log costs milliseconds.
        if self.global_step % self.trainer.log_every_n_steps == 0:
            for name, value in terms.items():
                if name != "loss":
                    self.log(f"train/{name}", value.detach(), prog_bar=name in ("bpp", "psnr", "bits_per_sample", "snr"))
            self.log("train/lr", optimizer.param_groups[0]["lr"])

    def _aux_step(self, aux_optimizer: torch.optim.Optimizer) -> Tensor:
        """One step of the quantile loss, in float32, on gradients averaged over processes.

        The raw optimiser is stepped: Lightning counts every wrapped ``step()`` as a global step.
        """
        params = list(self.codec.aux_parameters())
        with torch.autocast(self.device.type, enabled=False):
            aux_loss = self.codec.aux_loss()
        grads = torch.autograd.grad(aux_loss, params, allow_unused=True)
        for p, g in zip(params, grads):
            p.grad = self.trainer.strategy.reduce(g if g is not None else torch.zeros_like(p), reduce_op="mean")
        aux_optimizer.step()
        return aux_loss.detach()

    def _critic_step(self, optimizer: Any, real: Tensor, fake: Tensor) -> Tensor:
        """One hinge-loss step of the discriminator on a batch and its reconstruction."""
        loss = discriminator_loss(self.discriminator(real.float()), self.discriminator(fake))
        optimizer.zero_grad()
        self.manual_backward(loss + self._untouched(self.codec.main_parameters()))
        optimizer.step()
        return loss.detach()

    def validation_step(self, batch: Tensor, batch_idx: int) -> None:
        losses = []
        for q in self.val_qualities:
            quality = q if self.codec.rate_points else None
            output = self.codec(batch, quality)
            terms = self.criterion(output, output.get("target", batch), self._lambda_at(q))
            if "indices" in output:  # a vector quantiser: how much of its codebook it uses
                terms.update(usage(output["indices"], output["codebook_size"]))
            suffix = f"_q{q:g}" if self.codec.rate_points else ""
            self.log_dict({f"val/{k}{suffix}": v for k, v in terms.items() if k != "loss"}, sync_dist=True)
            losses.append(terms["loss"])
        self.log("val/loss", torch.stack(losses).mean(), sync_dist=True, prog_bar=True)

    # -- optimisers -------------------------------------------------------------------------------

    def _main_parameter_groups(self) -> list[dict[str, Any]]:
        """The rate–distortion parameters in one Adam group per learning-rate multiplier."""
        multipliers = self.hparams.lr_multipliers or {}
        groups: dict[float, list[torch.nn.Parameter]] = {1.0: []}
        for name, parameter in self.codec.named_main_parameters():
            factor = next((m for prefix, m in multipliers.items() if name.startswith(prefix)), 1.0)
            groups.setdefault(float(factor), []).append(parameter)
        return [{"params": ps, "lr": self.hparams.lr * m} for m, ps in groups.items() if ps]

    def configure_optimizers(self) -> tuple[list[torch.optim.Optimizer], list[dict[str, Any]]]:
        hp = self.hparams
        main = torch.optim.Adam(self._main_parameter_groups(), lr=hp.lr)
        aux = [torch.optim.Adam(self.codec.aux_parameters(), lr=hp.aux_lr)] if self._has_aux else []
        critic = [] if self.discriminator is None else [
            torch.optim.Adam(self.discriminator.parameters(), lr=hp.discriminator_lr, betas=(0.5, 0.9))]
        max_steps = self.trainer.max_steps
        total = max_steps if max_steps > 0 else int(self.trainer.estimated_stepping_batches)
        milestones = list(hp.milestones or [])
        scheduler = LambdaLR(
            main, lambda step: lr_factor(step, hp.lr_schedule, hp.warmup_steps, milestones, hp.gamma, total)
        )
        return [main, *aux, *critic], [{"scheduler": scheduler, "interval": "step"}]


def codec_from_checkpoint(path: str | os.PathLike, use_ema: bool = True) -> tuple[Codec, dict[str, str]]:
    """The codec of a training checkpoint (its EMA weights when present and ``use_ema``), tables built,
    with provenance metadata for :func:`lnc.codecs.registry.save_codec`."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:  # torch raises several types for corrupt or foreign files
        raise InputError(f"{path}: not a readable training checkpoint ({exc})") from None
    hparams = dict(ckpt.get("hyper_parameters") or {})
    spec = hparams.get("codec")
    if not isinstance(spec, dict) or "class_path" not in spec:
        raise InputError(f"{path}: no codec hyper-parameters (not a checkpoint of lnc train)")
    module_name, _, class_name = spec["class_path"].rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Codec)):
        raise InputError(f"{path}: {spec['class_path']} is not an lnc codec class")
    codec = cls(**(spec.get("init_args") or {}))
    state = {k.removeprefix("codec."): v for k, v in ckpt["state_dict"].items() if k.startswith("codec.")}
    ema = (ckpt.get("callbacks") or {}).get("EMA") if use_ema else None
    if ema:
        state.update(ema["shadow"])
    codec.load_state_dict(state)
    codec.update(force=True)
    hparams.pop("_instantiator", None)
    init = hparams.get("init_from") or {}
    metadata = {
        "lnc.train.config": json.dumps(hparams, sort_keys=True),
        "lnc.train.data": json.dumps(dict(ckpt.get("datamodule_hyper_parameters") or {}), sort_keys=True),
        "lnc.train.steps": str(int(init.get("steps", 0)) + ckpt.get("global_step", 0)),
        "lnc.train.ema": "true" if ema else "false",
    }
    if init:
        metadata["lnc.train.init"] = json.dumps(init, sort_keys=True)
    return codec.eval(), metadata
