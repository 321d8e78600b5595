"""Written replies for turns the help center cannot answer: retrieve, then send as written.

Chit-chat, off-topic questions and frustration need a fluent reply that states no
store fact and steers back or offers a person. The built-in generator is too small
to write one reliably ("I can't help with Kestrel Home, sorry. I'm here for Kestrel
Home do you need help with?"), so these turns are grounded too, in replies a person
wrote: the customer's message is compared (all-MiniLM-L6-v2 cosine) with the
customer messages of the written replies, and the reply of the closest one is sent
as written when the similarity reaches ``min_similarity``. This is the retrieve
half of retrieve-and-refine (Weston, Dinan & Miller 2018, "Retrieve and Refine:
Improved Sequence Generation Models For Dialogue"); the refine half, the generator
rewriting the retrieved reply, needs a generator trained for it and is not done.
docs/benchmarks.md ("Answers") measures both halves' share of turns.

Where the replies come from (the GPT policy's ``replies`` option): YAML files with
``no_answer:`` lists of ``{question, answer}``, or ``{questions: [...], answer}``
(data/grounded/no_answer.yml). They
are the support team's own words, reviewed like the articles, so they are their own
source; but they are sent when the help center has nothing, so none may state a
store fact that an article should hold: ``load_replies`` refuses a reply with a
number, amount, time, e-mail address or link (``grounding.facts``), naming it.

A written reply may name its customer's topic ("I can't check the weather, sorry").
Sent to a near question on another topic, it answers something the customer did
not ask: "can you recommend a good netflix series" matched "can you recommend a
good book" (cosine 0.6) and got "Book recommendations are outside what I can help
with". So a reply is sent only when the message names the reply's topic words
(``topic_words``): the words its answer echoes from its own question, less the
words several answers share ("order", "help"). Otherwise the next closest reply
is tried, and with none left the policy's canned reply goes out.

The bank is a folder in the model archive: ``replies.json`` and ``embeddings.npy``
(float32, (N, 384), L2-normalised), written by ``rasa train`` next to the
help-center index. Nothing here imports Rasa.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Set, Union

import numpy as np

from components.generator import grounding
from components.generator.retrieval import MAX_QUERY_CHARS, Encoder

REPLIES_FILE, EMBEDDINGS_FILE = "replies.json", "embeddings.npy"
# Words are compared by their first 5 letters after a plural "s", so "book"
# matches "books" and "recommend" "recommendations": a crude stem, enough for
# the topics of short replies.
STEM_LETTERS = 5
# A word that this many answers share is the bank's own vocabulary, not a topic.
SHARED_BY = 5


class ReplyBankError(ValueError):
    """A replies file is missing or malformed; the message names the file, item and fix."""


@dataclass(frozen=True)
class WrittenReply:
    """A customer message and the reply a person wrote for it."""

    question: str
    answer: str
    source: str  # "<file>#<n>", for the tracker and for error messages


@dataclass(frozen=True)
class Match:
    """The written reply closest to a message."""

    reply: WrittenReply
    similarity: float  # cosine of message and written question, in [-1, 1]

    def record(self) -> dict:
        """What the tracker stores as the reply's source."""
        return {"id": self.reply.source, "question": self.reply.question,
                "dense": round(self.similarity, 4)}


def stems(text: str) -> Set[str]:
    """The content words of ``text`` as ``STEM_LETTERS``-letter stems, lower-cased.

    Content words have 3+ letters and are not in scikit-learn's English stop
    words (Glasgow Information Retrieval Group's list). Not ``grounding.content_words``:
    its suffix stripping sends "tyres" to "tyr" but "tyre" to "tyre", so a reply
    about car tyres would not fit "do you sell a car tyre"; here both are "tyre".
    """
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS  # noqa: PLC0415 - heavy

    return {(w[:-1] if w.endswith("s") and len(w) > 3 else w)[:STEM_LETTERS]
            for w in re.findall(r"[a-z]+", text.lower())
            if len(w) >= 3 and w not in ENGLISH_STOP_WORDS}


def topic_words(replies: Sequence[WrittenReply]) -> List[Set[str]]:
    """Per reply, the stems a message has to contain for the reply to fit it.

    They are the stems its answer shares with its own question, less those that
    ``SHARED_BY`` or more answers of ``replies`` use (module docstring).
    """
    answers = [stems(r.answer) for r in replies]
    shared = Counter(stem for words in answers for stem in words)
    return [{w for w in words & stems(r.question) if shared[w] < SHARED_BY}
            for r, words in zip(replies, answers)]


def load_replies(paths: Union[str, Path, Sequence[Union[str, Path]]]) -> List[WrittenReply]:
    """The written replies of ``paths`` (files, or folders of *.yml), in order.

    An item is ``{question, answer}``, or ``{questions: [...], answer}`` for one
    reply to several ways of saying the same thing (each question becomes a
    ``WrittenReply`` with the item's ``source``).

    Raises:
        ReplyBankError: if a path is missing, a file is not valid YAML or lacks a
            ``no_answer`` list, an item lacks ``question`` (or ``questions``) or
            ``answer``, or an answer holds a number, amount, time, e-mail address or
            link.
    """
    import yaml  # noqa: PLC0415 - only `rasa train` reads the files

    if isinstance(paths, (str, Path)):
        paths = [paths]
    files: List[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files += sorted(p for p in path.rglob("*.yml"))
        elif path.is_file():
            files.append(path)
        else:
            raise ReplyBankError(f"Written replies {path} do not exist; set the GPT policy's "
                                 f"`replies` to YAML files with `no_answer:` lists, or to null.")
    replies = []
    for f in files:
        try:
            doc = yaml.safe_load(f.read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            raise ReplyBankError(f"{f}: invalid YAML ({e}).") from e
        items = doc.get("no_answer") if isinstance(doc, dict) else None
        if not isinstance(items, list):
            raise ReplyBankError(f"{f}: expected a top-level `no_answer:` list of "
                                 f"{{question, answer}}.")
        for n, item in enumerate(items):
            where = f"{f}#{n}"
            questions = _questions(item)
            if not questions or not str(item.get("answer", "")).strip():
                raise ReplyBankError(f"{where}: each item needs a `question` (or a "
                                     f"`questions` list of them) and an `answer`.")
            answer = str(item["answer"]).strip()
            hard = [f for f in grounding.facts(answer) if not grounding.NAME.fullmatch(f)]
            if hard:
                raise ReplyBankError(
                    f"{where}: the answer states {hard}; a reply for questions the help "
                    f"center cannot answer must state no store fact. Rephrase it, or put "
                    f"the fact in a help-center article.")
            replies += [WrittenReply(q, answer, where) for q in questions]
    return replies


def _questions(item) -> List[str]:
    """An item's customer messages: its ``question``, or each of its ``questions``
    ([] when it has neither, or one is empty)."""
    if not isinstance(item, dict):
        return []
    found = item.get("questions", [item.get("question")])
    if not isinstance(found, list):
        return []
    questions = [str(q).strip() for q in found if q is not None]
    return questions if questions and all(questions) else []


class ReplyBank:
    """Finds the written reply whose question is closest to a message (module docstring)."""

    def __init__(self, replies: Sequence[WrittenReply], embeddings: np.ndarray,
                 encoder: Encoder) -> None:
        """``embeddings``: float32, shape (len(replies), dim), rows L2-normalised.

        Raises:
            ValueError: if the counts of replies and embeddings differ.
        """
        if len(replies) != embeddings.shape[0]:
            raise ValueError(f"{len(replies)} replies but {embeddings.shape[0]} embeddings; "
                             f"rebuild with `rasa train`.")
        self.replies = list(replies)
        self.embeddings = embeddings
        self.encoder = encoder
        self.topics = topic_words(self.replies)

    @classmethod
    def build(cls, replies: Sequence[WrittenReply], encoder: Encoder) -> "ReplyBank":
        """Embeds the replies' questions.

        Raises:
            ValueError: if ``replies`` is empty.
        """
        if not replies:
            raise ValueError("No written replies to index.")
        vectors = np.asarray(encoder([r.question for r in replies]), dtype=np.float32)
        return cls(replies, vectors, encoder)

    def save(self, folder: Path) -> None:
        """Writes the bank into ``folder`` (created if missing)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / REPLIES_FILE).write_text(
            json.dumps([asdict(r) for r in self.replies], ensure_ascii=False, indent=1),
            encoding="utf-8")
        np.save(folder / EMBEDDINGS_FILE, self.embeddings)

    @classmethod
    def load(cls, folder: Path, encoder: Encoder) -> "ReplyBank":
        """Reads a bank written by ``save``.

        Raises:
            OSError: if a file is missing or unreadable.
            ValueError: if the files are malformed or disagree.
        """
        folder = Path(folder)
        items = json.loads((folder / REPLIES_FILE).read_text(encoding="utf-8"))
        return cls([WrittenReply(**item) for item in items],
                   np.load(folder / EMBEDDINGS_FILE), encoder)

    def nearest(self, message: str, min_similarity: float) -> Optional[Match]:
        """The closest written reply whose topic words the message names, or None
        when no such reply reaches ``min_similarity``.

        Empty, very long and non-Latin messages are compared like any other.
        """
        message = (message or "")[:MAX_QUERY_CHARS]
        vector = np.asarray(self.encoder([message]), dtype=np.float32)[0]
        scores = self.embeddings @ vector  # (N,)
        named = stems(message)
        for best in np.argsort(-scores):
            if scores[best] < min_similarity:
                return None
            if self.topics[best] <= named:
                return Match(self.replies[best], float(scores[best]))
        return None
