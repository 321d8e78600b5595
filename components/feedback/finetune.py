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

import dataclasses
import hashlib
import json
import logging
import random
import shutil
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

from components.feedback.review import read_pairs
from components.feedback.versions import GeneratorVersions
from components.generator import corpus as corpus_lib
from components.generator.config import TrainConfig
from components.generator.generator import ADAPTER_OF, Generator, is_adapter, read_meta
from components.generator.guardrails import sentence_keys
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


@dataclass(frozen=True)
class LoraSettings:
    """A LoRA adapter (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models").

    Each adapted weight W (d_out, d_in) gets a trainable update B A, with A
    (r, d_in) and B (d_out, r), scaled by ``alpha / r``; W stays frozen, so the
    optimiser keeps state for r (d_in + d_out) numbers per matrix instead of
    d_in d_out. r 8 and alpha 16 are the common starting point of the paper's
    experiments (r 1-64 reached full fine-tuning quality on GPT-3) and peft's
    examples; "all-linear" adapts every linear layer but the output head.
    """

    r: int = 8  # rank of the update
    alpha: int = 16  # scale alpha / r
    dropout: float = 0.05  # on the adapter's input, in training only
    target_modules: str = "all-linear"  # peft's name for every linear layer but lm_head

    def __post_init__(self) -> None:
        if not isinstance(self.r, int) or self.r < 1:
            raise ValueError(f"LoRA rank r has to be an integer >= 1, got {self.r!r}; 8 is usual.")
        if not self.alpha > 0:
            raise ValueError(f"LoRA alpha has to be > 0, got {self.alpha!r}; 2 * r is usual.")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"LoRA dropout has to be in [0, 1), got {self.dropout!r}.")

    def attach(self, model):
        """``model`` wrapped as peft's ``PeftModel`` with a fresh, trainable adapter."""
        from peft import LoraConfig, get_peft_model

        return get_peft_model(model, LoraConfig(
            r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout,
            target_modules=self.target_modules, task_type="CAUSAL_LM"))


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
             repeats: int = 4, progress: bool = True,
             lora: Optional[LoraSettings] = None) -> Dict[str, Any]:
    """Fine-tunes ``base`` on ``<dataset>/train.jsonl``; writes ``out_dir``; returns its meta.

    With ``lora``, only a LoRA adapter is trained and ``out_dir`` holds the
    adapter (a few MB) with ``adapter_of`` naming the full model it adapts;
    ``Generator.load`` merges them. A base that is itself an adapter goes on
    training that adapter, on the same full model. Without ``lora`` an adapter
    base is merged first and every weight is trained.

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
    base_meta = read_meta(base)
    adapter_of = None
    if lora is not None:
        generator = Generator.load(base, merge=False)  # an adapter base stays trainable
        if is_adapter(base):
            adapter_of = base_meta[ADAPTER_OF]
        else:
            adapter_of = {"version": generator.model_version, "path": str(Path(base).resolve())}
            generator.model = lora.attach(generator.model)
    else:
        generator = Generator.load(base)
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

    lora_part = [json.dumps(dataclasses.asdict(lora), sort_keys=True)] if lora else []
    version = trainer.version_id(generator.model_id, json.dumps(data_files, sort_keys=True),
                               json.dumps(cfg.to_dict(), sort_keys=True),
                               generator.model_version, trainer.TRAINING_CODE_VERSION,
                               *lora_part)
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
    if adapter_of is not None:
        meta[ADAPTER_OF] = adapter_of
        meta["lora"] = dataclasses.asdict(lora) if lora is not None else None
        meta["trainable_parameters"] = sum(p.numel() for p in model.parameters()
                                           if p.requires_grad)
    # The fluency gate of a built-in base learns the reviewed replies too.
    known = (None if generator.known_sentences is None else
             set(generator.known_sentences) | sentence_keys([r for _, r in train_examples]))
    trainer.save_checkpoint(model, tok, meta, out_dir, known)  # a PeftModel: its adapter only
    shutil.rmtree(checkpoints, ignore_errors=True)  # done: nothing left to resume
    return meta


def _read_manifest(dataset: Path) -> Optional[Dict[str, Any]]:
    path = dataset / "manifest.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
