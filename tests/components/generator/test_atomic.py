"""atomic_dir and atomic_write_text: all of the new output or none of it."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from components.generator.atomic import atomic_dir, atomic_write_text


def names(folder: Path):
    return sorted(p.name for p in folder.iterdir())


def test_the_folder_appears_only_when_the_block_succeeds(tmp_path):
    target = tmp_path / "deep" / "out"
    with atomic_dir(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith(".out-")
        (tmp / "a.txt").write_text("a")
        assert not target.exists()
    assert names(target) == ["a.txt"]
    assert names(tmp_path / "deep") == ["out"]


def test_an_exception_leaves_no_target_and_no_temp_folder(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_dir(target) as tmp:
            (tmp / "half.txt").write_text("half")
            raise RuntimeError("boom")
    assert names(tmp_path) == []


def test_an_exception_leaves_an_existing_target_as_it_was(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_dir(target, replace=True) as tmp:
            (tmp / "new.txt").write_text("new")
            raise KeyboardInterrupt
    assert names(tmp_path) == ["out"] and names(target) == ["old.txt"]


def test_replace_swaps_in_the_new_folder_and_removes_the_old_one(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with atomic_dir(target, replace=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert names(tmp_path) == ["out"] and names(target) == ["new.txt"]


def test_without_replace_an_existing_target_is_an_error_and_kept(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(FileExistsError):
        with atomic_dir(target) as tmp:
            (tmp / "new.txt").write_text("new")
    assert names(tmp_path) == ["out"] and names(target) == ["old.txt"]


def test_a_file_is_never_replaced_by_a_folder(tmp_path):
    target = tmp_path / "out"
    target.write_text("a file")
    with pytest.raises(NotADirectoryError):
        with atomic_dir(target, replace=True):
            pass
    assert names(tmp_path) == ["out"] and target.read_text() == "a file"


def test_removing_the_temp_folder_publishes_nothing(tmp_path):
    import shutil

    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "a.txt").write_text("a")
        shutil.rmtree(tmp)
    assert names(tmp_path) == []


def test_a_failed_rename_puts_the_old_folder_back(tmp_path, monkeypatch):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    real_rename = Path.rename

    def rename(self, dest):
        if self.name.startswith(".out-") and "-old-" not in self.name:
            raise OSError("disk gone")
        return real_rename(self, dest)

    monkeypatch.setattr(Path, "rename", rename)
    with pytest.raises(OSError, match="disk gone"):
        with atomic_dir(target, replace=True) as tmp:
            (tmp / "new.txt").write_text("new")
    assert names(tmp_path) == ["out"] and names(target) == ["old.txt"]


def test_write_text_replaces_the_file_and_keeps_newlines(tmp_path):
    path = tmp_path / "review.csv"
    path.write_text("old")
    atomic_write_text(path, "a,b\r\n1,2\r\n")
    assert path.read_bytes() == b"a,b\r\n1,2\r\n"
    assert names(tmp_path) == ["review.csv"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "state.json"
    path.write_text("old")

    def replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(path, "new")
    assert names(tmp_path) == ["state.json"] and path.read_text() == "old"


def test_write_text_does_not_create_folders(tmp_path):
    with pytest.raises(FileNotFoundError):
        atomic_write_text(tmp_path / "missing" / "state.json", "{}")
    assert names(tmp_path) == []
