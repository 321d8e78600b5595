"""Grounded answers: retrieve from the help center, answer from the passages, check, cite.

The order of an open-ended turn (the NLG calls these steps; each is plain Python):

1. ``retrieve``: the help-center passages relevant to the customer's last message
   (hybrid retrieval, ``components.generator.retrieval``), kept only when the best
   cosine similarity reaches ``min_similarity``.
2. With relevant passages, the **extractive** answer: the sentences of the best
   passage's article closest in meaning to the question, each weighed with how
   well its section matches the question (``extractive``), with the source cited.
   A model that writes answers writes the reply from those sentences
   (``answer_hit``): an inference server, an instruct checkpoint with
   ``generate: true``, or the built-in model trained with the GPT policy's
   ``answer_from_passages`` and decoded with the copy bias (``copying``; off by
   default: less correct than the extractive answer, docs/benchmarks.md).
   ``decide`` sends its reply only when the check passes; the extractive answer
   replaces one that fails: a reply is done when it is correct and sourced, not
   when it is generated.
3. Without relevant passages, a reply the team wrote for the closest off-topic or
   chit-chat message is sent as written (``written``, mode RETRIEVED) when the
   message is close enough (``min_reply_similarity``).
4. Otherwise the generator answers conversationally and
   ``decide`` checks its text (``grounding.check``) with no sources: a reply that
   states a fact or a claim is replaced by the canned fallback, since nothing
   supports it. Before that, the built-in model's reply has to pass the fluency
   gate (``guardrails.unknown_sentences``, applied by the NLG): each of its
   sentences one the model learnt from the team's replies.
5. When that ends in the canned reply and the best passage came close
   (``min_suggest_similarity``), its article is linked after the canned text
   (``suggestion``): no answer, but where to read.

A follow-up whose answer would repeat the last reply says so first (``repeats``,
``REPEAT_LEAD``): the article has nothing more on it.

Every reply records its ``mode`` ("generated", "extractive", "retrieved" or
"fallback"), the ``sources`` it used (passage id, article slug, title, link, scores;
or the written reply) and the check's verdict. ``min_similarity`` is chosen on held-out questions
(bench/answers.py, docs/benchmarks.md "Answers").
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, fields
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from components.generator import grounding
from components.generator.prompt import format_passage
from components.generator.retrieval import Hit, Retriever

GENERATED, EXTRACTIVE, FALLBACK = "generated", "extractive", "fallback"
# A reply the team wrote for a message the help center cannot answer, sent as written
# (components/generator/replies.py): fluent, states no store fact, cites nothing.
RETRIEVED = "retrieved"


@dataclass(frozen=True)
class AnswerConfig:
    """How open-ended turns are answered from the help center (endpoints.yml ``nlg.answers``)."""

    top_k: int = 3  # passages retrieved per question
    # Cosine similarity (all-MiniLM-L6-v2) of the best passage below which the
    # help center is taken to have no answer. Chosen on the held-out questions:
    # docs/benchmarks.md, "Answers".
    min_similarity: float = 0.45
    # Sentences of an extractive answer, at most, and their characters before the
    # citation. An article states its key facts in several sentences, so the third
    # sentence often holds the one the customer needs: on the held-out questions
    # correct answers rose from 70.6% (2 sentences, 320 characters) to 75.5%, and
    # to 76.5% with 4; a cut at a score margin below the best sentence lost instead
    # (docs/benchmarks.md, "Answers").
    max_sentences: int = 3
    max_chars: int = 480
    # Where the help center is published; a citation links <help_center_url>/<slug>.
    help_center_url: str = "https://kestrelhome.example/help"
    cite: bool = True  # append "Source: <title> (<link>)" to answers from the help center
    # Cosine similarity (all-MiniLM-L6-v2) of the message and a written reply's question
    # from which that reply is sent as written; below it the generator answers. MiniLM
    # puts short emotional messages far apart, so 0.6 sent a fitting written reply to 7 of
    # 40 held-out off-topic messages (and an unfitting one to 1), 0.45 to 24 (and to 2)
    # (bench/written_replies.py; docs/benchmarks.md, "Written replies").
    min_reply_similarity: float = 0.45
    # Cosine similarity (all-MiniLM-L6-v2) of the best passage from which a message that
    # no passage answers (below ``min_similarity``) still gets that passage's article
    # linked after the canned reply (``suggestion``): customers wrote "bluetooth speaker
    # keeps cutting out when i walk into the kitchen" or "my kettle has white scale
    # inside" with the right article first at 0.38-0.44. On the held-out questions of
    # bench/answers.py, 0.38 links the right article for 2 of the 4 answerable questions
    # between it and 0.45, and for the unanswerable ones mostly the product's own guide
    # ("what colors does the stand mixer come in"); below 0.38 the article is more often
    # unrelated ("can you book me a flight" -> delivery). The link states no fact. Set it
    # to ``min_similarity`` or above to link nothing.
    min_suggest_similarity: float = 0.38
    # Whether the generator writes the answers from the relevant passages (checked, with
    # the extractive answer as the fallback). None: when an inference server is set
    # (nlg.server) or the model in the archive learnt to answer from passages (its
    # meta's reads_passages: the GPT policy's answer_from_passages); true: also for a
    # local instruct checkpoint (config.yml base_model); false: never.
    generate: Optional[bool] = None
    # Whether a follow-up ("and express?", "does it cover drops?") is searched together
    # with the customer's earlier messages (``contextual_question``).
    follow_ups: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.top_k, int) or isinstance(self.top_k, bool) or self.top_k < 1:
            raise ValueError(f"top_k has to be an integer >= 1, got {self.top_k!r}.")
        if not -1.0 <= self.min_similarity <= 1.0:
            raise ValueError(f"min_similarity is a cosine similarity in [-1, 1], got "
                             f"{self.min_similarity!r}; 0.45 is the measured default.")
        if not -1.0 <= self.min_suggest_similarity <= 1.0:
            raise ValueError(f"min_suggest_similarity is a cosine similarity in [-1, 1], got "
                             f"{self.min_suggest_similarity!r}; set it to min_similarity "
                             f"({self.min_similarity!r}) or above to link no article.")
        if not -1.0 <= self.min_reply_similarity <= 1.0:
            raise ValueError(f"min_reply_similarity is a cosine similarity in [-1, 1], got "
                             f"{self.min_reply_similarity!r}.")
        if self.max_sentences < 1:
            raise ValueError(f"max_sentences has to be >= 1, got {self.max_sentences!r}.")
        if self.max_chars < 40:
            raise ValueError(f"max_chars has to be >= 40, got {self.max_chars!r}.")
        if not isinstance(self.follow_ups, bool):
            raise ValueError(f"follow_ups has to be true or false, got {self.follow_ups!r}.")
        if self.generate is not None and not isinstance(self.generate, bool):
            raise ValueError(f"generate has to be true, false or null (null: when a server "
                             f"is set), got {self.generate!r}.")

    @classmethod
    def from_dict(cls, values: Optional[Mapping[str, Any]]) -> "AnswerConfig":
        """Builds the config from a mapping, rejecting unknown keys.

        Raises:
            ValueError: on an unknown key or an invalid value.
        """
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown answers option(s) {unknown}; valid: {sorted(known)}.")
        return cls(**values)


@dataclass(frozen=True)
class Answer:
    """A reply to an open-ended turn and how it was made."""

    text: str
    mode: str  # GENERATED, EXTRACTIVE, RETRIEVED or FALLBACK
    sources: Tuple[Dict[str, Any], ...] = ()  # Hit.record() of each passage the reply used
    groundedness: Optional[Dict[str, Any]] = None  # grounding.Verdict.record()
    fallback: Optional[str] = None  # why the canned text was sent


# What marks a message as a follow-up that only reads with the one before it: it opens
# with a continuation ("and express?", "what about the uk?"), or it is short and points
# back with a pronoun ("how much does it cost", "do i get a discount for that?").
FOLLOW_UP_OPENING = re.compile(r"^\W*(?:and|but|also|so|or|what about|how about|what if)\b",
                               re.IGNORECASE)
FOLLOW_UP_POINTERS = frozenset("it its it's that this those these they them one then"
                               .split())
# A bare question that names nothing ("how often?", "how long?", "why not?") asks about
# whatever the message before it was about: "how do i descale my kettle" then "how often?"
# searched "how often?" alone and reached no article. Only these whole phrases, so that
# "how are you?" and "what's up" stay small talk.
FOLLOW_UP_BARE = re.compile(r"^\W*(?:how (?:often|long|much|many|soon|come)|why(?: not)?|when|"
                            r"where|what else|which one)\W*$", re.IGNORECASE)
# A short question made only of question words, auxiliaries, pronouns and verbs that
# name no topic asks about the message before it, as FOLLOW_UP_BARE's phrases do: "how
# long should i wait?" after the delivered-but-missing answer was searched alone and got
# the canned reply. "are", "is" and "up" are left out, so that "how are you?", "who are
# you" and "what's up" stay small talk; a noun ("restock", "delivery") names a topic.
FOLLOW_UP_GENERIC = frozenset(
    "how what when where which who why long much many often soon should would could can "
    "will do does did i we you to get take wait expect happen happens need now next then "
    "else".split())
FOLLOW_UP_MAX_WORDS = 8  # longer messages that point back ("it") usually name their topic
FOLLOW_UP_CHAIN = 3  # messages joined at most: a follow-up of a follow-up of a question


def is_follow_up(message: str) -> bool:
    """Whether ``message`` reads only with the message before it (``FOLLOW_UP_OPENING``,
    ``FOLLOW_UP_BARE``, or at most ``FOLLOW_UP_MAX_WORDS`` words with one of
    ``FOLLOW_UP_POINTERS`` or only ``FOLLOW_UP_GENERIC`` ones)."""
    words = re.findall(r"[a-z]+(?:'[a-z]+)?", (message or "").lower())
    short = len(words) <= FOLLOW_UP_MAX_WORDS
    return bool(FOLLOW_UP_OPENING.match(message or "")
                or FOLLOW_UP_BARE.match(message or "")) or short and (
        any(w in FOLLOW_UP_POINTERS for w in words)
        or bool(words) and all(w in FOLLOW_UP_GENERIC for w in words))


def contextual_question(messages: Sequence[str]) -> str:
    """What to search the help center with for the last of the customer's ``messages``.

    ``messages``: the customer's messages of the conversation, oldest first. A
    follow-up (``is_follow_up``) is searched together with the message before it,
    and that one with its own when it is a follow-up too, up to
    ``FOLLOW_UP_CHAIN`` messages: "how much is shipping" then "and express?"
    searches "how much is shipping and express?". Prepending the earlier
    utterances is the simplest baseline of conversational search (TREC CAsT
    2019, Dalton et al. 2020); on bench/data/follow_ups.yml it took the correct
    replies to follow-ups from 4 to 13 of 16 and changed none of the 8 new-topic
    questions (bench/follow_ups.py, docs/benchmarks.md "Follow-up questions").
    A message that is no follow-up comes back as it is; so does the first one.
    """
    if not messages:
        return ""
    joined = [messages[-1]]
    for earlier in reversed(messages[:-1]):
        if len(joined) == FOLLOW_UP_CHAIN or not is_follow_up(joined[0]):
            break
        joined.insert(0, earlier)
    return " ".join(m.strip() for m in joined) if len(joined) > 1 else messages[-1]


def retrieve(retriever: Optional[Retriever], question: str, config: AnswerConfig) -> List[Hit]:
    """The relevant passages for ``question``, best first ([] without a help center).

    When none is relevant and the question names a product, it is searched again
    with the product's name replaced by "item" (``Retriever.without_products``): a
    product's name draws a question about a policy towards the product's guide, so
    "can i pay for the mixer in instalments" reached no article above the
    threshold, and "can i pay for the item in instalments" the instalments one.
    The second search still leaves out the guides to other products: "my blender
    lid cracked" asked about "my item lid" must not reach the kettle guide's lid.
    """
    if retriever is None:
        return []
    hits = retriever.relevant(question, config.top_k, config.min_similarity)
    named = retriever.named_products(question)
    if not hits and named:
        hits = retriever.relevant(retriever.without_products(question), config.top_k,
                                  config.min_similarity, products=named)
    return hits


CITATION_LABEL = "Source: "  # starts the citation line, on its own line after the answer


def strip_citation(text: str) -> str:
    """``text`` without its citation line (a training target states no link)."""
    return text.split("\n" + CITATION_LABEL, 1)[0]


def citation(hit: Hit, config: AnswerConfig) -> str:
    """``"Source: <title> (<help_center_url>/<slug>)"``; ``split_citation`` reads it back."""
    url = f"{config.help_center_url.rstrip('/')}/{hit.passage.slug}"
    return f"{CITATION_LABEL}{hit.passage.title} ({url})"


@dataclass(frozen=True)
class Citation:
    """The article a reply cites, read from its citation line."""

    title: str
    url: str  # an http(s) link


# The citation line: the title (which may hold parentheses) and, last, the link in
# parentheses; a link holds no whitespace and no parentheses.
_CITATION_LINE = re.compile(
    re.escape(CITATION_LABEL) + r"(?P<title>\S.*?) \((?P<url>https?://[^\s()]+)\)")


def split_citation(text: str) -> Tuple[str, Optional[Citation]]:
    """``(answer, Citation)`` when the last line of ``text`` is a ``citation()`` line.

    The one reader of the format ``citation`` writes: the Slack channel calls it to
    show the source as a link, and the web chat's JavaScript (webchat/chat.js,
    ``splitCitation``) reads the line the same way, checked against ``citation``'s
    output by tests/components/channels/test_webchat.py. The line has to follow the
    answer on its own line and link an http(s) URL; otherwise the text is no
    citation and comes back whole, with None.
    """
    body, newline, last = text.rstrip().rpartition("\n")
    match = _CITATION_LINE.fullmatch(last.strip()) if newline else None
    if match is None:
        return text, None
    return body.rstrip(), Citation(match["title"], match["url"])


def source_record(hit: Hit, config: AnswerConfig) -> Dict[str, Any]:
    """``hit.record()`` with the public link of its article."""
    return {**hit.record(),
            "url": f"{config.help_center_url.rstrip('/')}/{hit.passage.slug}"}


# How much a sentence's section counts when the extractive answer picks sentences
# from the best article: score = cos(question, sentence) + SECTION_WEIGHT *
# cos(question, section) + HEADING_WEIGHT * cos(question, heading), where the section
# embedding is the index's (title, heading and text) and a heading is the article
# title for the opening paragraph. Chosen on the 698 questions of data/grounded/
# (their labelled section came first for 75.9% with the best passage's sentences
# alone, 77.4% with these weights; 1.0/0.5 sits on a plateau, 76-78% for 0.5-2.0
# and 0-1.0); docs/benchmarks.md "Answers" gives the held-out effect.
SECTION_WEIGHT, HEADING_WEIGHT = 1.0, 0.5
# A sentence at least this close (cosine) to one already chosen says the same thing
# again ("Kestrel Home has no published student discount." after the sentence that
# says so with the other groups); the next one is taken instead. On the held-out
# questions, correctness is the same for 0.8-1.0 (59.8%), one lower at 0.75.
REPEAT_SIMILARITY = 0.8
# A question about how to do something ("how do i descale the kettle") is answered in
# the article's order: its sentences are steps, and the closest one is often the last.
HOW_TO = re.compile(r"\W*(?:how\s+(?:do|can|should|would)\s+(?:i|we|you)|how\s+to|"
                    r"what\s+are\s+the\s+steps)\b", re.IGNORECASE)


def extractive(question: str, hits: Sequence[Hit], retriever: Retriever,
               config: AnswerConfig) -> Answer:
    """The sentences of the best hit's article closest to ``question``, cited.

    Why the whole article and not only the best passage: an article's opening
    paragraph often states the short answer ("no physical stores", the $4.95
    price) while a later section wins retrieval on a shared word; on the held-out
    questions 38 of the 87 wrong answers had the right article but another section.
    Sentences are scored as ``SECTION_WEIGHT`` says and kept in article order, the
    one closest to the question first and its section's next to it
    (``grounding.best_sentences``'s ``best_first`` and ``groups``), except for a
    how-to question (``HOW_TO``). Each section with
    a known question that matches (``Retriever.section_matches``) gets another
    ``SECTION_WEIGHT`` times that question's cosine, not only the section of the
    article's closest one: on the held-out questions with the right article given,
    correct answers rose from 175 to 178 of 204 (172 to 175 through retrieval; 129
    to 132 of the 159 with no near copy); over the retrieval tuning's seeds 0-2, on
    an index with 12 more known questions, 169 / 167 / 166 -> 171 / 168 / 167
    (bench/answer_seeds.py). On 421 known questions of
    data/grounded/, each left out of the matching in turn, the sentence closest to
    its written answer was chosen as often as before (362). Weights from 1.0 to 3.0
    gave the same figures; a threshold of 0.65 instead of ``QUESTION_MATCH`` gained
    2 more held-out answers but lost 10 of those 362.
    ``sources`` lists the passages the sentences came from, best hit first; each
    carries the best hit's fused and BM25 scores and its own cosine similarity.

    Raises:
        ValueError: if ``hits`` is empty.
    """
    if not hits:
        raise ValueError("An extractive answer needs at least one passage.")
    best = hits[0]
    article = retriever.article(best.passage.slug)  # embedded when the index was built
    q = retriever.query_vector(question)  # (dim,); encoded once for search and this
    section = (article.section_vectors @ q) * SECTION_WEIGHT \
        + (article.heading_vectors @ q) * HEADING_WEIGHT  # (len(article.rows),)
    matched = retriever.section_matches(q, best.passage.slug)  # {heading: cosine}
    section = section + SECTION_WEIGHT * np.array(
        [matched.get(retriever.passages[row].heading or "", 0.0) for row in article.rows])
    chosen = grounding.best_sentences(q, article.sentences, article.sentence_vectors,
                                      config.max_sentences, config.max_chars,
                                      bonus=section[article.sentence_rows],
                                      max_similarity=REPEAT_SIMILARITY,
                                      best_first=not HOW_TO.match(question),
                                      groups=article.sentence_rows)
    passages = [retriever.passages[i] for i in article.rows]
    used = sorted({k for k, s in zip(article.sentence_rows, article.sentences) if s in chosen},
                  key=lambda k: passages[k].id != best.passage.id)
    text = " ".join(chosen)
    verdict = grounding.check(text, [passages[k].text for k in used])
    if config.cite:
        text = f"{text}\n{citation(best, config)}"
    sources = tuple(source_record(best if passages[k].id == best.passage.id else
                                  Hit(passages[k], best.score,
                                      float(article.section_vectors[k] @ q), best.bm25),
                                  config) for k in used)
    return Answer(text, EXTRACTIVE, sources, verdict.record())


# Put between the canned reply and the citation line of the article ``suggestion`` found:
# the canned text still says the question was not answered; the line says where to read.
SUGGESTION_LEAD = "This help article may be related:"


def suggestion(retriever: Optional[Retriever], question: str,
               config: AnswerConfig) -> Optional[Hit]:
    """The best passage for a ``question`` that no passage answers, when it comes close.

    Returns the first ``Retriever.search`` hit when its cosine similarity reaches
    ``config.min_suggest_similarity`` and stays below ``config.min_similarity``
    (at or above, ``retrieve`` already answers from it); None otherwise, and
    without a help center.
    """
    if retriever is None:
        return None
    hits = retriever.search(question, 1)
    if hits and config.min_suggest_similarity <= hits[0].dense < config.min_similarity:
        return hits[0]
    return None


def suggested(fallback: str, hit: Hit, config: AnswerConfig) -> str:
    """The canned ``fallback`` text, ``SUGGESTION_LEAD`` and ``hit``'s citation line
    (which the web chat and Slack show as a link, as under an answer)."""
    return f"{fallback.rstrip()} {SUGGESTION_LEAD}\n{citation(hit, config)}"


# Opens the reply to a follow-up whose extractive answer would only repeat the reply
# before it: "can i use it for raw meat?" after the bamboo board's care answer, which
# the article does not cover, got the same three sentences again with nothing to say
# that they were all the help center had. The sentences stay: of 26 follow-ups (the 16
# of bench/data/follow_ups.yml and 10 written for a probe), 7 repeated the last reply
# and for 4 of them ("and express?" after the shipping costs) the sentences hold the
# answer; keeping only the sentence closest to the follow-up lost it for 2 of those 4.
REPEAT_LEAD = "The help center says no more about that than my last answer:"


def repeats(text: str, previous: str) -> bool:
    """Whether every sentence of the reply ``text`` was in the ``previous`` reply
    (citation lines aside): sending it would only say the same again."""
    said = set(grounding.split_sentences(strip_citation(previous).removeprefix(REPEAT_LEAD)))
    sentences = grounding.split_sentences(strip_citation(text))
    return bool(sentences) and all(s in said for s in sentences)


def repeated(text: str) -> str:
    """The reply ``text`` (which ``repeats`` the last one) opened with ``REPEAT_LEAD``."""
    return f"{REPEAT_LEAD} {text}"


def written(match) -> Answer:
    """A written reply (``replies.Match``) as the answer, sent as written (RETRIEVED)."""
    text = match.reply.answer
    return Answer(text, RETRIEVED, (match.record(),), grounding.check(text, [text]).record())


def answer_hit(answer: Answer, hits: Sequence[Hit]) -> Hit:
    """The extractive ``answer``'s sentences as one passage of the best hit's article.

    What the generator is given to write a help-center answer from: the sentences
    the extractive answer chose across the whole article (the context compression
    of RECOMP, Xu et al. 2023), so that it answers from the article's key facts
    and not from a section that won retrieval on a shared word. The groundedness
    check then holds the reply to exactly these sentences.

    Raises:
        ValueError: if ``hits`` is empty.
    """
    if not hits:
        raise ValueError("The answer's passage needs the hit it was answered from.")
    best = hits[0]
    passage = dataclasses.replace(best.passage, text=strip_citation(answer.text))
    return dataclasses.replace(best, passage=passage)


def prompt_passages(hits: Sequence[Hit]) -> List[str]:
    """The hits' passages as the generator's prompt shows them (``prompt.format_passage``)."""
    return [format_passage(h.passage.title, h.passage.heading, h.passage.text) for h in hits]


# Why a reply written from passages was not sent although nothing in it was unsupported:
# it stated no fact at all ("I'm not sure what's a free label."), so it answers nothing.
NOT_AN_ANSWER = "not_an_answer"


def decide(text: str, hits: Sequence[Hit], config: AnswerConfig,
           needs_fact: bool = False) -> Answer:
    """Checks a generated reply (already through the guardrails) against ``hits``.

    Grounded: the reply, cited when it used passages. Not grounded: a FALLBACK
    answer with ``fallback="unsupported"`` and empty text (the caller sends its
    canned text). With ``needs_fact`` (a reply written from the passages), a
    reply whose sentences state no fact is no answer either: FALLBACK with
    ``fallback=NOT_AN_ANSWER``, so that the caller sends the extractive answer
    rather than a cited reply that says nothing (a tiny model's reply through
    llama.cpp's server did, in tests/test_llama_server_e2e.py).
    """
    verdict = grounding.check(text, [h.passage.text for h in hits])
    if not verdict.grounded:
        return Answer("", FALLBACK, (), verdict.record(), fallback="unsupported")
    if needs_fact and not any(s.factual for s in verdict.sentences):
        return Answer("", FALLBACK, (), verdict.record(), fallback=NOT_AN_ANSWER)
    sources = tuple(source_record(h, config) for h in hits)
    if hits and config.cite:
        text = f"{text}\n{citation(hits[0], config)}"
    return Answer(text, GENERATED, sources, verdict.record())
