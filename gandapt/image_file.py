"""Reading one picture as the networks see it: RGB, the centre square, Lanczos-resized. torch-free.

Lanczos is what NVIDIA's dataset_tool uses to bring a dataset to the generator's resolution; the
trainer's metrics and reference images and the runtime's ``--domain-image`` all read through here,
so one picture gives the same pixels everywhere.
"""

from __future__ import annotations

import os
from typing import Optional, Union

import numpy as np

from gandapt.errors import GandaptError


def read_square(path: Union[str, os.PathLike], resolution: Optional[int] = None) -> np.ndarray:
    """One image as uint8 RGB [H, W, 3]; with ``resolution``, centre-cropped square and Lanczos-resized
    to [R, R, 3] (needs Pillow).

    Raises:
        GandaptError: the file cannot be read as an image.
    """
    import PIL.Image

    try:
        with PIL.Image.open(path) as im:
            im = im.convert("RGB")
            if resolution and im.size != (resolution, resolution):
                w, h = im.size
                s = min(w, h)
                box = ((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)
                im = im.crop(box).resize((resolution, resolution), PIL.Image.LANCZOS)
            return np.array(im, dtype=np.uint8)
    except (OSError, ValueError) as err:
        raise GandaptError(f"cannot read image {path}: {err}") from None
