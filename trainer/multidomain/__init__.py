"""Multi-domain hypernetwork methods over the runtime domain layout of a frozen generator.

* :mod:`.hypernets` — HyperDomainNet's mapper (an embedding → domain-modulation ``in_scale.*``) and
  DynaGAN's hypernetwork (a domain code → exact rank-1 kernel residual ``r1_*`` + ``out_scale``).
* :mod:`.objectives` — their multi-domain losses; :mod:`.loop` — the training run;
* :mod:`.model` — load a trained hypernetwork, make domains from new embeddings or images, and
  :func:`~.model.blend` domains in the conditioning space (methods.md §11.5).
"""
