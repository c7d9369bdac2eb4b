"""Atomic writes: no clobbering without force, nothing half-written on failure, normal permissions."""

import os
import stat

import pytest

from gandapt.errors import GandaptError
from gandapt.io import atomic_path, atomic_write_bytes


def test_refuses_existing_without_force(tmp_path):
    p = tmp_path / "a.bin"
    atomic_write_bytes(p, b"one")
    with pytest.raises(GandaptError, match="already exists; pass --force"):
        atomic_write_bytes(p, b"two")
    atomic_write_bytes(p, b"two", force=True)
    assert p.read_bytes() == b"two"
    assert stat.S_IMODE(os.stat(p).st_mode) & 0o044  # readable by others, unlike mkstemp's 0600


def test_failure_leaves_old_file_and_no_temp(tmp_path):
    p = tmp_path / "a.bin"
    atomic_write_bytes(p, b"good")
    with pytest.raises(RuntimeError):
        with atomic_path(p, force=True) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("crash mid-write")
    assert p.read_bytes() == b"good"
    assert [q.name for q in tmp_path.iterdir()] == ["a.bin"]


def test_directory_target_and_parent_creation(tmp_path):
    with pytest.raises(GandaptError, match="is a directory"):
        atomic_write_bytes(tmp_path, b"x")
    atomic_write_bytes(tmp_path / "new" / "deep" / "f.bin", b"x")
    assert (tmp_path / "new" / "deep" / "f.bin").read_bytes() == b"x"
