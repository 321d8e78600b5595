"""Building the GPT policy's generator, or reusing one built from the same inputs.

Rasa retrains every policy when any story or rule changes, because the
training trackers are a policy input. The generator does not depend on them:
its weights depend only on the corpus, the base checkpoint and the training
options. So a built generator is kept in a cache folder under a key hashed
from exactly those inputs, and a later ``rasa train`` with the same inputs
copies it instead of training again (minutes on a CPU).

The settings are the GPT policy's options (config.yml); this module reads
``corpus``, ``base_model``, ``finetune``, ``promoted``, ``train``,
``system_prompt`` and, with ``answer_from_passages``, ``knowledge`` and
``questions`` (the help center and the questions written for it, from which the
generator then learns to answer from passages), and ignores the rest. No Rasa
imports: the policy turns the errors raised here into its own configuration error.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any, Mapping, Optional, Tuple

from components.generator import knowledge
from components.generator import train as trainer
from components.generator.atomic import atomic_dir
from components.generator.config import TrainConfig
from components.generator.corpus import CorpusError, fingerprint
from components.generator.generator import (Generator, is_adapter, read_meta, write_known,
                                            write_meta)

logger = logging.getLogger(__name__)

# The settings the generator's weights depend on, in the cache key. Changing
# this tuple (or how the key is computed) orphans every cached generator.
KEY_SETTINGS = ("corpus", "base_model", "finetune", "train", "system_prompt", "knowledge",
                "questions", "answer_from_passages")


class TrainOptionsError(ValueError):
    """The ``train`` options are not valid ``TrainConfig`` fields; the message says which."""


def generator_cache_dir() -> Path:
    """Where built generators are kept between ``rasa train`` runs.

    Next to Rasa's own cache: ``$RASA_CACHE_DIRECTORY/gpt_policy``, or
    ``.rasa/cache/gpt_policy`` (relative to the working folder) when unset.
    """
    return Path(os.environ.get("RASA_CACHE_DIRECTORY", ".rasa/cache")) / "gpt_policy"


def effective_base(settings: Mapping[str, Any]) -> Tuple[Optional[str], bool]:
    """(checkpoint folder or None, whether to fine-tune it on the corpus).

    The promoted generator wins when its folder exists (resolved to an absolute
    path, used as is); otherwise ``base_model`` and ``finetune`` as configured
    (None: train the built-in model; ``finetune`` defaults to True).
    """
    promoted = settings.get("promoted")
    if promoted and Path(promoted).is_dir():
        return str(Path(promoted).resolve()), False
    return settings.get("base_model"), bool(settings.get("finetune", True))


def inputs_fingerprint(settings: Mapping[str, Any]) -> str:
    """SHA-256 (hex, 64 chars) of the corpus, help center, questions and base checkpoint.

    The corpus is hashed by content ("no-corpus" when it is missing), the help
    center and its questions by ``knowledge``'s fingerprints when the generator
    learns from them (``answer_from_passages``; "-" otherwise, so that an edited
    article does not retrain a generator that never read it); the base
    checkpoint by relative path, size and modification time of each file. Through
    ``cache_key`` it is part of the GPT policy's ``fingerprint_addon``: without it
    Rasa would not notice a changed corpus or a newly promoted generator, as
    neither flows through Rasa's graph.
    """
    parts = []
    try:
        parts.append(fingerprint(settings.get("corpus", "data/generator")))
    except CorpusError:
        parts.append("no-corpus")
    for name, digest in (("knowledge", knowledge.fingerprint),
                         ("questions", knowledge.questions_fingerprint)):
        folder = settings.get(name) if settings.get("answer_from_passages") else None
        parts.append(digest(Path(folder)) if folder and Path(folder).exists() else "-")
    base, _ = effective_base(settings)
    parts.append(str(base))
    if base and Path(base).is_dir():
        for f in sorted(Path(base).rglob("*")):
            if f.is_file():
                st = f.stat()
                parts.append(f"{f.relative_to(base)}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def cache_key(settings: Mapping[str, Any]) -> str:
    """The cache folder name (16 hex chars) of the generator these settings build.

    Hashes the ``KEY_SETTINGS`` values, ``train.TRAINING_CODE_VERSION`` and
    ``inputs_fingerprint``, so the key changes when any input of the weights does.
    """
    blob = json.dumps({k: settings.get(k) for k in KEY_SETTINGS}, sort_keys=True,
                      default=str) + trainer.TRAINING_CODE_VERSION
    return hashlib.sha256((blob + inputs_fingerprint(settings)).encode()).hexdigest()[:16]


def train_config(settings: Mapping[str, Any]) -> TrainConfig:
    """The ``TrainConfig`` of the ``train`` options; ``system_prompt`` fills in its own.

    Raises:
        TrainOptionsError: if an option is unknown or has an invalid value.
    """
    values = dict(settings.get("train") or {})
    if settings.get("system_prompt"):
        values.setdefault("system_prompt", settings["system_prompt"])
    try:
        return TrainConfig.from_dict(values)
    except ValueError as e:
        raise TrainOptionsError(str(e)) from e


def grounded_examples(settings: Mapping[str, Any]) -> list:
    """``train.passage_examples`` of the ``knowledge`` articles and the answered
    ``questions`` when ``answer_from_passages`` is set; [] when it is not, or
    either folder is unset or missing.

    Raises:
        KnowledgeError: if an article or a question file is malformed.
    """
    articles, questions = settings.get("knowledge"), settings.get("questions")
    if not settings.get("answer_from_passages"):
        return []
    if not (articles and questions and Path(articles).is_dir() and Path(questions).exists()):
        return []
    return trainer.passage_examples(knowledge.load_passages(Path(articles)),
                                    knowledge.load_known_questions(Path(questions)))


def build_generator(settings: Mapping[str, Any], cache_dir: Path) -> Path:
    """The folder of the generator these settings build: cached, or built now.

    Returns ``cache_dir / cache_key(settings)`` when that folder exists. Otherwise
    builds it there atomically (a failed build leaves nothing in the cache):
    the base checkpoint copied as is (promoted, or ``base_model`` with
    ``finetune: false``, its metadata recording it as the base), else the
    built-in model trained, or ``base_model`` fine-tuned, on ``corpus``.
    Treat the returned folder as read-only: later builds reuse it.

    Raises:
        CorpusError: if the corpus is missing or malformed.
        KnowledgeError: if an article or a question file is malformed.
        GeneratorLoadError: if the base checkpoint cannot be loaded.
        TrainOptionsError: if the ``train`` options are invalid (checked only
            when training).
    """
    target = Path(cache_dir) / cache_key(settings)
    if target.is_dir():
        logger.info("Generator: corpus and config unchanged, reusing %s.", target)
        return target
    base, finetune = effective_base(settings)
    with atomic_dir(target) as tmp:
        if base and not finetune:
            original = Generator.load(base)  # fails early on a bad checkpoint
            if is_adapter(base):  # the archive carries the merged weights, not the adapter
                original.model.save_pretrained(tmp, safe_serialization=True)
                original.tokenizer.save_pretrained(tmp)
                write_known(tmp, original.known_sentences)
            else:
                shutil.copytree(base, tmp, dirs_exist_ok=True)
            write_meta(tmp, {**read_meta(base), "model_id": original.model_id,
                             "version": original.model_version, "base_model": str(base)})
        else:
            trainer.train(settings["corpus"], tmp, train_config(settings), base_model=base,
                          grounded=grounded_examples(settings))
    return target
