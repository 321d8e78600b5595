"""Fine-tuning the current generator on reviewed feedback pairs.

    python -m components.feedback finetune --dataset feedback/dataset --out feedback/candidate

The base is the promoted generator (``models/generators/current``) or, before
the first promotion, the generator inside the trained model archive
(``models/kestrel.tar.gz``), which is registered as a version so that a later
promotion can be rolled back to it.

Training uses ``components.generator.train.fit``: a seeded train/validation
split of ``train.jsonl``, early stopping on validation loss, a progress bar,
and a checkpoint after every epoch in ``<out>.ckpt/``; running the same
command again after an interruption resumes from it. The result is a new
checkpoint folder whose ``generator_meta.json`` records its provenance: base
version, dataset files with their SHA-256, training config and code version.
"""
from __future__ import annotations

import hashlib
import json
import logging
import random
import shutil
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

from components.feedback.review import read_pairs
from components.feedback.versions import GeneratorVersions
from components.generator import corpus as corpus_lib
from components.generator.config import TrainConfig
from components.generator.generator import Generator, read_meta
from components.generator.prompt import Turn

logger = logging.getLogger(__name__)

DEFAULT_ARCHIVE = Path("models/kestrel.tar.gz")
# Fine-tuning defaults. 3e-4, not the 5e-5 usual for large checkpoints: on the
# 2.4M-parameter built-in model (trained from scratch at 1e-3), 5e-5 for 8 epochs
# left held-out relevance worse (0.242 -> 0.171) while 3e-4 improved it
# (0.242 -> 0.259) on the README's demo data. Lower it for big checkpoints.
FINETUNE_DEFAULTS = {"learning_rate": 3e-4, "epochs": 8, "patience": 2, "warmup_steps": 10,
                     "val_fraction": 0.15}


class FinetuneError(RuntimeError):
    """Fine-tuning cannot start; the message says what is missing."""


def extract_archive_generator(archive: Union[str, Path], out_dir: Path) -> Path:
    """Copies the generator folder out of a Rasa model archive into ``out_dir``.

    Raises:
        FinetuneError: if the archive is missing or holds no generator.
    """
    archive = Path(archive)
    if not archive.is_file():
        raise FinetuneError(f"No promoted generator and no model archive '{archive}': run "
                            f"`make train` first, or pass --base PATH.")
    with tarfile.open(archive, "r:gz") as tar:
        metas = [m for m in tar.getmembers() if m.name.endswith("/generator/config.json")]
        if not metas:
            raise FinetuneError(f"'{archive}' holds no GPT policy generator.")
        prefix = metas[0].name[: -len("config.json")]
        members = [m for m in tar.getmembers() if m.name.startswith(prefix) and m.isfile()]
        for m in members:
            m.name = m.name[len(prefix):]
        tar.extractall(out_dir, members=members, filter="data")
    return out_dir


def resolve_base(versions: GeneratorVersions, base: Optional[Union[str, Path]] = None,
                 archive: Union[str, Path] = DEFAULT_ARCHIVE) -> Path:
    """The checkpoint to start from, registered in ``versions`` (see module docstring).

    Raises:
        FinetuneError: if there is no promoted generator, no ``base`` and no archive.
        GeneratorLoadError: if the checkpoint is not a causal LM.
    """
    if base is not None:
        return versions.add(base)
    current = versions.current()
    if current is not None:
        return current
    with tempfile.TemporaryDirectory() as tmp:
        return versions.add(extract_archive_generator(archive, Path(tmp) / "generator"))


def pairs_to_examples(pairs: List[Dict[str, Any]]) -> List[Tuple[List[Turn], str]]:
    """(context turns, reply) examples from dataset pairs; bad roles raise ValueError."""
    return [([Turn(t["role"], t["text"]) for t in p["context"]], p["reply"]) for p in pairs]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def finetune(base: Union[str, Path], dataset: Union[str, Path], out_dir: Union[str, Path],
             overrides: Optional[Dict[str, Any]] = None,
             replay_corpus: Optional[Union[str, Path]] = None,
             repeats: int = 4, progress: bool = True) -> Dict[str, Any]:
    """Fine-tunes ``base`` on ``<dataset>/train.jsonl``; writes ``out_dir``; returns its meta.

    ``replay_corpus`` (e.g. data/generator) mixes the original dialogues into
    the training set, so the generator does not forget them while it learns
    the corrections; each feedback pair is then seen ``repeats`` times per
    epoch, so a few dozen corrections are not drowned by hundreds of corpus
    dialogues (oversampling). ``overrides`` are TrainConfig fields over
    FINETUNE_DEFAULTS.

    Raises:
        FinetuneError: if the dataset has no training pairs.
        ValueError: on a malformed dataset line or an invalid config value.
        GeneratorLoadError: if ``base`` cannot be loaded.
    """
    from components.generator import train as trainer

    started = time.perf_counter()
    dataset, out_dir = Path(dataset), Path(out_dir)
    train_file = dataset / "train.jsonl"
    if not train_file.is_file():
        raise FinetuneError(f"'{train_file}' does not exist; build it with "
                            f"`python -m components.feedback dataset`.")
    pairs = read_pairs(train_file)
    if not pairs:
        raise FinetuneError(f"'{train_file}' has no training pairs.")
    generator = Generator.load(base)
    base_meta = read_meta(base)
    values = {**FINETUNE_DEFAULTS, **(overrides or {})}
    for key in ("max_seq_len", "max_turns", "system_prompt"):  # keep the base's prompt shape
        if key in base_meta.get("train_config", {}) and key not in (overrides or {}):
            values[key] = base_meta["train_config"][key]
    values["max_seq_len"] = min(values.get("max_seq_len", 160), generator.context_tokens)
    values.setdefault("n_positions", max(values["max_seq_len"], generator.context_tokens))
    cfg = TrainConfig.from_dict(values)
    trainer.seed_everything(cfg.seed)

    examples = pairs_to_examples(pairs)
    random.Random(cfg.seed).shuffle(examples)
    n_val = max(1, int(len(examples) * cfg.val_fraction)) if len(examples) > 1 else 0
    if repeats < 1:
        raise ValueError(f"repeats has to be >= 1, got {repeats!r}.")
    val_examples, train_examples = examples[:n_val], examples[n_val:]
    if replay_corpus is not None:
        train_examples = train_examples * repeats
    data_files = {str(train_file): _sha256(train_file)}
    if replay_corpus is not None:
        dialogues = corpus_lib.load_dialogues(replay_corpus)
        train_examples += corpus_lib.training_examples(dialogues, cfg.max_turns)
        data_files[str(replay_corpus)] = corpus_lib.fingerprint(replay_corpus)
    tok, model = generator.tokenizer, generator.model
    train_x = trainer.encode(tok, train_examples, cfg)
    val_x = trainer.encode(tok, val_examples, cfg)
    logger.info("Fine-tuning %s: %d train / %d val examples.", generator.model_version,
                len(train_x), len(val_x))
    checkpoints = out_dir.parent / f".{out_dir.name}.ckpt"
    summary = trainer.fit(model, tok, train_x, val_x, cfg, progress, checkpoint_dir=checkpoints)

    version = trainer.version_id(generator.model_id, json.dumps(data_files, sort_keys=True),
                               json.dumps(cfg.to_dict(), sort_keys=True),
                               generator.model_version, trainer.TRAINING_CODE_VERSION)
    meta = {
        **{k: base_meta[k] for k in ("system_prompt", "corpus", "corpus_sha256")
           if k in base_meta},
        "model_id": generator.model_id, "version": version,
        "base_model": str(base), "base_version": generator.model_version,
        "finetuned_on": data_files, "dataset_manifest": _read_manifest(dataset),
        "feedback_repeats": repeats if replay_corpus is not None else 1,
        "train_config": cfg.to_dict(), "n_parameters": generator.n_parameters,
        "train_examples": len(train_x), "val_examples": len(val_x), **summary,
        "train_seconds": round(time.perf_counter() - started, 1),
        "training_code_version": trainer.TRAINING_CODE_VERSION,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    trainer.save_checkpoint(model, tok, meta, out_dir)
    shutil.rmtree(checkpoints, ignore_errors=True)  # done: nothing left to resume
    return meta


def _read_manifest(dataset: Path) -> Optional[Dict[str, Any]]:
    path = dataset / "manifest.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
