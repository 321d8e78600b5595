"""Promotion and roll-back of generator versions."""
from __future__ import annotations

import shutil

import pytest

from components.feedback.versions import GeneratorVersions, VersionError
from components.generator.generator import read_meta, write_meta


def _version(src, tmp_path, name):
    folder = tmp_path / name
    shutil.copytree(src, folder)
    write_meta(folder, {**read_meta(folder), "model_id": "tiny", "version": name})
    return folder


def test_promote_then_roll_back(tiny_checkpoint, tmp_path):
    versions = GeneratorVersions(tmp_path / "generators")
    assert versions.current() is None
    with pytest.raises(VersionError, match="Nothing to roll back"):
        versions.rollback()
    a, b, c = (_version(tiny_checkpoint, tmp_path, n) for n in ("tiny-a", "tiny-b", "tiny-c"))
    versions.promote(a)
    with pytest.raises(VersionError, match="first promoted"):
        versions.rollback()
    entry = versions.promote(b, reason="better perplexity")
    assert entry["previous"] == "tiny-a" and versions.current_version() == "tiny-b"
    with pytest.raises(VersionError, match="already the current"):
        versions.promote(b)
    versions.promote(c)
    assert versions.rollback()["version"] == "tiny-b"
    assert versions.rollback()["version"] == "tiny-a"
    assert versions.current().name == "tiny-a"
    assert [e["action"] for e in versions.history()] == ["promote"] * 3 + ["rollback"] * 2
    assert (versions.root / "current").is_symlink()


def test_promoted_generator_is_what_the_policy_packs(tiny_checkpoint, tmp_path):
    from components.generator.build import effective_base

    versions = GeneratorVersions(tmp_path / "generators")
    config = {"promoted": str(versions.root / "current"), "base_model": None, "finetune": True}
    assert effective_base(config) == (None, True)
    versions.promote(_version(tiny_checkpoint, tmp_path, "tiny-a"))
    base, finetune = effective_base(config)
    assert base.endswith("tiny-a") and finetune is False
