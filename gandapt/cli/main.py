"""``gandapt``: one entry point whose subcommands are the ``gandapt-*`` console scripts.

Subcommands are imported only when invoked, so ``gandapt run`` stays torch-free even though
``gandapt train`` needs torch.
"""

from __future__ import annotations

import importlib
from typing import Dict, List, Optional

import click

import gandapt

# Subcommand name -> "module:attribute" of the click command behind the console script.
SUBCOMMANDS: Dict[str, str] = {
    "inspect": "gandapt.cli.inspect:main",
    "generate": "gandapt.cli.generate:main",
    "train": "gandapt.trainer.cli:main",
    "export": "gandapt.export.cli:main",
    "run": "gandapt.runtime.cli:main",
    "bench": "gandapt.benchmarks.cli:main",
}

# One-line summaries for the group's --help without importing every subcommand's module.
_SUMMARIES: Dict[str, str] = {
    "inspect": "Describe a checkpoint or a domain pack.",
    "generate": "Render a seeded image grid from a model (the embedded one by default).",
    "train": "Train a base StyleGAN2 or a domain adapter (issues #3-#6).",
    "export": "Export a model to an ONNX bundle (+ TensorRT engine, Triton repository).",
    "run": "Run a bundle on a camera, video or latent walk, switching domains live.",
    "bench": "Benchmark latency, domain switching, memory scaling and backends.",
}


class LazyGroup(click.Group):
    """A click group that imports a subcommand's module only when that subcommand runs."""

    def __init__(self, *args, lazy: Dict[str, str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> List[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx: click.Context, name: str) -> Optional[click.Command]:
        if name not in self.lazy:
            return super().get_command(ctx, name)
        module, attr = self.lazy[name].split(":")
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, _SUMMARIES.get(name, "")) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(
    cls=LazyGroup,
    lazy=SUBCOMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(gandapt.__version__, prog_name="gandapt")
def cli() -> None:
    """gandapt: adapt a pretrained StyleGAN2 to new domains with small adapters, export it, and
    switch domains live.

    Each command is also installed as its own script (gandapt-inspect, gandapt-train, ...).
    """


if __name__ == "__main__":
    cli()
