"""Data for the trainer: the offline avatar world, its target transforms, and image folders.

- :mod:`.avatars`: render python-avatars cartoon faces into a dataset (+ the ``dataset.json`` /
  ``manifest.jsonl`` format every gandapt dataset writer uses).
- :mod:`.transforms`: named, versioned target-domain transforms (numpy + OpenCV only) and the
  writer of transformed or attribute-subset copies of a dataset.
- :mod:`.folder`: :class:`ImageFolderDataset`, the torch dataset over any folder of images, and
  :func:`dataset_fingerprint`.
- :mod:`.cli`: the ``gandapt-train data`` click group.

Names below load their module on first use, so ``apply_transform`` never pulls in torch.
"""

from __future__ import annotations

from gandapt.lazy import lazy_exports

_LAZY = {
    "build_avatars": "avatars",
    "render_avatar": "avatars",
    "read_manifest": "avatars",
    "read_dataset_info": "avatars",
    "ATTRIBUTES": "avatars",
    "TRANSFORMS": "transforms",
    "apply_transform": "transforms",
    "get_transform": "transforms",
    "list_transforms": "transforms",
    "transform_dataset": "transforms",
    "ImageFolderDataset": "folder",
    "dataset_fingerprint": "folder",
    "list_images": "folder",
    "read_image": "folder",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
