"""Reading the open-ended dialogue corpus (``data/generator/*.yml``).

Each file holds ``dialogues:``, a list of ``{topic, turns: [{user, bot}, ...]}``.
Rasa ignores these files: they have neither ``nlu`` nor ``stories`` keys.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Sequence, Tuple, Union

from components.generator.prompt import Turn

PathLike = Union[str, Path]


class CorpusError(ValueError):
    """A corpus file is missing or malformed; the message names file and item."""


@dataclass(frozen=True)
class Dialogue:
    """One open-ended conversation: alternating user and assistant turns."""

    topic: str
    turns: Tuple[Turn, ...]
    source: str  # file it came from, for error messages and provenance


def corpus_files(path: PathLike) -> List[Path]:
    """The YAML files of a corpus: ``path`` itself, or every *.yml/*.yaml under it.

    Raises:
        CorpusError: if ``path`` does not exist or holds no YAML file.
    """
    root = Path(path)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise CorpusError(f"Generator corpus '{root}' does not exist; set `corpus` to a "
                          f"folder of dialogue YAML files.")
    files = sorted(p for p in root.rglob("*") if p.suffix in (".yml", ".yaml"))
    if not files:
        raise CorpusError(f"Generator corpus folder '{root}' holds no .yml files.")
    return files


def fingerprint(path: PathLike) -> str:
    """SHA-256 over the corpus files' names and bytes (hex, 64 chars)."""
    digest = hashlib.sha256()
    for f in corpus_files(path):
        digest.update(f.name.encode())
        digest.update(f.read_bytes())
    return digest.hexdigest()


def _parse_dialogue(item: object, source: str, index: int) -> Dialogue:
    where = f"{source}, dialogue {index}"
    if not isinstance(item, dict) or not isinstance(item.get("turns"), list):
        raise CorpusError(f"{where}: expected a mapping with a `turns` list.")
    turns: List[Turn] = []
    for j, pair in enumerate(item["turns"]):
        if not isinstance(pair, dict) or not {"user", "bot"} <= set(pair):
            raise CorpusError(f"{where}, turn {j}: expected keys `user` and `bot`.")
        user, bot = str(pair["user"]).strip(), str(pair["bot"]).strip()
        if not user or not bot:
            raise CorpusError(f"{where}, turn {j}: `user` and `bot` must not be empty.")
        turns += [Turn("user", user), Turn("assistant", bot)]
    if not turns:
        raise CorpusError(f"{where}: `turns` is empty.")
    return Dialogue(str(item.get("topic", "general")), tuple(turns), source)


def load_dialogues(path: PathLike) -> List[Dialogue]:
    """All dialogues of a corpus, in file order.

    Raises:
        CorpusError: on a missing folder, invalid YAML, or a malformed dialogue.
    """
    import yaml

    dialogues: List[Dialogue] = []
    for f in corpus_files(path):
        try:
            doc = yaml.safe_load(f.read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            raise CorpusError(f"{f}: invalid YAML ({e}).") from e
        if not isinstance(doc, dict) or not isinstance(doc.get("dialogues"), list):
            raise CorpusError(f"{f}: expected a top-level `dialogues:` list.")
        dialogues += [_parse_dialogue(d, str(f), i) for i, d in enumerate(doc["dialogues"])]
    return dialogues


def training_examples(
    dialogues: Iterable[Dialogue], max_turns: int
) -> List[Tuple[List[Turn], str]]:
    """(context, reply) pairs: one per assistant turn, context ending in a user turn."""
    examples = []
    for d in dialogues:
        for i, turn in enumerate(d.turns):
            if turn.role == "assistant":
                context = list(d.turns[max(0, i - max_turns): i])
                examples.append((context, turn.text))
    return examples


def all_texts(dialogues: Sequence[Dialogue]) -> List[str]:
    """Every turn's text, for training a tokenizer."""
    return [t.text for d in dialogues for t in d.turns]
