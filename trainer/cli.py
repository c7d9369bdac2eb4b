"""``gandapt-train``: datasets, base StyleGAN2 training, metrics, domain adapters and the results table.

Subcommands are imported only when invoked, so ``gandapt-train --help`` stays fast and torch-free.
"""

from __future__ import annotations

import click

from gandapt.cli.main import LazyGroup

# name -> "module:attribute" of the click command that implements it
COMMANDS = {
    "data": "gandapt.trainer.data.cli:data",
    "base": "gandapt.trainer.gan.cli:base",
    "fid": "gandapt.trainer.metrics.cli:fid",
    "encoder": "gandapt.trainer.encoder.cli:encoder",
    "eval-encoder": "gandapt.trainer.encoder.cli:eval_encoder",
    "domain-mod": "gandapt.trainer.adapters.cli:domain_mod",
    "stylespace": "gandapt.trainer.adapters.cli:stylespace",
    "genda": "gandapt.trainer.adapters.cli:genda",
    "finetune": "gandapt.trainer.adapters.cli:finetune",
    "eval": "gandapt.trainer.adapters.cli:eval_domain",
    "table": "gandapt.trainer.adapters.cli:table",
    "oracle": "gandapt.trainer.adapters.cli:oracle",
    "expansion": "gandapt.trainer.expansion.cli:expansion",
    "degan": "gandapt.trainer.degan.cli:degan",
    "hyperdomainnet": "gandapt.trainer.multidomain.cli:hyperdomainnet",
    "dynagan": "gandapt.trainer.multidomain.cli:dynagan",
}

SUMMARIES = {
    "data": "Build the avatar dataset and target-domain copies.",
    "base": "Train a StyleGAN2 from scratch on an image folder.",
    "fid": "FID/KID of a model or an image folder against a dataset.",
    "encoder": "Train a W+ inversion encoder (pSp/e4e-style) so photos and camera frames drive a model.",
    "eval-encoder": "Score an inversion encoder against the average-latent baseline.",
    "domain-mod": "HyperDomainNet's domain-modulation vector: one domain from images or text.",
    "stylespace": "StyleDomain's StyleSpace directions (conv-only, all-layers, sparse).",
    "genda": "GenDA attribute adaptor on W+ and the last ToRGB, against a classifier on D.",
    "finetune": "Full fine-tuning of the synthesis weights (writes a new base model).",
    "eval": "Measure a domain: paired error, FID/KID, precision/recall, quality/diversity.",
    "table": "Train and evaluate every method on the avatar targets; write the results table.",
    "oracle": "Bound a method on a known transform: train its entries on the paired error itself.",
    "expansion": "Domain Expansion: new domains on dormant latent directions (writes an expanded base model).",
    "degan": "DEGAN domain encoder: a reference image -> StyleSpace domain in one forward pass.",
    "hyperdomainnet": "HyperDomainNet: one hypernetwork -> domain-modulation vectors for many image/text domains.",
    "dynagan": "DynaGAN: multi-domain hypernetwork with exact rank-1 kernel residual + output scales.",
}


class _TrainGroup(LazyGroup):
    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, SUMMARIES.get(name, "")) for name in self.list_commands(ctx)])


@click.group(cls=_TrainGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Train base StyleGAN2 models and domain adapters; build datasets; measure FID/KID.

    \b
    Typical first run (CPU, about 10 minutes for the data):
      gandapt-train data avatars --n 20000 --size 64 --out data/avatars64
      gandapt-train base --data data/avatars64 --out runs/base64 --kimg 300
      gandapt-train fid runs/base64/model.pt --data data/avatars64 --n 2000
    """


if __name__ == "__main__":
    main()
