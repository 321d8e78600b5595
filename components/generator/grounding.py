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
- **Polarity**: each clause of a factual sentence (split at ``;``, ``:`` and
  ", but/so/and/or ...") is matched to the source clause that shares most of its
  content words; when one of the two is negated ("not", "no", "never", "n't",
  ...) and the other is not, the sentence is unsupported. Word overlap alone
  cannot see "refunds can be split" vs "refunds cannot be split".
- **In place**: a number or amount must also sit in the source clause that the
  reply's clause is about: the one sharing most of its content words, as for
  polarity, with a reply clause also split at "and" and "or" so that a sentence
  may join two source clauses. So "Standard shipping costs $12.95" is
  refused against "Standard shipping costs $4.95, and express costs $12.95",
  where the amount is the express price: a model that copies spans of its
  passages (components/generator/copying.py) can join the start of one clause
  to the end of another. The price: a paraphrase that gives one sentence's
  subject another sentence's number ("Kestrel Care Plus costs $24.99" from
  "Kestrel Care Plus adds ... It costs $24.99") reads the same as that swap to a
  lexical check, so it is refused too, and the extractive answer goes instead.
- Number words are facts too: "two" .. "twelve" (and "one" before a unit such
  as "year") are compared as digits, so "three-year warranty" needs a "3".
- Conversational words ("sorry", "glad", "help", ...) do not make a sentence a
  claim: "Oh no, I'm sorry to hear that." states nothing.
- A reply is grounded when every factual sentence is supported. With no sources,
  any factual sentence fails: a claim with no source is never sent.

Where this stands against a person's judgement is measured in
docs/benchmarks.md ("Groundedness check against a person's judgement",
bench/grounding_agreement.py): on a development sample the rules were designed
against, and on a test sample written blind. A lexical check cannot see a name
or a claim moved to the wrong thing within its passage, a number moved within
one clause, or an antonym ("free" for "costs"). The check is a pure function of
text; nothing here imports Rasa or loads a model.
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
NAME = re.compile(r"\b[A-Z][a-z]+(?:\s+[A-Z][a-z]+)+\b")
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
you've you'll we've we'll there's here's they're they'll it'll i'll i've i'd you'd
within since one every each also rather
""".split())
# Words of conversation, not of a claim: they do not count towards MIN_CLAIM_WORDS
# ("Oh no, I'm sorry to hear that." states nothing), but still count in overlaps.
CHAT_WORDS: FrozenSet[str] = frozenset("""
oh hi hello hey sorry hear glad happy help thank thanks please sure question anything
else great welcome understand apologise apologize hope let know
""".split())
# A clause holding one of these (or a word ending in n't) is negated; "X rather than Y"
# says "X, not Y".
NEGATIONS: FrozenSet[str] = frozenset(
    "not no never none nothing nobody neither nor cannot rather".split())
_NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve".split())}
# "two".."twelve" anywhere; "one" only before a unit ("one year", "one-day"), since
# "the old one" states no number.
_NUMBER_WORD = re.compile(
    r"\b(two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)\b"
    r"|\bone(?=[\s-]+(?:business\s+)?(?:day|week|month|year|hour|minute)s?\b)", re.I)
_CLAUSE = re.compile(
    r"[;:]|,\s*(?=(?:but|so|and|or|while|although|though|unless|because|as|since|which)\b)"
    r"|\s(?=(?:but|although|though|unless)\s)", re.I)
# Where a reply clause is split further for the in-place check ("Express costs $12.95
# and orders over $50 ship free" joins two source clauses).
_JOIN = re.compile(r"\s(?:and|or)\s", re.I)
_ANSWER_PARTICLE = re.compile(r"^\s*(?:yes|no|sadly|unfortunately)\b[,.!]?\s*", re.I)


@dataclass(frozen=True)
class SentenceVerdict:
    """The check of one sentence."""

    sentence: str
    factual: bool  # holds a fact or a claim
    supported: bool  # not factual, or its facts and enough of its words are in the sources
    missing_facts: Tuple[str, ...] = ()  # facts absent from the sources
    overlap: float = 1.0  # share of its content words found in the sources, 0..1
    polarity: bool = True  # False: a clause negates what its closest source clause states
    in_place: bool = True  # False: a number or amount is not in its closest source clause


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


def number_words_as_digits(text: str) -> str:
    """``text`` with "two".."twelve" (and "one" before a unit) written as digits."""
    return _NUMBER_WORD.sub(lambda m: _NUMBER_WORDS[m.group(0).lower()], text)


def facts(sentence: str) -> List[str]:
    """The facts of one sentence (see module docstring); number words as digits."""
    digits = number_words_as_digits(sentence.translate(_DASHES))
    found = [m.group(0).strip().rstrip(".,") for m in _FACT.finditer(digits)]
    for match in NAME.finditer(sentence):
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


Clause = Tuple[FrozenSet[str], bool]  # (content words, negated)


def _parts(sentence: str) -> List[Tuple[str, FrozenSet[str], bool]]:
    """(text, content words, negated) of each clause of ``sentence`` that has words."""
    return _parts_at(_CLAUSE, sentence)


def _parts_at(pattern: "re.Pattern", sentence: str) -> List[Tuple[str, FrozenSet[str], bool]]:
    """``_parts`` with the clauses split at ``pattern``."""
    out = []
    for part in pattern.split(_ANSWER_PARTICLE.sub("", sentence)):
        tokens = _WORD.findall(normalise(part))
        words = frozenset(_stem(w) for w in tokens if w not in STOP_WORDS)
        if words:
            out.append((part, words, any(w in NEGATIONS or w.endswith("n't") for w in tokens)))
    return out


def clauses(sentence: str) -> List[Clause]:
    """The clauses of a sentence (module docstring, "Polarity") with their polarity.

    A leading answer particle ("No, ...", "Yes, ...") is not a negation of the
    clause that follows it.
    """
    return [(words, negated) for _, words, negated in _parts(sentence)]


def numbers(text: str) -> FrozenSet[str]:
    """normalise() of the facts of ``text`` that are numbers, ranges, times or amounts."""
    return frozenset(normalise(f) for f in facts(text) if f[:1].isdigit() or f[:1] == "$")


@dataclass(frozen=True)
class Sources:
    """The passages' text prepared for checking: normalised text, facts, words, clauses."""

    text: str  # normalise() of all passages
    facts: FrozenSet[str]  # normalise() of every fact in them
    words: FrozenSet[str]  # their content words
    clauses: Tuple[Clause, ...] = ()  # every clause of every sentence, with its polarity
    # (content words, numbers) of every clause of every sentence
    placed: Tuple[Tuple[FrozenSet[str], FrozenSet[str]], ...] = ()

    @classmethod
    def of(cls, texts: Iterable[str]) -> "Sources":
        texts = list(texts)
        joined = " ".join(texts)
        parts = [p for t in texts for s in split_sentences(t) for p in _parts(s)]
        return cls(normalise(joined), frozenset(normalise(f) for f in facts(joined)),
                   frozenset(content_words(joined)),
                   tuple((words, negated) for _, words, negated in parts),
                   tuple((words, numbers(text)) for text, words, _ in parts))

    def numbers_in_place(self, text: str, words: FrozenSet[str]) -> bool:
        """Whether the numbers of one reply clause sit in the source clause it is about.

        That clause: the one sharing the most content words with it (any of
        them on a tie), as for ``polarity_agrees``; a clause that shares fewer
        than two (all of a one-word clause) with every source clause passes, and
        ``has`` checks that its numbers exist at all.
        """
        wanted = numbers(text)
        if not wanted:
            return True
        shared = [(len(words & w), n) for w, n in self.placed]
        best = max((k for k, _ in shared), default=0)
        if best < min(2, len(words)):
            return True
        return wanted <= frozenset().union(*(n for k, n in shared if k == best))

    def polarity_agrees(self, clause: Clause) -> bool:
        """Whether the source clauses closest to ``clause`` have its polarity.

        Closest: sharing the most content words, at least two (or all of a
        one-word clause); a clause that matches none has nothing to contradict.
        """
        words, negated = clause
        shared = [(len(words & w), n) for w, n in self.clauses]
        best = max((k for k, _ in shared), default=0)
        if best < min(2, len(words)):
            return True
        return any(n == negated for k, n in shared if k == best)

    def has(self, fact: str) -> bool:
        """Whether a fact of a reply is stated in the sources (see module docstring)."""
        fact = normalise(fact)
        return fact in self.facts if fact[:1].isdigit() or fact[:1] == "$" \
            else fact in self.text


def check_sentence(sentence: str, sources: Sources) -> SentenceVerdict:
    """One sentence against the prepared sources."""
    found = facts(sentence)
    words = content_words(sentence)
    claim_words = [w for w in words if w not in CHAT_WORDS]
    factual = bool(found) or len(claim_words) >= MIN_CLAIM_WORDS
    if not factual:
        return SentenceVerdict(sentence, factual=False, supported=True)
    missing = tuple(f for f in found if not sources.has(f))
    overlap = sum(w in sources.words for w in words) / len(words) if words else 1.0
    parts = _parts(sentence)
    polarity = all(sources.polarity_agrees((w, n)) for _, w, n in parts)
    in_place = all(sources.numbers_in_place(text, w) for part, _, _ in parts
                   for text, w, _ in _parts_at(_JOIN, part))
    return SentenceVerdict(sentence, True,
                           not missing and overlap >= MIN_OVERLAP and polarity and in_place,
                           missing, round(overlap, 3), polarity, in_place)


def check(reply: str, sources: Iterable[str]) -> Verdict:
    """Checks every sentence of ``reply`` against the ``sources`` (passage texts).

    With no sources, every factual sentence is unsupported.
    """
    prepared = Sources.of(sources)
    return Verdict(tuple(check_sentence(s, prepared) for s in split_sentences(reply)))


def _said(sentence: str) -> FrozenSet[str]:
    """The content words and numbers of ``sentence``: what it can add to an answer."""
    return frozenset(content_words(sentence)) | numbers(sentence)


# Words that point back to the sentence before ("It costs $4.95.", "Below that, ..."), and
# those that continue it ("But ...", "Otherwise ...").
_POINTERS = frozenset("it its it's this that these those they them then".split())
_CONTINUES = _POINTERS | frozenset("also but and so or however otherwise instead".split())


def _leans_back(sentence: str) -> bool:
    """Whether ``sentence`` reads only after the one before it: it opens with a word of
    ``_CONTINUES``, or a short opening phrase (4 words at most, up to a comma) holds
    a word of ``_POINTERS``."""
    words = re.findall(r"[\w']+", sentence.lower())
    if not words:
        return False
    if words[0] in _CONTINUES:
        return True
    head, comma, _ = sentence.partition(",")
    opening = re.findall(r"[\w']+", head.lower())
    return bool(comma) and len(opening) <= 4 and any(w in _POINTERS for w in opening)


# How much of a sentence's ``bonus`` (its section's match) counts when
# ``best_sentences`` picks the sentence that opens the reply; see its docstring.
OPENING_BONUS_WEIGHT = 0.5


def best_sentences(question_vector, sentences: Sequence[str], sentence_vectors,
                   max_sentences: int = 2, max_chars: int = 320, bonus=None,
                   max_similarity: float = 1.01, best_first: bool = False,
                   groups=None) -> List[str]:
    """The sentences most similar to the question, in their original order.

    ``question_vector``: shape (dim,); ``sentence_vectors``: shape (len(sentences),
    dim), both L2-normalised, so the dot product is the cosine similarity.
    ``bonus``: optional, shape (len(sentences),), added to each sentence's cosine
    (the answer path adds how well the sentence's section matches the question).
    Keeps at most ``max_sentences`` whose total length fits ``max_chars``
    (characters); the best one is always kept. A sentence whose cosine similarity
    to one already kept reaches ``max_similarity``, or whose content words and
    numbers a kept sentence all holds, is skipped (it would say the same thing
    twice: "Kestrel Home has no published student discount." beside the sentence
    that says so with the other groups), and a kept sentence whose words a later
    one all holds gives way to it; the default ``max_similarity`` keeps everything
    but such contained sentences. A kept sentence that leans on the one before it
    (``_leans_back``) while that one is not kept is left out and the choice made
    again: "Then add the bulb in the app again." opened a reply about the Smart LED
    Bulb. That changed none of the replies to bench/answers.py's 242 held-out
    questions, and no figure of the held-apart known questions. With ``best_first``,
    the chosen sentence with the best cosine plus ``OPENING_BONUS_WEIGHT`` times its
    ``bonus`` comes first, unless
    it leans on the sentence before it ("It ...", "Below that, ...": ``_leans_back``);
    the chosen sentences of its group (``groups``, shape (len(sentences),): the
    answer path passes each sentence's section) follow it, and the others follow in
    their order. On the held-apart known questions (bench/retrieval_tuning.py's
    split) the first sentence held a fact of the written answer for 49 of 78
    answered from the right article, against 44 in article order, with the best
    sentence by cosine alone or by its score. Half the bonus keeps a sentence of the
    section that matched the question from being opened by a closer-worded sentence of
    another ("my stand mixer bowl is wobbling" opened with the grinding-noise fault),
    and the group keeps a section's two sentences together instead of putting a
    wet-box sentence between the speaker's two crackling ones. Of bench/answers.py's
    correct held-out answers, 72% hold a key fact in their first sentence, against 65%
    by cosine alone (both with the groups; 67% before them) and 72% with the whole
    bonus, which opened "do you do a student discount" with "For a definite answer, ask
    the support team" (same archive).
    """
    import numpy as np  # noqa: PLC0415 - the rest of this module is plain Python

    if not sentences:
        return []
    scores = np.asarray(sentence_vectors) @ np.asarray(question_vector)
    if bonus is not None:
        scores = scores + np.asarray(bonus)
    vectors = np.asarray(sentence_vectors)
    ranked = [int(i) for i in np.argsort(-scores, kind="stable")]
    chosen = _pick(ranked, sentences, vectors, max_sentences, max_chars, max_similarity)
    while True:  # a sentence that leans on one left out ("Then add the bulb ...") goes
        orphans = {i for i in chosen if _leans_back(sentences[i]) and i - 1 not in chosen}
        if not orphans:
            break
        ranked = [i for i in ranked if i not in orphans]
        again = _pick(ranked, sentences, vectors, max_sentences, max_chars, max_similarity)
        if not again:
            break
        chosen = again
    order = sorted(chosen)
    if best_first and order:
        opening = vectors @ np.asarray(question_vector)  # (len(sentences),)
        if bonus is not None:
            opening = opening + OPENING_BONUS_WEIGHT * np.asarray(bonus)
        best = max(order, key=lambda i: opening[i])
        if not _leans_back(sentences[best]):
            mates = [i for i in order if i != best and groups is not None
                     and groups[i] == groups[best]]
            order = [best] + mates + [i for i in order if i != best and i not in mates]
    return [sentences[i] for i in order]


def _pick(ranked: Sequence[int], sentences: Sequence[str], vectors, max_sentences: int,
          max_chars: int, max_similarity: float) -> List[int]:
    """``best_sentences``'s greedy choice over the indices of ``ranked``, best first."""
    chosen, length = [], 0
    for i in ranked:
        if len(chosen) == max_sentences:
            break
        if chosen and length + len(sentences[i]) + 1 > max_chars:
            break
        if chosen and max(float(vectors[i] @ vectors[j]) for j in chosen) >= max_similarity:
            continue  # says again what a chosen sentence says
        said = _said(sentences[i])
        if any(said <= _said(sentences[j]) for j in chosen):
            continue  # a chosen sentence holds all of it
        for j in [j for j in chosen if _said(sentences[j]) <= said]:
            chosen.remove(j)  # this one holds all of a chosen one, and more
            length -= len(sentences[j]) + 1
        chosen.append(i)
        length += len(sentences[i]) + 1
    return chosen
