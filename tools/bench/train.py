"""Training throughput: lnc's MeanScaleHyperprior through the Lightning trainer vs a CompressAI loop.

The peer is CompressAI's ``examples/train.py`` recipe written as a plain PyTorch loop on the
``compressai.zoo.mbt2018_mean`` architecture: Adam on the main parameters, Adam on the quantiles,
``RateDistortionLoss``, gradient clipping, one aux step per step. A third row runs lnc's codec and
loss in that same loop, so that the codec's own speed and the trainer's overhead show apart. All
see the same random batches from the same DataLoader, at the same batch size, crop, precision and thread count. Each step is
timed from its start to the next one's (synchronised on a GPU), runs alternate for ``--rounds``, and
the median step of all rounds is reported: bursts of background load on a shared machine then
shift neither side.

    python -m lnc.tools.bench.train [--batch 8 --crop 128 --steps 30 --device auto --threads N]
"""
from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from pytorch_lightning import Callback, Trainer
from torch.utils.data import DataLoader

from lnc.codecs.image import MeanScaleHyperprior
from lnc.train.losses import RateDistortionLoss
from lnc.train.module import RDModule

LMBDA = 0.0130


def _stamp(device: torch.device) -> float:
    """Time after all queued device work has finished."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter()


def _batches(args: argparse.Namespace) -> DataLoader:
    """The same random batches for both runs: warm-up plus timed steps."""
    count = (args.warmup + args.steps) * args.batch
    data = torch.rand(count, 3, args.crop, args.crop, generator=torch.Generator().manual_seed(0))
    return DataLoader(data, batch_size=args.batch, shuffle=False, pin_memory=args.device.type == "cuda")


def plain_loop(args: argparse.Namespace, net: torch.nn.Module, criterion: Callable) -> list[float]:
    """Step times of CompressAI's ``examples/train.py`` step on ``net``: RD step, clipping, aux step."""
    net = net.to(args.device).train()
    main = [p for n, p in net.named_parameters() if not n.endswith(".quantiles")]
    aux = [p for n, p in net.named_parameters() if n.endswith(".quantiles")]
    optimizer = torch.optim.Adam(main, lr=1e-4)
    aux_optimizer = torch.optim.Adam(aux, lr=1e-3)
    autocast = torch.autocast(args.device.type, dtype=torch.bfloat16, enabled=args.precision == "bf16-mixed")
    stamps = []
    for i, x in enumerate(_batches(args)):
        if i >= args.warmup:
            stamps.append(_stamp(args.device))
        x = x.to(args.device, non_blocking=True)
        optimizer.zero_grad()
        aux_optimizer.zero_grad()
        with autocast:
            out = net(x)
        loss = criterion(out, x)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        optimizer.step()
        aux_loss = net.aux_loss()
        aux_loss.backward()
        aux_optimizer.step()
    stamps.append(_stamp(args.device))
    return [b - a for a, b in zip(stamps, stamps[1:])]


def run_compressai(args: argparse.Namespace) -> list[float]:
    """The peer: CompressAI's mbt2018-mean architecture and ``RateDistortionLoss`` in the plain loop."""
    from compressai.losses import RateDistortionLoss
    from compressai.models import MeanScaleHyperprior as CompressAIMeanScale

    torch.manual_seed(0)
    criterion = RateDistortionLoss(lmbda=LMBDA)
    return plain_loop(args, CompressAIMeanScale(args.N, args.M), lambda out, x: criterion(out, x)["loss"])


def run_lnc_codec(args: argparse.Namespace) -> list[float]:
    """lnc's codec and loss in the same plain loop: separates codec speed from trainer overhead."""
    torch.manual_seed(0)
    criterion = RateDistortionLoss("mse")
    return plain_loop(args, MeanScaleHyperprior(args.N, args.M), lambda out, x: criterion(out, x, LMBDA)["loss"])


class _StepTimer(Callback):
    """Stamps at the start of every step after warm-up and at the end of training."""

    def __init__(self, warmup: int, device: torch.device) -> None:
        self.warmup, self.device = warmup, device
        self.stamps: list[float] = []

    def on_train_batch_start(self, trainer: Trainer, *args: object) -> None:
        if trainer.global_step >= self.warmup:
            self.stamps.append(_stamp(self.device))

    def on_train_end(self, trainer: Trainer, *args: object) -> None:
        self.stamps.append(_stamp(self.device))


def run_lnc(args: argparse.Namespace) -> list[float]:
    """Step times of lnc's RDModule (manual optimisation, aux step, logging) under Lightning."""
    torch.manual_seed(0)
    module = RDModule(MeanScaleHyperprior(args.N, args.M), lmbda=LMBDA, lr=1e-4, aux_lr=1e-3, clip_max_norm=1.0)
    timer = _StepTimer(args.warmup, args.device)
    trainer = Trainer(
        accelerator=args.device.type,
        devices=1,
        precision=args.precision,
        max_steps=args.warmup + args.steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        benchmark=True,
        callbacks=[timer],
    )
    trainer.fit(module, train_dataloaders=_batches(args))
    return [b - a for a, b in zip(timer.stamps, timer.stamps[1:])]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lnc.tools.bench.train", description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--steps", type=int, default=30, help="timed steps, after --warmup steps")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2, help="alternating runs of each")
    parser.add_argument("--N", type=int, default=128)
    parser.add_argument("--M", type=int, default=192)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--precision", default="32-true", choices=("32-true", "bf16-mixed"))
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="CPU threads of both runs")
    args = parser.parse_args(argv)
    args.device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                               "cpu" if args.device == "auto" else args.device)
    torch.set_num_threads(args.threads)
    torch.backends.cudnn.benchmark = True  # for both runs (Lightning sets it from Trainer(benchmark=True))

    runs: dict[str, Callable[[argparse.Namespace], list[float]]] = {
        "CompressAI loop, zoo mbt2018_mean": run_compressai,
        "lnc codec, same plain loop": run_lnc_codec,
        "lnc RDModule + Lightning Trainer": run_lnc,
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, run in runs.items():
            times[name] += run(args)
    rate = {name: 1.0 / statistics.median(t) for name, t in times.items()}

    print(
        f"\ntraining throughput: mean-scale hyperprior N={args.N} M={args.M}, batch {args.batch}, "
        f"{args.crop}x{args.crop} crops, {args.device.type} {args.precision}, {args.threads} threads; "
        f"median of {args.rounds} x {args.steps} steps after {args.warmup} warm-up"
    )
    print(f"{'implementation':<36} {'steps/s':>9} {'ms/step':>9}")
    for name, r in rate.items():
        print(f"{name:<36} {r:>9.2f} {1000 / r:>9.1f}")
    ours, peer = rate["lnc RDModule + Lightning Trainer"], rate["CompressAI loop, zoo mbt2018_mean"]
    print(f"ratio lnc / CompressAI: {ours / peer:.3f}  (goal >= 0.9)")


if __name__ == "__main__":
    main()
