"""Atomic writes and hashing: a failed write leaves the old file and no temp behind."""

from __future__ import annotations

import hashlib
import os
import stat

import pytest
from er_core import atomic_dir, atomic_path, sha256_bytes, sha256_file, write_bytes_atomic


class Boom(Exception):
    pass


def test_atomic_path_renames_on_success(tmp_path):
    target = tmp_path / "sub" / "out.bin"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp != target
        tmp.write_bytes(b"new")
        assert not target.exists()  # nothing visible until the block ends
    assert target.read_bytes() == b"new"
    assert os.listdir(target.parent) == ["out.bin"]


def test_atomic_path_failure_keeps_old_file_and_no_temp(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(Boom), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise Boom
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_atomic_path_failure_with_no_old_file(tmp_path):
    with pytest.raises(Boom), atomic_path(tmp_path / "out.bin") as tmp:
        tmp.write_bytes(b"half")
        raise Boom
    assert os.listdir(tmp_path) == []


def test_atomic_outputs_get_the_usual_permissions(tmp_path):
    # a temp file is private (0600); the output must be readable like any file open() makes
    mask = os.umask(0o022)
    try:
        write_bytes_atomic(tmp_path / "f.bin", b"x")
        with atomic_dir(tmp_path / "d") as d:
            (d / "g").write_bytes(b"y")
    finally:
        os.umask(mask)
    assert stat.S_IMODE((tmp_path / "f.bin").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o755


def test_write_bytes_atomic_replaces(tmp_path):
    p = tmp_path / "x.txt"
    write_bytes_atomic(p, b"one")
    write_bytes_atomic(p, b"two")
    assert p.read_bytes() == b"two"
    assert os.listdir(tmp_path) == ["x.txt"]


def test_atomic_dir_success(tmp_path):
    final = tmp_path / "abc"
    with atomic_dir(final) as tmp:
        assert tmp != final and tmp.parent == tmp_path
        (tmp / "a.txt").write_text("a")
        assert not final.exists()
    assert (final / "a.txt").read_text() == "a"
    assert os.listdir(tmp_path) == ["abc"]


def test_atomic_dir_failure_leaves_nothing(tmp_path):
    with pytest.raises(Boom), atomic_dir(tmp_path / "abc") as tmp:
        (tmp / "a.txt").write_text("half")
        raise Boom
    assert os.listdir(tmp_path) == []


def test_atomic_dir_failure_keeps_existing_folder(tmp_path):
    final = tmp_path / "abc"
    final.mkdir()
    (final / "a.txt").write_text("old")
    with pytest.raises(Boom), atomic_dir(final) as tmp:
        (tmp / "a.txt").write_text("new")
        raise Boom
    assert (final / "a.txt").read_text() == "old"
    assert os.listdir(tmp_path) == ["abc"]


def test_atomic_dir_when_an_identical_run_finished_first(tmp_path):
    final = tmp_path / "abc"
    with atomic_dir(final) as tmp:
        (tmp / "a.txt").write_text("mine")
        # another run renames its folder into place meanwhile
        final.mkdir()
        (final / "a.txt").write_text("theirs")
    assert (final / "a.txt").read_text() == "theirs"
    assert os.listdir(tmp_path) == ["abc"]  # our temp folder is gone


def test_sha256(tmp_path):
    data = bytes(range(256)) * 5000  # > one read chunk
    p = tmp_path / "blob"
    p.write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()
    assert sha256_file(p) == expected
    assert sha256_bytes(data) == expected
    # the empty string's sha256, a well-known constant
    (tmp_path / "empty").write_bytes(b"")
    assert (
        sha256_file(tmp_path / "empty")
        == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )


def test_a_full_disk_names_the_file_being_written(tmp_path):
    import subprocess

    from er_core import ErError, write_bytes_atomic

    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], check=False)
    if r.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        with pytest.raises(ErError) as e:
            write_bytes_atomic(mnt / "out.bin", b"x" * (1 << 20))
        assert e.value.lines() == [
            f"error: no space left on the device, at {mnt / 'out.bin'}",
            "hint: free some space, or write to another disk",
        ]
        assert list(mnt.iterdir()) == []  # no temporary file left behind
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
