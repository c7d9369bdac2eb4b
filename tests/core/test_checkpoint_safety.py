"""Checkpoints are read as data: no payload in a pickle or torch file ever runs.

The NVlabs-layout pickles here are built the way stylegan2-ada-pytorch writes them: each network is a
call to ``torch_utils.persistence._reconstruct_persistent_obj(meta)`` (a stand-in module registered in
``sys.modules`` while pickling), with nested ``_parameters``/``_buffers``/``_modules``, tensors through
torch's own reducers, ``dnnlib.util.EasyDict`` kwargs and numpy scalars.
"""

import builtins
import collections
import io
import os
import pickle
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from gandapt.checkpoint import CheckpointError, load, read_states
from gandapt.checkpoint.nvlabs_pickle import ALLOWED_GLOBALS, weights_only_refusal

GOLDEN = Path(os.environ.get("GANDAPT_GOLDEN", Path(__file__).resolve().parents[2].parent / "shared" / "golden"))
needs_golden = pytest.mark.skipif(not (GOLDEN / "README.md").exists(),
                                  reason=f"golden vectors not found at {GOLDEN} (set GANDAPT_GOLDEN)")
_BUFFERS = ("noise_const", "resample_filter", "w_avg")


class _Payload:
    """Pickles as ``fn(*args)``: what an attacker puts in a checkpoint."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


@pytest.fixture
def nvlabs_modules(monkeypatch):
    """Register stand-ins for ``torch_utils.persistence`` and ``dnnlib.util`` so pickle can name them."""

    def _reconstruct_persistent_obj(meta):  # what NVlabs' real loader does: run the embedded source
        exec(compile(meta["module_src"], "<module_src>", "exec"), {})
        raise AssertionError("unreachable in this stand-in")

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"

    class EasyDict(dict):
        pass

    EasyDict.__module__, EasyDict.__qualname__ = "dnnlib.util", "EasyDict"
    for name, attrs in [("torch_utils", {}), ("torch_utils.persistence", {"_reconstruct_persistent_obj": _reconstruct_persistent_obj}),
                        ("dnnlib", {}), ("dnnlib.util", {"EasyDict": EasyDict})]:
        mod = types.ModuleType(name)
        mod.__dict__.update(attrs)
        monkeypatch.setitem(sys.modules, name, mod)
    return types.SimpleNamespace(reconstruct=_reconstruct_persistent_obj, EasyDict=EasyDict)


def _network(flat, kwargs, fx, module_src, class_name="Generator", extra_state=None):
    """A persistent-object tree in NVlabs' layout holding the state dict ``flat``."""
    root = {}
    for key, t in flat.items():
        *mods, name = key.split(".")
        node = root
        for m in mods:
            node = node.setdefault("m", {}).setdefault(m, {})
        node.setdefault("b" if name in _BUFFERS else "p", {})[name] = t.clone()

    def make(node, kw, cls):
        state = {
            "training": False,
            "_parameters": collections.OrderedDict(
                (k, torch.nn.Parameter(v, requires_grad=False)) for k, v in node.get("p", {}).items()),
            "_buffers": collections.OrderedDict(node.get("b", {})),
            "_non_persistent_buffers_set": set(),
            "_modules": collections.OrderedDict((k, make(v, fx.EasyDict(), "Layer")) for k, v in node.get("m", {}).items()),
            "w_avg_beta": np.float64(0.995),  # a numpy scalar attribute, as in real files
            "_init_args": (),
            "_init_kwargs": kw,
        }
        meta = {"type": "class", "version": 6, "module_src": module_src, "class_name": cls, "state": state}
        return _Payload(fx.reconstruct, meta)

    tree = make(root, kwargs, class_name)
    if extra_state:
        tree.args[0]["state"].update(extra_state)
    return tree


def _easy(fx, d):
    return fx.EasyDict({k: _easy(fx, v) if isinstance(v, dict) else v for k, v in d.items()})


def _snapshot(fx, module_src, g_kwargs_patch=None):
    """Pickle bytes of a full network snapshot built from nvlabs_g64.pt."""
    ref = torch.load(GOLDEN / "nvlabs_g64.pt", weights_only=True)
    kw = ref["init_kwargs"]
    g_kw = _easy(fx, {**kw["G_ema"], **(g_kwargs_patch or {})})
    g = _network(ref["G_ema"], g_kw, fx, module_src)
    # a non-persistent buffer must not show up in the state dict
    g.args[0]["state"]["_buffers"]["scratch"] = torch.ones(2)
    g.args[0]["state"]["_non_persistent_buffers_set"] = {"scratch"}
    data = {
        "training_set_kwargs": _easy(fx, {"class_name": "training.dataset.ImageFolderDataset", "resolution": 64}),
        "G": _network(ref["G"], _easy(fx, kw["G"]), fx, module_src),
        "D": _network(ref["D"], _easy(fx, kw["D"]), fx, module_src, "Discriminator"),
        "G_ema": g,
        "augment_pipe": _network({"Hz_geom": torch.randn(12)}, fx.EasyDict(xflip=1), fx, module_src, "AugmentPipe"),
    }
    return pickle.dumps(data, protocol=4), ref


def _one_line(err):
    msg = str(err.value)
    assert "\n" not in msg and "Traceback" not in msg
    return msg


# ---- a real-layout pickle whose embedded source would run under NVlabs' own loader ---------------
@needs_golden
def test_nvlabs_pickle_loads_without_running_module_src(tmp_path, nvlabs_modules):
    marker = tmp_path / "executed.txt"
    src = f"open({str(marker)!r}, 'w').close()\nraise RuntimeError('executed')\n"
    data, ref = _snapshot(nvlabs_modules, src)
    with pytest.raises(RuntimeError, match="executed"):  # the payload is live: a plain unpickler runs it
        pickle.loads(data)
    assert marker.exists()
    marker.unlink()

    path = tmp_path / "network-snapshot-000100.pkl"
    path.write_bytes(data)
    st = read_states(path)
    assert not marker.exists()
    assert st.format == "nvlabs-pkl"
    for mine, theirs in ((st.g_state, ref["G_ema"]), (st.d_state, ref["D"])):
        theirs = {k: v for k, v in theirs.items() if not k.endswith("resample_filter")}
        assert list(mine) == list(theirs)  # scratch (non-persistent) skipped, order kept
        assert all(torch.equal(mine[k], theirs[k]) for k in theirs)
    kw = st.extra["init_kwargs"]
    assert type(kw["G_ema"]) is dict and type(kw["G_ema"]["synthesis_kwargs"]) is dict  # EasyDict → dict
    assert kw["G_ema"] == ref["init_kwargs"]["G_ema"]
    assert st.extra["training_set_kwargs"]["resolution"] == 64
    ckpt = load(path)
    assert not marker.exists()
    assert ckpt.config.conv_clamp == 256 and ckpt.D is not None


@needs_golden
def test_conditional_nvlabs_pickle_is_refused(tmp_path, nvlabs_modules):
    data, _ = _snapshot(nvlabs_modules, "# source removed\n", {"c_dim": 10})
    path = tmp_path / "cond.pkl"
    path.write_bytes(data)
    with pytest.raises(CheckpointError) as err:
        load(path)
    msg = _one_line(err)
    assert str(path) in msg and "conditional" in msg and "c_dim=10" in msg


# ---- pickles and torch files with code in them ------------------------------------------------------
def _payloads(marker):
    return {
        "os.system": _Payload(os.system, f"touch {marker}"),
        "builtins.exec": _Payload(builtins.exec, f"open({str(marker)!r}, 'w').close()"),
        "builtins.eval": _Payload(builtins.eval, f"open({str(marker)!r}, 'w').close()"),
        "subprocess.call": _Payload(subprocess.call, ["touch", str(marker)]),
    }


@pytest.mark.parametrize("which", ["os.system", "builtins.exec", "builtins.eval", "subprocess.call"])
@pytest.mark.parametrize("container", ["pickle", "pickle-in-network", "torch-zip"])
def test_disallowed_globals_never_run(tmp_path, nvlabs_modules, which, container):
    marker = tmp_path / "pwned"
    payload = _payloads(marker)[which]
    path = tmp_path / "evil.bin"
    if container == "pickle":
        path.write_bytes(pickle.dumps({"G_ema": payload}, protocol=4))
    elif container == "pickle-in-network":
        net = _network({"mapping.fc0.weight": torch.ones(2, 2)}, nvlabs_modules.EasyDict(), nvlabs_modules,
                       "# source removed\n", extra_state={"evil": payload})
        path.write_bytes(pickle.dumps({"G_ema": net}, protocol=4))
    else:
        torch.save({"g_ema": {"style.1.weight": torch.ones(1)}, "args": payload}, path)
    with pytest.raises(CheckpointError) as err:
        load(path)
    msg = _one_line(err)
    assert msg.startswith(f"refusing to load {path}: ") and "not allowed" in msg
    assert "never runs code" in msg
    assert not marker.exists()


def test_malicious_storage_bytes_never_run(tmp_path, nvlabs_modules):
    """``torch.storage._load_from_bytes`` is replaced: torch's own would unpickle with weights_only=False."""
    marker = tmp_path / "pwned"
    buf = io.BytesIO()
    torch.save(_Payload(os.system, f"touch {marker}"), buf, _use_new_zipfile_serialization=False)
    evil_storage = _Payload(torch.storage._load_from_bytes, buf.getvalue())
    torch.storage._load_from_bytes(buf.getvalue())  # the payload is live under torch's own function
    assert marker.exists()
    marker.unlink()

    tensor = _Payload(torch._utils._rebuild_tensor_v2, evil_storage, 0, (1,), (1,), False, collections.OrderedDict())
    net = _network({}, nvlabs_modules.EasyDict(), nvlabs_modules, "# source removed\n",
                   extra_state={"_parameters": collections.OrderedDict(w=tensor)})
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": net}, protocol=4))
    with pytest.raises(CheckpointError) as err:
        read_states(path)
    msg = _one_line(err)
    assert "refusing to load" in msg and "system" in msg
    assert not marker.exists()


def test_tensorflow_pickle_is_named(tmp_path):
    path = tmp_path / "stylegan2-ffhq-config-f.pkl"
    path.write_bytes(b"\x80\x02cdnnlib.tflib.network\nNetwork\n)\x81.")  # GLOBAL, EMPTY_TUPLE, NEWOBJ, STOP
    with pytest.raises(CheckpointError) as err:
        load(path)
    msg = _one_line(err)
    assert "TensorFlow" in msg and "dnnlib.tflib.network.Network" in msg and "legacy.py" in msg


def test_the_allow_list_is_exactly_the_documented_one():
    assert set(ALLOWED_GLOBALS) == {
        ("torch_utils.persistence", "_reconstruct_persistent_obj"),
        ("torch._utils", "_rebuild_tensor_v2"),
        ("torch._utils", "_rebuild_parameter"),
        ("torch.storage", "_load_from_bytes"),
        ("collections", "OrderedDict"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "dtype"),
        ("dnnlib.util", "EasyDict"),
    }
    # gandapt's own stand-ins, not torch's (whose _load_from_bytes runs arbitrary pickles)
    assert ALLOWED_GLOBALS[("torch.storage", "_load_from_bytes")] is not torch.storage._load_from_bytes
    assert ALLOWED_GLOBALS[("torch._utils", "_rebuild_parameter")] is not torch._utils._rebuild_parameter


def test_object_dtype_numpy_scalar_is_refused(tmp_path):
    # numpy._core.multiarray.scalar(numpy.dtype('O8'), b'x'): an object scalar, never in a real file
    raw = (b"\x80\x04" b"\x8c\x16numpy._core.multiarray\x94\x8c\x06scalar\x94\x93"
           b"\x8c\x05numpy\x94\x8c\x05dtype\x94\x93\x8c\x02O8\x94\x85\x94R\x94"
           b"C\x01x\x94\x86\x94R\x94.")
    path = tmp_path / "scalar.pkl"
    path.write_bytes(raw)
    with pytest.raises(CheckpointError) as err:
        read_states(path)
    assert "not a valid NVlabs network pickle" in _one_line(err)


@pytest.mark.parametrize("text, clause", [
    ("Weights only load failed. ...\n\tWeightsUnpickler error: Unsupported global: GLOBAL builtins.exec was not an "
     "allowed global by default.", "references builtins.exec, which is not allowed in a checkpoint"),
    ("Weights only load failed. ...\n\n\nTrying to load unsupported GLOBAL posix.system whose module posix is blocked.",
     "references posix.system, which is not allowed in a checkpoint"),
    ("Weights only load failed. ...\n\tWeightsUnpickler error: Unsupported operand 99\n",
     "holds content a weights-only load refuses (Unsupported operand 99)"),
    ("PytorchStreamReader failed reading zip archive", None),
])
def test_weights_only_refusals_are_recognised(text, clause):
    assert weights_only_refusal(pickle.UnpicklingError(text)) == clause
