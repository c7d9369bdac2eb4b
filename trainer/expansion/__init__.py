"""Domain Expansion (Nitzan et al., CVPR 2023): new domains on dormant latent directions of one expanded G.

See :mod:`gandapt.trainer.expansion.loop` for what is trained and written, and
:mod:`gandapt.trainer.expansion.basis` for how the dormant directions are found.
"""
