"""gandapt.trainer: base-GAN training, the adapter methods, losses, embedders, data and evaluation.

The command-line entry point is ``gandapt-train`` (:mod:`gandapt.trainer.cli`).
"""
