"""``lnc train``: LightningCLI over :class:`~lnc.train.module.RDModule` and any LightningDataModule.

Every Trainer, model and data argument is settable from YAML or the command line
(``--trainer.max_steps 1000``, ``--trainer.devices 2 --trainer.strategy ddp``,
``--model.codec.init_args.N 64``, ``--ckpt_path last``); see ``configs/image/*.yaml``.
"""
from __future__ import annotations

import warnings

from pytorch_lightning import LightningDataModule
from pytorch_lightning.cli import LightningCLI

from lnc.train.module import RDModule

SUBCOMMANDS = ("fit", "validate", "test", "predict")


class LncCLI(LightningCLI):
    """LightningCLI with lnc's module; the data module is chosen by ``class_path`` in the config.

    Optimisers are the module's own (two of them: the RD objective and the quantile loss), so the
    CLI's automatic ``--optimizer`` arguments are off. The resolved config is saved next to the logs
    and overwritten on resume.
    """

    def __init__(self, args: list[str] | None = None, run: bool = True) -> None:
        super().__init__(
            RDModule,
            LightningDataModule,
            subclass_mode_data=True,
            auto_configure_optimizers=False,
            save_config_kwargs={"overwrite": True},
            args=args,
            run=run,
        )


def main(argv: list[str]) -> None:
    """Run LightningCLI on ``argv``; ``fit`` is implied when no subcommand is given."""
    if not argv or argv[0] not in SUBCOMMANDS:
        argv = ["fit", *argv]
    # `lnc train` hands LightningCLI its own argv; sys.argv stays as is so DDP relaunches `lnc train`.
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
    LncCLI(args=argv)
