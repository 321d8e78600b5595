"""Fine-tuning a tiny checkpoint on feedback pairs: provenance, resume, base resolution."""
from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from components.feedback import finetune as ft
from components.feedback.versions import GeneratorVersions
from components.generator import train as trainer
from components.generator.generator import Generator

TINY = {"epochs": 3, "batch_size": 2, "max_seq_len": 64, "warmup_steps": 1, "patience": 5,
        "learning_rate": 1e-3}


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    folder = tmp_path / "dataset"
    folder.mkdir()
    pairs = [{"reply_id": f"r{i}", "reply": f"Gift cards start at ${10 + i}.",
              "context": [{"role": "user", "text": f"Do you sell gift cards {i}?"}]}
             for i in range(8)]
    (folder / "train.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    (folder / "manifest.json").write_text('{"train": 8}')
    return folder


def _weights(folder: Path):
    return load_file(str(folder / "model.safetensors"))


def test_finetune_writes_a_new_version_with_provenance(tiny_checkpoint, dataset, tmp_path):
    out = tmp_path / "candidate"
    meta = ft.finetune(tiny_checkpoint, dataset, out, TINY, progress=False)
    loaded = Generator.load(out)
    base = Generator.load(tiny_checkpoint)
    assert loaded.model_version == meta["version"] != base.model_version
    assert meta["base_version"] == base.model_version
    assert str(dataset / "train.jsonl") in meta["finetuned_on"]
    assert meta["dataset_manifest"] == {"train": 8}
    assert meta["train_config"]["learning_rate"] == 1e-3
    changed = any(not torch.equal(a, b) for a, b in
                  zip(_weights(out).values(), load_file(str(tiny_checkpoint / "model.safetensors")).values()))
    assert changed, "fine-tuning did not change the weights"
    assert not (tmp_path / ".candidate.ckpt").exists()  # cleaned up once finished


def test_an_interrupted_run_resumes_to_the_same_weights(tiny_checkpoint, dataset, tmp_path,
                                                        monkeypatch):
    reference = tmp_path / "reference"
    ft.finetune(tiny_checkpoint, dataset, reference, TINY, progress=False)

    real = trainer.evaluate_loss
    calls = {"n": 0}

    def crash_in_second_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    resumed = tmp_path / "resumed"
    monkeypatch.setattr(trainer, "evaluate_loss", crash_in_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        ft.finetune(tiny_checkpoint, dataset, resumed, TINY, progress=False)
    assert (tmp_path / ".resumed.ckpt" / trainer.CHECKPOINT_FILE).is_file()
    assert not resumed.exists()  # nothing half-written
    monkeypatch.setattr(trainer, "evaluate_loss", real)
    meta = ft.finetune(tiny_checkpoint, dataset, resumed, TINY, progress=False)
    assert meta["epochs"] == 3
    for name, tensor in _weights(reference).items():
        assert torch.equal(tensor, _weights(resumed)[name]), name


def test_empty_dataset_is_refused(tiny_checkpoint, tmp_path):
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "train.jsonl").write_text("")
    with pytest.raises(ft.FinetuneError, match="no training pairs"):
        ft.finetune(tiny_checkpoint, tmp_path / "ds", tmp_path / "out", TINY)


def test_base_comes_from_the_model_archive_first(tiny_checkpoint, tmp_path):
    archive = tmp_path / "kestrel.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tiny_checkpoint, arcname="components/train_GPTPolicy3/generator")
        tar.add(tiny_checkpoint / "config.json", arcname="metadata.json")
    versions = GeneratorVersions(tmp_path / "generators")
    base = ft.resolve_base(versions, archive=archive)
    assert base.parent == versions.root and Generator.load(base)
    with pytest.raises(ft.FinetuneError, match="make train"):
        ft.resolve_base(GeneratorVersions(tmp_path / "g2"), archive=tmp_path / "missing.tar.gz")
