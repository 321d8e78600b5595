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


# --- LoRA adapters (finetune --lora) -------------------------------------------------

LORA = ft.LoraSettings(r=4, alpha=8)


@pytest.fixture
def adapter(tiny_checkpoint, dataset, tmp_path) -> Path:
    out = tmp_path / "adapter"
    ft.finetune(tiny_checkpoint, dataset, out, {**TINY, "learning_rate": 1e-2}, progress=False,
                lora=LORA)
    return out


def test_lora_trains_a_small_adapter_that_loads_merged_on_its_base(adapter, tiny_checkpoint):
    from components.generator.generator import ADAPTER_OF, is_adapter, read_meta

    assert is_adapter(adapter) and not (adapter / "model.safetensors").exists()
    meta = read_meta(adapter)
    base = Generator.load(tiny_checkpoint)
    assert meta[ADAPTER_OF] == {"version": base.model_version,
                                "path": str(tiny_checkpoint.resolve())}
    assert 0 < meta["trainable_parameters"] < meta["n_parameters"] / 5
    assert meta["lora"]["r"] == 4
    merged = Generator.load(adapter)
    assert merged.model_version == meta["version"] != base.model_version
    assert type(merged.model) is type(base.model)  # merged: a plain model, no peft wrapper
    changed = [name for name, weight in merged.model.state_dict().items()
               if not torch.equal(weight, base.model.state_dict()[name])]
    assert changed, "the trained adapter did not change the merged weights"
    reply = merged.generate([trainer_turn("Do you sell gift cards 3?")])
    assert reply.generated_tokens >= 1


def trainer_turn(text):
    from components.generator.prompt import Turn

    return Turn("user", text)


def test_full_and_lora_fine_tunes_of_the_same_data_are_different_versions(
        tiny_checkpoint, dataset, tmp_path, adapter):
    full = ft.finetune(tiny_checkpoint, dataset, tmp_path / "full",
                       {**TINY, "learning_rate": 1e-2}, progress=False)
    from components.generator.generator import read_meta

    assert full["version"] != read_meta(adapter)["version"]


def test_an_adapter_base_goes_on_training_the_same_adapter(adapter, dataset, tmp_path):
    from components.generator.generator import ADAPTER_OF, read_meta

    second = tmp_path / "second"
    meta = ft.finetune(adapter, dataset, second, TINY, progress=False, lora=LORA)
    assert meta[ADAPTER_OF] == read_meta(adapter)[ADAPTER_OF]
    assert meta["base_version"] == read_meta(adapter)["version"]
    Generator.load(second)


def test_versions_keep_the_base_beside_the_adapter_for_promote_and_rollback(
        tiny_checkpoint, dataset, tmp_path):
    import shutil

    from components.generator.generator import read_meta

    base = tmp_path / "downloaded-base"  # a base folder that is later deleted
    shutil.copytree(tiny_checkpoint, base)
    adapter = tmp_path / "adapter"
    ft.finetune(base, dataset, adapter, TINY, progress=False, lora=LORA)
    versions = GeneratorVersions(tmp_path / "versions")
    base_version = Generator.load(base).model_version
    versions.promote(base)
    versions.promote(adapter)
    shutil.rmtree(base)
    assert versions.current().name == read_meta(adapter)["version"]
    assert (tmp_path / "versions" / base_version / "model.safetensors").is_file()
    # The adapter loads from the versions folder, where its base was copied beside it.
    assert Generator.load(tmp_path / "versions" / "current").model_version == \
        read_meta(adapter)["version"]
    versions.rollback()
    assert versions.current().name == base_version


def test_an_adapter_without_its_base_is_refused_with_the_places_tried(adapter, tmp_path):
    import json as json_lib

    from components.generator.generator import GeneratorLoadError, META_FILE

    meta_file = adapter / META_FILE
    meta = json_lib.loads(meta_file.read_text())
    meta["adapter_of"] = {"version": "nowhere-v1", "path": str(tmp_path / "deleted")}
    meta_file.write_text(json_lib.dumps(meta))
    with pytest.raises(GeneratorLoadError, match="its base model is not at"):
        Generator.load(adapter)


def test_evaluate_compares_base_plus_adapter_with_the_current_version(
        adapter, tiny_checkpoint, dataset, tmp_path):
    from components.feedback import evaluate as ev

    root = Path(__file__).resolve().parents[3]
    heldout = tmp_path / "heldout.jsonl"
    heldout.write_text((dataset / "train.jsonl").read_text().replace(
        '"reply_id"', '"source": "correction", "model_version": null, "reply_id"'))
    decision = ev.evaluate_candidate(tiny_checkpoint, adapter, heldout, tmp_path / "report",
                                     max_new_tokens=6, progress=False,
                                     domain_path=root / "domain.yml",
                                     endpoints_path=root / "endpoints.yml")
    from components.generator.generator import read_meta

    assert decision["candidate_version"] == read_meta(adapter)["version"]
    # Trained on these pairs, base + adapter fits them better than the base alone.
    assert (decision["metrics"]["candidate"]["perplexity"]
            < decision["metrics"]["current"]["perplexity"])
