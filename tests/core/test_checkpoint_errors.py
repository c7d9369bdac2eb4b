"""Every bad checkpoint gives one CheckpointError line naming the file, the problem and the fix."""

import io
import json
import os
import pickle
import struct
from pathlib import Path

import pytest
import torch

from gandapt.checkpoint import CheckpointError, load, sniff
from gandapt.errors import GandaptError

GOLDEN = Path(os.environ.get("GANDAPT_GOLDEN", Path(__file__).resolve().parents[2].parent / "shared" / "golden"))
needs_golden = pytest.mark.skipif(not (GOLDEN / "README.md").exists(),
                                  reason=f"golden vectors not found at {GOLDEN} (set GANDAPT_GOLDEN)")


def _error(path, *fragments):
    """Load ``path``, expect a one-line CheckpointError naming the file and containing ``fragments``."""
    with pytest.raises(CheckpointError) as err:
        load(path)
    msg = str(err.value)
    assert isinstance(err.value, GandaptError)
    assert "\n" not in msg and "Traceback" not in msg
    assert str(path) in msg
    for f in fragments:
        assert f in msg, (f, msg)
    return msg


def _safetensors(path, metadata):
    header = json.dumps({"__metadata__": metadata, "x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})
    path.write_bytes(struct.pack("<Q", len(header)) + header.encode() + b"\0\0\0\0")
    return path


# ---- the file itself --------------------------------------------------------------------------------
def test_missing_directory_and_empty(tmp_path):
    _error(tmp_path / "nope.pt", "not found")
    _error(tmp_path, "is a directory")
    empty = tmp_path / "empty.pkl"
    empty.write_bytes(b"")
    _error(empty, "is empty", "fetch it again")


def test_unknown_bytes_list_the_supported_formats(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"GIF89a" + os.urandom(64))
    msg = _error(path, "unknown format", "rosinality", "NVlabs", "gandapt native")
    assert sniff(path) == "unknown"
    assert "supported formats" in msg


def test_domain_pack_and_plain_safetensors(tmp_path):
    pack = _safetensors(tmp_path / "styles.safetensors", {"gandapt_format": "gandapt.domain-pack", "format_version": "1"})
    assert sniff(pack) == "domain-pack"
    _error(pack, "is a domain pack, not a checkpoint", "--domains")
    plain = _safetensors(tmp_path / "model.safetensors", {"format": "pt"})
    assert sniff(plain) == "safetensors"
    _error(plain, "safetensors", "supported formats")


def test_torch_files_of_other_kinds(tmp_path):
    torch.save([1, 2], tmp_path / "list.pt")
    _error(tmp_path / "list.pt", "holds a list, not a checkpoint")
    torch.save({"optimizer": {}, "epoch": 3}, tmp_path / "other.pt")
    _error(tmp_path / "other.pt", "'optimizer'", "no known checkpoint format")
    torch.save({"conv.weight": torch.ones(1)}, tmp_path / "bare.pt")
    _error(tmp_path / "bare.pt", "bare state dict")
    torch.save({"g": {}, "d": {}}, tmp_path / "g_only.pt")
    _error(tmp_path / "g_only.pt", "no g_ema")


def test_pickle_that_is_not_a_network_pickle(tmp_path):
    path = tmp_path / "data.pkl"
    path.write_bytes(pickle.dumps({"a": [1, 2.0, "x"]}, protocol=4))
    _error(path, "not an NVlabs network pickle", "G_ema")
    path.write_bytes(pickle.dumps({"G_ema": 1}, protocol=2, fix_imports=False))
    _error(path, "not an NVlabs network pickle")


def test_pickle_with_persistent_ids_is_corrupt(tmp_path):
    class P(pickle.Pickler):
        def persistent_id(self, obj):
            return "x" if isinstance(obj, list) else None

    buf = io.BytesIO()
    P(buf, protocol=4).dump({"G_ema": [1]})
    path = tmp_path / "pid.pkl"
    path.write_bytes(buf.getvalue())
    _error(path, "persistent ids")


@needs_golden
@pytest.mark.parametrize("name", ["rosinality_g64.pt", "nvlabs_g64.pt", "nvlabs_g64_network_snapshot.pkl"])
@pytest.mark.parametrize("keep", [0.5, 0.02])
def test_truncated_files(tmp_path, name, keep):
    data = (GOLDEN / name).read_bytes()
    path = tmp_path / name
    path.write_bytes(data[: int(len(data) * keep)])
    _error(path, "truncated or corrupt", "download or copy it again")


@needs_golden
def test_corrupt_zip_member(tmp_path):
    data = bytearray((GOLDEN / "rosinality_g64.pt").read_bytes())
    start = data.index(b"data.pkl") + 100  # scribble over the pickle inside the archive
    data[start:start + 64] = os.urandom(64)
    path = tmp_path / "scribbled.pt"
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError) as err:
        load(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


# ---- state dicts that do not fit together ------------------------------------------------------------
@pytest.fixture(scope="module")
def nv():
    if not (GOLDEN / "README.md").exists():
        pytest.skip(f"golden vectors not found at {GOLDEN} (set GANDAPT_GOLDEN)")
    return torch.load(GOLDEN / "nvlabs_g64.pt", weights_only=True)


@pytest.fixture(scope="module")
def ros():
    if not (GOLDEN / "README.md").exists():
        pytest.skip(f"golden vectors not found at {GOLDEN} (set GANDAPT_GOLDEN)")
    return torch.load(GOLDEN / "rosinality_g64.pt", weights_only=True)


def _edit(obj, section, key, value):
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in obj.items()}
    if value is None:
        del out[section][key]
    else:
        out[section][key] = value
    return out


def test_nvlabs_shape_mismatch(tmp_path, nv):
    path = tmp_path / "bad.pt"
    torch.save(_edit(nv, "G_ema", "synthesis.b32.conv1.bias", torch.zeros(31)), path)
    msg = _error(path)
    assert msg == (f"checkpoint {path}: tensor G_ema['synthesis.b32.conv1.bias'] has shape [31] but the "
                   "architecture read from the other tensors needs [32]")
    torch.save(_edit(nv, "D", "b4.fc.weight", torch.zeros(64, 1000)), path)
    _error(path, "tensor D['b4.fc.weight'] has shape [64, 1000]", "needs [64, 1024]")


def test_nvlabs_missing_and_unexpected_tensors(tmp_path, nv):
    path = tmp_path / "bad.pt"
    torch.save(_edit(nv, "G_ema", "synthesis.b16.conv0.noise_const", None), path)
    _error(path, "tensor G_ema['synthesis.b16.conv0.noise_const'] is missing", "[16, 16]")
    torch.save(_edit(nv, "G_ema", "synthesis.b16.extra.weight", torch.zeros(3)), path)
    _error(path, "unexpected tensor G_ema['synthesis.b16.extra.weight']")
    torch.save(_edit(nv, "G_ema", "mapping.fc0.weight", None), path)
    _error(path, "mapping.fc0.weight", "missing")
    torch.save(_edit(nv, "G_ema", "synthesis.b8.conv1.weight", torch.zeros(64, 64)), path)
    _error(path, "synthesis.b8.conv1.weight", "[64, 64]", "4 dimensions")


def test_nvlabs_hyper_parameters(tmp_path, nv):
    path = tmp_path / "bad.pt"
    kw = {k: dict(v) for k, v in nv["init_kwargs"].items()}
    torch.save({**nv, "init_kwargs": {**kw, "G_ema": {**kw["G_ema"], "c_dim": 5}}}, path)
    _error(path, "conditional", "c_dim=5", "unconditional")
    torch.save({**nv, "init_kwargs": {**kw, "D": {**kw["D"], "architecture": "skip"}}}, path)
    _error(path, "architecture 'skip'", "resnet")
    torch.save({k: v for k, v in nv.items() if k != "init_kwargs"}, path)
    _error(path, "init_kwargs")
    torch.save(_edit(nv, "G_ema", "synthesis.b8.conv0.resample_filter", torch.ones(4, 4)), path)
    _error(path, "resample_filter", "[1,3,3,1]")
    torch.save(_edit(nv, "G_ema", "synthesis.input.affine.weight", torch.ones(4, 64)), path)
    _error(path, "StyleGAN3")
    torch.save(_edit(nv, "G_ema", "synthesis.b4.const", torch.ones(64, 4, 4, dtype=torch.int64)), path)
    _error(path, "dtype torch.int64")
    torch.save(_edit(nv, "G_ema", "synthesis.b4.const", "not a tensor"), path)
    _error(path, "is a str, not a tensor")


def test_rosinality_errors_name_rosinality_keys(tmp_path, ros):
    path = tmp_path / "bad.pt"
    torch.save(_edit(ros, "g_ema", "to_rgbs.1.bias", torch.zeros(1, 4, 1, 1)), path)
    msg = _error(path)
    assert msg == (f"checkpoint {path}: tensor g_ema['to_rgbs.1.bias'] has shape [1, 4, 1, 1] but the "
                   "architecture read from the other tensors needs [1, 3, 1, 1]")
    torch.save(_edit(ros, "g_ema", "convs.6.conv.weight", torch.zeros(1, 32, 60, 3, 3)), path)
    _error(path, "g_ema['convs.6.conv.weight'] has shape [1, 32, 60, 3, 3]", "needs [1, 32, 64, 3, 3]")
    torch.save(_edit(ros, "g_ema", "noises.noise_3", None), path)
    _error(path, "g_ema['noises.noise_3'] is missing", "[1, 1, 16, 16]")
    torch.save(_edit(ros, "g_ema", "convs.2.noise.weight", None), path)
    _error(path, "g_ema['convs.2.noise.weight'] is missing", "[1]")
    torch.save(_edit(ros, "g_ema", "to_rgb1.noise.weight", torch.zeros(1)), path)
    _error(path, "unexpected tensor g_ema['to_rgb1.noise.weight']")
    torch.save(_edit(ros, "d", "convs.2.conv2.1.weight", torch.zeros(64, 64, 3, 2)), path)
    _error(path, "d['convs.2.conv2.1.weight'] has shape [64, 64, 3, 2]", "needs [64, 64, 3, 3]")
    torch.save(_edit(ros, "d", "convs.3.skip.1.weight", None), path)
    _error(path, "d['convs.3.skip.1.weight'] is missing")
    torch.save(_edit(ros, "g_ema", "convs.0.conv.blur.kernel", torch.ones(4, 4)), path)
    _error(path, "blur kernel")
    torch.save({**ros, "latent_avg": torch.zeros(63)}, path)
    _error(path, "latent_avg has shape [63]", "needs [64]")


def test_generator_and_discriminator_must_agree(tmp_path, ros, nv):
    path = tmp_path / "mixed.pt"
    d32 = {k: v for k, v in ros["d"].items() if not k.startswith("convs.4.")}  # a 32 px D, widths 64
    d32["convs.0.0.weight"] = torch.zeros(64, 3, 1, 1)
    d32["convs.0.1.bias"] = torch.zeros(64)
    d32["convs.1.conv1.0.weight"], d32["convs.1.conv1.1.bias"] = torch.zeros(64, 64, 3, 3), torch.zeros(64)
    d32["convs.1.conv2.1.weight"], d32["convs.1.skip.1.weight"] = torch.zeros(64, 64, 3, 3), torch.zeros(64, 64, 1, 1)
    torch.save({**ros, "d": d32}, path)
    _error(path, "64 px", "32 px", "mixes two networks")
