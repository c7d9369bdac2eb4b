"""Atomic writes: no clobbering without force, nothing half-written on failure, normal permissions."""

import os
import stat

import pytest

from gandapt.errors import GandaptError
from gandapt.io import atomic_path, atomic_write_bytes, make_dir, temp_beside


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


def test_an_output_below_a_file_or_in_an_unwritable_folder_fails_in_one_line(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(GandaptError, match=r"cannot create folder .*notes.txt/sub: .*notes.txt is a file"):
        atomic_write_bytes(tmp_path / "notes.txt" / "sub" / "f.png", b"x")
    with pytest.raises(GandaptError, match=r"cannot create folder .*notes.txt: .*notes.txt is a file"):
        make_dir(tmp_path / "notes.txt")
    if os.path.isdir("/proc/self"):  # a folder no file can be created in, whatever the user
        with pytest.raises(GandaptError, match=r"^cannot write /proc/x.png: .* in /proc; choose another output path$"):
            atomic_write_bytes("/proc/x.png", b"x")
        with pytest.raises(GandaptError, match=r"^cannot write /proc/bundle: "):
            temp_beside("/proc/bundle", ".partial", directory=True)


def test_temp_beside_names_its_files_after_the_target(tmp_path):
    f = temp_beside(tmp_path / "out" / "clip.mp4", ".partial.mp4", prefix=".clip.")
    d = temp_beside(tmp_path / "bundle", ".partial", directory=True)
    assert f.is_file() and f.parent == tmp_path / "out" and f.name.startswith(".clip.") and f.name.endswith(".mp4")
    assert d.is_dir() and d.name.startswith(".bundle.") and d.name.endswith(".partial")
