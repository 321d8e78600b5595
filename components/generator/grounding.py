"""Groundedness: is every sentence of a reply supported by the passages it was given?

A reply may only state what its sources state. The check is lexical, so that it
is cheap, deterministic and explainable in the tracker:

- A **fact** is a token whose exact form matters: a number or range ("30",
  "5-7", "1.7"), an amount ("$12.95"), a time ("8:00"), a percentage, an e-mail
  address or a link, and a **name**: a run of two or more capitalised words,
  leading stop words dropped ("Kestrel Care Plus", "The Aero Blender" -> "Aero
  Blender").
- A sentence is **factual** when it holds a fact or at least ``MIN_CLAIM_WORDS``
  content words (words outside the stop-word list); shorter sentences without a
  fact ("Happy to help!", "Sorry about that.") state nothing and pass.
- A factual sentence is **supported** when every one of its facts occurs in the
  sources (compared after lower-casing and unifying dashes; a number, amount,
  time or range must be one of the sources' own facts, so "5" is not supported
  by "3-5" nor "$5" by "$50"; a name or address must occur in their text), and at least
  ``MIN_OVERLAP`` of its content words (crudely stemmed: plural and tense endings
  dropped) occur in them.
- A reply is grounded when every factual sentence is supported. With no sources,
  any factual sentence fails: a claim with no source is never sent.

Where this stands against a person's judgement is measured in
docs/benchmarks.md ("Answers"). The check is a pure function of text; nothing
here imports Rasa or loads a model.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import FrozenSet, Iterable, List, Sequence, Tuple

MIN_CLAIM_WORDS = 4  # content words that make a sentence without a fact a claim
MIN_OVERLAP = 0.6  # share of a claim's content words that must occur in the sources

_DASHES = str.maketrans({"\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-",
                         "\u2014": "-", "\u2212": "-"})
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9$])")
_FACT = re.compile(
    r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"  # e-mail
    r"|(?:https?://|www\.|/help/)\S+"  # link
    r"|\$\s?\d[\d,]*(?:\.\d+)?"  # amount
    r"|\d{1,2}:\d{2}"  # time
    r"|\d+(?:[.,]\d+)?(?:\s?-\s?\d+(?:[.,]\d+)?)?\s?%?"  # number, range, percentage
)
_NAME = re.compile(r"\b[A-Z][a-z]+(?:\s+[A-Z][a-z]+)+\b")
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")  # numbers are facts, not words
# Small English stop-word list (articles, pronouns, auxiliaries, prepositions);
# the content words left carry the claim.
STOP_WORDS: FrozenSet[str] = frozenset("""
a about above after again all also am an and any are as at be because been before being
below between both but by can could did do does doing don't down during each few for
from further had has have having he her here hers him his how i i'm if in into is isn't
it it's its just let's me more most my no nor not now of off on once only or other our
ours out over own same she should so some such than that that's the their theirs them
then there these they this those through to too under until up very was we we're were
what when where which while who whom why will with would you you're your yours yes
""".split())


@dataclass(frozen=True)
class SentenceVerdict:
    """The check of one sentence."""

    sentence: str
    factual: bool  # holds a fact or a claim
    supported: bool  # not factual, or its facts and enough of its words are in the sources
    missing_facts: Tuple[str, ...] = ()  # facts absent from the sources
    overlap: float = 1.0  # share of its content words found in the sources, 0..1


@dataclass(frozen=True)
class Verdict:
    """The check of a whole reply."""

    sentences: Tuple[SentenceVerdict, ...] = field(default_factory=tuple)

    @property
    def grounded(self) -> bool:
        """True when every sentence is supported (an empty reply is not grounded)."""
        return bool(self.sentences) and all(s.supported for s in self.sentences)

    @property
    def unsupported(self) -> List[str]:
        """The sentences that failed."""
        return [s.sentence for s in self.sentences if not s.supported]

    def record(self) -> dict:
        """What the tracker stores: ``{"grounded": bool, "unsupported": [sentences]}``."""
        return {"grounded": self.grounded, "unsupported": self.unsupported}


def normalise(text: str) -> str:
    """Lower-cased, dashes unified, whitespace collapsed: how facts are compared."""
    return " ".join(text.translate(_DASHES).lower().split())


def split_sentences(text: str) -> List[str]:
    """Sentences of ``text`` (split after . ! ? before a capital, digit or $)."""
    return [s.strip() for s in _SENTENCE.split(" ".join(text.split())) if s.strip()]


def facts(sentence: str) -> List[str]:
    """The facts of one sentence (see module docstring), as written."""
    found = [m.group(0).strip().rstrip(".,") for m in _FACT.finditer(sentence.translate(_DASHES))]
    for match in _NAME.finditer(sentence):
        words = match.group(0).split()
        while words and words[0].lower() in STOP_WORDS:
            words.pop(0)
        if len(words) >= 2:
            found.append(" ".join(words))
    return [f for f in found if f]


def _stem(word: str) -> str:
    for suffix in ("ies", "es", "s", "ed", "ing"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> List[str]:
    """Stemmed words of ``text`` outside ``STOP_WORDS``."""
    return [_stem(w) for w in _WORD.findall(normalise(text)) if w not in STOP_WORDS]


@dataclass(frozen=True)
class Sources:
    """The passages' text prepared for checking: normalised text, facts and words."""

    text: str  # normalise() of all passages
    facts: FrozenSet[str]  # normalise() of every fact in them
    words: FrozenSet[str]  # their content words

    @classmethod
    def of(cls, texts: Iterable[str]) -> "Sources":
        joined = " ".join(texts)
        return cls(normalise(joined), frozenset(normalise(f) for f in facts(joined)),
                   frozenset(content_words(joined)))

    def has(self, fact: str) -> bool:
        """Whether a fact of a reply is stated in the sources (see module docstring)."""
        fact = normalise(fact)
        return fact in self.facts if fact[:1].isdigit() or fact[:1] == "$" \
            else fact in self.text


def check_sentence(sentence: str, sources: Sources) -> SentenceVerdict:
    """One sentence against the prepared sources."""
    found = facts(sentence)
    words = content_words(sentence)
    factual = bool(found) or len(words) >= MIN_CLAIM_WORDS
    if not factual:
        return SentenceVerdict(sentence, factual=False, supported=True)
    missing = tuple(f for f in found if not sources.has(f))
    overlap = sum(w in sources.words for w in words) / len(words) if words else 1.0
    return SentenceVerdict(sentence, True, not missing and overlap >= MIN_OVERLAP,
                           missing, round(overlap, 3))


def check(reply: str, sources: Iterable[str]) -> Verdict:
    """Checks every sentence of ``reply`` against the ``sources`` (passage texts).

    With no sources, every factual sentence is unsupported.
    """
    prepared = Sources.of(sources)
    return Verdict(tuple(check_sentence(s, prepared) for s in split_sentences(reply)))


def best_sentences(question_vector, sentences: Sequence[str], sentence_vectors,
                   max_sentences: int = 2, max_chars: int = 320) -> List[str]:
    """The sentences most similar to the question, in their original order.

    ``question_vector``: shape (dim,); ``sentence_vectors``: shape (len(sentences),
    dim), both L2-normalised, so the dot product is the cosine similarity.
    Keeps at most ``max_sentences`` whose total length fits ``max_chars``
    (characters); the best one is always kept.
    """
    import numpy as np  # noqa: PLC0415 - the rest of this module is plain Python

    if not sentences:
        return []
    scores = np.asarray(sentence_vectors) @ np.asarray(question_vector)
    chosen, length = [], 0
    for i in np.argsort(-scores, kind="stable")[:max_sentences]:
        if chosen and length + len(sentences[i]) + 1 > max_chars:
            break
        chosen.append(int(i))
        length += len(sentences[i]) + 1
    return [sentences[i] for i in sorted(chosen)]
