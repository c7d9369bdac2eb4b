"""NVlabs network pickles (``network-snapshot-*.pkl``) read as data, never as code.

An NVlabs pickle stores each network as a call ``torch_utils.persistence._reconstruct_persistent_obj(meta)``
whose ``meta`` carries the network's Python source (``module_src``, which NVlabs' own loader *executes*)
and its ``__dict__`` (``state``). :class:`RestrictedUnpickler` resolves exactly the globals such a file
needs, each to a gandapt function that builds plain data: the persistent-object call returns the
``state`` and drops ``module_src`` unread; tensors are rebuilt from storages loaded with
``torch.load(weights_only=True)``. Any other global — ``os.system``, ``builtins.exec``, a torch module
class — stops loading before it is called.

Provenance: the global names and the object layout are facts about NVlabs stylegan2-ada-pytorch's
pickles (NVIDIA Source Code License, non-commercial); no code of that project is used.
"""

from __future__ import annotations

import collections
import io
import pickle
import re
import warnings
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

import torch

from gandapt.checkpoint.common import NetworkStates, StateDict, fail, one_line, plain, reason
from gandapt.checkpoint.nvlabs import D_INIT_ARGS, G_INIT_ARGS, merge_init_kwargs, nvlabs_states
from gandapt.errors import CheckpointError


class _Corrupt(Exception):
    """Raised by the stand-in functions on data no real NVlabs pickle contains."""


class PersistentObject:
    """A network (or other persistent object) read from a pickle: its class name and ``__dict__``."""

    __slots__ = ("class_name", "state")  # no __dict__: a BUILD opcode cannot attach anything

    def __init__(self, class_name: str, state: dict):
        self.class_name, self.state = class_name, state

    def __repr__(self) -> str:
        return f"PersistentObject({self.class_name!r})"


def _reconstruct_persistent_obj(meta: Any) -> PersistentObject:
    # meta = {'type', 'version', 'module_src', 'class_name', 'state'}; module_src is never looked at.
    if not isinstance(meta, dict) or meta.get("type") != "class" or not isinstance(meta.get("state"), dict):
        raise _Corrupt("a persistent object has no class state")
    return PersistentObject(str(meta.get("class_name")), meta["state"])


def _load_from_bytes(data: Any) -> Any:
    # torch's own _load_from_bytes uses weights_only=False, which would run any pickle inside.
    if not isinstance(data, bytes):
        raise _Corrupt("a tensor storage is not stored as bytes")
    storage = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    if not isinstance(storage, torch.storage.TypedStorage):  # what torch.save(storage) reads back as
        raise _Corrupt("a tensor storage holds something else")
    return storage


def _int_tuple(x: Any) -> bool:
    return isinstance(x, tuple) and all(isinstance(i, int) for i in x)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    # Same signature as torch._utils._rebuild_tensor_v2; hooks and metadata are dropped, not attached.
    if not isinstance(storage, torch.storage.TypedStorage):
        raise _Corrupt("a tensor is rebuilt from something that is not a storage")
    if not (isinstance(storage_offset, int) and _int_tuple(size) and _int_tuple(stride)):
        raise _Corrupt("a tensor has a malformed size or stride")
    return torch._utils._rebuild_tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    if not isinstance(data, torch.Tensor):
        raise _Corrupt("a parameter holds no tensor")
    return data  # a plain tensor: gandapt copies values only


def _numpy_scalar(dtype: Any, data: Any = None) -> Any:
    import numpy as np

    if not isinstance(dtype, np.dtype) or dtype.kind not in "biufc" or not isinstance(data, bytes):
        raise _Corrupt("a numpy scalar is not a plain number")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _numpy_dtype(*args: Any) -> Any:
    import numpy as np

    return np.dtype(*args)


class _EasyDict(dict):
    """Stand-in for ``dnnlib.util.EasyDict`` (a dict subclass); converted to a plain dict after loading."""

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, dict):
            self.update(state)


#: The complete allow-list: (module, name) in the pickle → what gandapt calls instead.
ALLOWED_GLOBALS: Dict[tuple, Any] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_from_bytes,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("numpy", "dtype"): _numpy_dtype,
    ("dnnlib.util", "EasyDict"): _EasyDict,
}


class RestrictedUnpickler(pickle.Unpickler):
    """A :class:`pickle.Unpickler` that resolves only :data:`ALLOWED_GLOBALS`.

    Args:
        file: binary file object positioned at the pickle.
        path: the file's name, for error messages.
    """

    def __init__(self, file, path: Path):
        super().__init__(file)
        self.path = path

    def find_class(self, module: str, name: str) -> Any:
        """Return gandapt's stand-in for an allowed global; refuse everything else.

        Raises:
            CheckpointError: the global is not on the allow-list (nothing has run).
        """
        allowed = ALLOWED_GLOBALS.get((module, name))
        if allowed is not None:
            return allowed
        if module.startswith("dnnlib.tflib"):
            raise fail(
                f"refusing to load {self.path}: it is a TensorFlow StyleGAN pickle (it references "
                f"{module}.{name}); convert it to PyTorch first, e.g. with stylegan2-ada-pytorch's legacy.py"
            )
        raise fail(
            f"refusing to load {self.path}: it references {module}.{name}, which is not allowed in a "
            "network pickle (gandapt never runs code from checkpoints)"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise _Corrupt("it uses persistent ids, which NVlabs network pickles do not")


def weights_only_refusal(err: BaseException) -> Optional[str]:
    """What a ``torch.load(weights_only=True)`` refusal objects to, as a clause, or None for other errors.

    E.g. ``"references posix.system, which is not allowed in a checkpoint"`` for a disallowed global.
    """
    text = str(err)
    if "Weights only load failed" not in text:
        return None
    m = re.search(r"GLOBAL ([\w.]+)", text)  # "Unsupported global: GLOBAL x" or "unsupported GLOBAL x whose module"
    if m:
        return f"references {m.group(1)}, which is not allowed in a checkpoint"
    m = re.search(r"WeightsUnpickler error: ([^\n]*)", text)
    return f"holds content a weights-only load refuses ({one_line(m.group(1) if m else 'unknown', 160)})"


def unpickle(path: Path) -> Any:
    """Run :class:`RestrictedUnpickler` over ``path``; every failure is a one-line CheckpointError."""
    try:
        with open(path, "rb") as f, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TypedStorage deprecation chatter from torch.load
            return RestrictedUnpickler(f, path).load()
    except CheckpointError:
        raise
    except _Corrupt as e:
        raise fail(f"checkpoint {path} is not a valid NVlabs network pickle: {e}; the file is corrupt") from None
    except Exception as e:  # truncated stream, bad opcode, out-of-bounds storage, ...
        refusal = weights_only_refusal(e)
        if refusal:  # from a storage's inner torch.load
            raise fail(f"refusing to load {path}: a tensor storage inside {refusal} "
                       "(gandapt never runs code from checkpoints)") from None
        why = "it ends early" if isinstance(e, EOFError) else reason(e)
        raise fail(f"checkpoint {path} is truncated or corrupt ({why}); download or copy it again") from None


def flatten(obj: PersistentObject, path: Path, section: str) -> StateDict:
    """``state_dict()`` of a pickled module: ``_parameters``, persistent ``_buffers``, then ``_modules``."""
    out: StateDict = {}

    def walk(o: Any, prefix: str) -> None:
        if not isinstance(o, PersistentObject):
            raise fail(f"checkpoint {path}: {section}.{prefix.rstrip('.')} is not a network module; the file is corrupt")
        st = o.state
        skip = st.get("_non_persistent_buffers_set") or set()
        for group in ("_parameters", "_buffers"):
            entries = st.get(group) or {}
            if not isinstance(entries, Mapping):
                raise fail(f"checkpoint {path}: {section}.{prefix}{group} is malformed; the file is corrupt")
            for name, t in entries.items():
                if t is None or (group == "_buffers" and name in skip):
                    continue
                if not isinstance(t, torch.Tensor):
                    raise fail(f"checkpoint {path}: {section}.{prefix}{name} is not a tensor; the file is corrupt")
                out[prefix + name] = t.detach()
        for name, child in (st.get("_modules") or {}).items():
            if child is not None:
                walk(child, f"{prefix}{name}.")

    walk(obj, "")
    return out


def _kwargs(obj: PersistentObject, names, path: Path, section: str) -> dict:
    if "_init_kwargs" not in obj.state:
        raise fail(
            f"checkpoint {path}: {section} has no constructor kwargs (_init_kwargs); it was not saved by "
            "stylegan2-ada-pytorch's persistence, so gandapt cannot read its conv_clamp"
        )
    return merge_init_kwargs(obj.state.get("_init_args"), obj.state.get("_init_kwargs"), names)


def read_network_pickle(path: Path) -> NetworkStates:
    """Read an NVlabs stylegan2-ada-pytorch network pickle without running any of its code.

    ``G_ema`` becomes the generator and ``D`` the discriminator; the training ``G`` and
    ``augment_pipe`` are read as data and ignored. ``extra`` holds ``init_kwargs`` (``G_ema``/``D``)
    and ``training_set_kwargs`` when present.
    """
    data = unpickle(path)
    if not isinstance(data, dict) or not isinstance(data.get("G_ema"), PersistentObject):
        raise fail(
            f"{path} is a pickle but not an NVlabs network pickle (no G_ema network inside); "
            "gandapt reads StyleGAN2 networks saved by stylegan2-ada-pytorch"
        )
    g, d = data["G_ema"], data.get("D")
    g_kwargs = _kwargs(g, G_INIT_ARGS, path, "G_ema")
    d_state = d_kwargs = None
    if isinstance(d, PersistentObject):
        d_state, d_kwargs = flatten(d, path, "D"), _kwargs(d, D_INIT_ARGS, path, "D")
    extra: Dict[str, Any] = {"init_kwargs": {"G_ema": g_kwargs, **({"D": d_kwargs} if d_kwargs is not None else {})}}
    if isinstance(data.get("training_set_kwargs"), dict):
        extra["training_set_kwargs"] = plain(dict(data["training_set_kwargs"]))
    return nvlabs_states(flatten(g, path, "G_ema"), g_kwargs, d_state, d_kwargs, path, "nvlabs-pkl", extra)
