"""DEGAN's domain encoder: one reference image → one StyleSpace domain in a forward pass (methods.md §6).

:mod:`.model` (the network), :mod:`.file` (its weights_only file), :mod:`.infer`
(:func:`~gandapt.trainer.degan.infer.domain_from_image`), :mod:`.export` (ONNX on its own),
:mod:`.loop` (training).
"""
