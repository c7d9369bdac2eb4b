"""The shared one-network file envelope (encoder and domain-encoder files)."""

import pytest
import torch
from torch import nn

from gandapt.checkpoint.module_file import float_state, read_module_file, save_module_file
from gandapt.errors import CheckpointError

WHO = "the net.pt written by gandapt-train net"


def _save(path, **kw):
    net = nn.Linear(3, 2)
    save_module_file(path, "gandapt.test-net", 2, net, {"config": {"n": 3}, "base_fingerprint": "g2:x"}, **kw)
    return net


def test_round_trip_keeps_fields_weights_and_fp16_storage(tmp_path):
    net = _save(tmp_path / "a.pt", extra={"steps": 5})
    obj = read_module_file(tmp_path / "a.pt", "gandapt.test-net", 2, "test net", WHO)
    assert obj["config"] == {"n": 3} and obj["base_fingerprint"] == "g2:x" and obj["extra"] == {"steps": 5}
    assert torch.equal(obj["state_dict"]["weight"], net.weight.detach())
    _save(tmp_path / "h.pt", dtype=torch.float16)
    half = read_module_file(tmp_path / "h.pt", "gandapt.test-net", 2, "test net", WHO)["state_dict"]
    assert half["weight"].dtype == torch.float16 and float_state(half)["weight"].dtype == torch.float32


def test_existing_file_is_kept_without_force(tmp_path):
    _save(tmp_path / "a.pt")
    with pytest.raises(Exception, match="exists"):
        _save(tmp_path / "a.pt")
    _save(tmp_path / "a.pt", force=True)


def test_bad_files_get_one_line_errors(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist.*give the net.pt"):
        read_module_file(tmp_path / "missing.pt", "gandapt.test-net", 2, "test net", WHO)
    (tmp_path / "junk.pt").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match=r"not a readable test net file \(.*\); give the net.pt"):
        read_module_file(tmp_path / "junk.pt", "gandapt.test-net", 2, "test net", WHO)
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"empty.pt is empty \(0 bytes\); give the net.pt"):
        read_module_file(tmp_path / "empty.pt", "gandapt.test-net", 2, "test net", WHO)
    _save(tmp_path / "a.pt")
    with pytest.raises(CheckpointError, match="a gandapt 'gandapt.test-net' file, not an encoder; pass"):
        read_module_file(tmp_path / "a.pt", "gandapt.encoder", 1, "encoder", WHO)
    with pytest.raises(CheckpointError, match="newer than this gandapt reads \\(1\\); upgrade gandapt"):
        read_module_file(tmp_path / "a.pt", "gandapt.test-net", 1, "test net", WHO)
    torch.save({"gandapt_format": "gandapt.test-net", "format_version": "x"}, tmp_path / "v.pt")
    with pytest.raises(CheckpointError, match="format_version is 'x'; the file is corrupt"):
        read_module_file(tmp_path / "v.pt", "gandapt.test-net", 2, "test net", WHO)
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="not a gandapt file, not a test net"):
        read_module_file(tmp_path / "list.pt", "gandapt.test-net", 2, "test net", WHO)
