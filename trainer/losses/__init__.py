"""Adaptation losses, written against the :class:`~gandapt.trainer.embedders.Embedder` interface.

* :mod:`.directional` — StyleGAN-NADA's directional loss with text or image directions, and HDN's
  in-domain angle regulariser;
* :mod:`.mindthegap` — MindTheGap's reference-image losses (across, within, ref, reconstruction);
* :mod:`.regularizers` — L2 of a domain's tensors to the identity (HDN's domain-norm);
* :mod:`.identity` — DynaGAN's identity loss, the base model's inversion encoder standing in for ArcFace.
"""
