"""Hybrid passage retrieval over the help center: BM25 + dense embeddings, fused by RRF.

Why hybrid: BM25 (Robertson & Zaragoza 2009; the bm25s library) finds the rare
exact words a customer types ("PO box", "Kestrel Care Plus", "AMEX"), and the dense
all-MiniLM-L6-v2 embedding finds paraphrases that share no word with the article
("my money hasn't shown up" -> card refund timing). Their rankings are fused by
reciprocal rank fusion (Cormack, Clarke & Buettcher 2009): score(p) = sum over
rankers of weight / (RRF_K + rank), with RRF_K = 60 from that paper and the
weights of ``RANKER_WEIGHTS``. RRF needs no
calibration between the two score scales. docs/benchmarks.md ("Answers") compares
BM25 alone, dense alone and the fusion on the held-out questions.

Why numpy and not FAISS: the help center holds a few hundred passages, so exact
search is one (N, 384) x (384,) product, well under a millisecond; faiss-cpu's
current wheels also need numpy >= 1.25, above Rasa 3.6's pin. Exact search stays
below about 5 ms up to roughly 100,000 passages (150 MB of float32), past which an
approximate index would be worth it (docs/benchmarks.md gives the measurement).

Tried and dropped (2026-12-02, on 131 questions of data/grounded held apart): the
written customer questions as extra keys of their passage (doc2query, Nogueira et
al. 2019) lowered article hit@1 from 70% to 59%, and appended to the passage text
from 70% to 67%: short questions of other articles outranked the right passage.

**Known questions, a third ranker (2026-12-03).** The questions of data/grounded/
(each written for one section of one article) are embedded into the index, and an
article whose closest known question reaches ``QUESTION_MATCH`` (cosine 0.7) gets a
third RRF vote, ranked by that similarity. Only a close paraphrase votes, so a
question no known question resembles is ranked by BM25 and the dense passage
embedding alone. Such a match also lets the hit pass the relevance threshold, and
the extractive answer prefers the sections of the matched questions
(``Retriever.section_matches``).
A match does not count when its article shares few of the query's words
(``QUESTION_MIN_BM25_SHARE``): a known question about another product is another question.
On the held-out questions (bench/answers.py) article hit@1 went from 80.9% to
85.8% and correct answers from 59.8% to 70.6% (54.1% -> 66.0% on the 159 with no near
copy, cosine >= 0.92, among the known questions). Held apart from data/grounded
itself it loses (article hit@1 75.2% -> 68.1% leave-one-out), because
there the held-apart question is the only one of its section and the nearest
remaining known question belongs to another article; in the shipped index every
one of the 725 sections has its own known questions, as the held-out questions' have
(since 2026-12-04; 685 before, with no held-out figure changed by the other 40).

**A tuned encoder (2026-12-05).** With the GPT policy's ``retrieval_tuning``,
``rasa train`` first tunes a LoRA adapter of all-MiniLM-L6-v2 on the known
questions (components/generator/tuning.py) and indexes with it; the adapter is
stored in the index folder (``tuning.ADAPTER_DIR``) and ``tuning.index_encoder``
loads the encoder an index was built with. The thresholds (``QUESTION_MATCH``,
``answers.AnswerConfig.min_similarity``) are unchanged: docs/benchmarks.md
("Retrieval tuning", "Answers") gives the effect.

**Products (2026-12-05).** A product guide lists the words customers call its product
by (front matter ``products``, knowledge.py). When a question names a product of
the help center ("my blender lid cracked"), the guides to other products are left
out of the ranking (``Retriever.named_products``); the articles that are no product
guide (returns, warranty) stay. Without it, "my blender lid cracked after two
months, can i get a new one" was answered from the Electric Kettle guide's section
on its lid. docs/benchmarks.md ("Answers") gives the held-out effect.

The index is a folder: ``passages.json``, ``embeddings.npy`` (float32, (N, 384),
L2-normalised), the bm25s index, and what the extractive answer reads, embedded
once at build time instead of on every answer: ``headings.npy`` (float32, (N, 384):
each passage's heading, or its article's title for an opening paragraph),
``sentences.json`` (``[passage row, sentence]`` for every sentence of every passage,
``grounding.split_sentences``) and ``sentence_embeddings.npy`` (float32, (M, 384)),
and the known questions: ``questions.json`` and ``question_embeddings.npy``
(float32, (Q, 384)).
``rasa train`` writes it into the model archive (the GPT policy), so every replica
serves the same read-only index. The encoder is passed in (``Encoder``), so this
module imports neither Rasa nor the sentence-transformers stack.
"""
from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from components.generator.grounding import split_sentences
from components.generator.knowledge import KnownQuestion, Passage

# texts -> float32 array of shape (len(texts), dim), each row L2-normalised
Encoder = Callable[[Sequence[str]], np.ndarray]

RRF_K = 60  # Cormack et al. 2009, the constant of reciprocal rank fusion
# Each ranker's vote in the fusion: dense, BM25, known questions (weighted RRF). The
# dense ranker counts 3 times: on known questions held apart (bench/retrieval_tuning.py)
# article hit@1 rose from 79.6% to 81.0% with the tuned encoder (71.4% to 74.1%
# untuned); on the held-out questions from 87.3% to 88.7% (docs/benchmarks.md).
RANKER_WEIGHTS = (3.0, 1.0, 1.0)
CANDIDATES = 50  # passages each ranker contributes to the fusion
MAX_QUERY_CHARS = 1000  # longer questions are cut before encoding (MiniLM reads 256 word pieces)
PASSAGES_FILE, EMBEDDINGS_FILE, BM25_DIR = "passages.json", "embeddings.npy", "bm25"
HEADINGS_FILE, SENTENCES_FILE = "headings.npy", "sentences.json"
SENTENCE_EMBEDDINGS_FILE = "sentence_embeddings.npy"
QUESTIONS_FILE = "questions.json"
QUESTION_EMBEDDINGS_FILE = "question_embeddings.npy"
QUESTION_MATCH = 0.7  # cosine from which a known question counts as the same question
# A known question's match is dropped when its article's best BM25 score is below this
# share of the best BM25 score of all: "is the stand mixer bowl dishwasher safe" matched
# "is the skillet dishwasher safe" at cosine 0.72 and the skillet's care article was
# sent, while the Stand Mixer guide held the most query words (BM25 7.9 vs 1.8). On the
# held-apart known questions (bench/retrieval_tuning.py's split) hit@1 is 83.7% for any
# share from 0 to 0.4 and 84.4% at 0.5; the held-out questions of bench/answers.py keep
# 167 correct answers from 0 to 0.33, 166 at 0.4, 165 at 0.5; the case above needs 0.25.
QUESTION_MIN_BM25_SHARE = 0.3
# Part of the GPT policy's training-cache key: raise it when the folder's files change,
# so that `rasa train` rebuilds an index that an older version wrote.
INDEX_FORMAT = 4
GENERIC_PRODUCT = "item"  # what ``Retriever.without_products`` puts for a product's name
WORD = re.compile(r"\w+", re.UNICODE)


def product_pattern(names: Sequence[str]) -> Optional[re.Pattern]:
    """A regex that finds any of the product ``names`` ("air fryer") as whole words in
    lower-cased text, plural or hyphenated ("air-fryers"); None for no names. The
    group that matched (``Match.lastgroup``) is ``p<i>``, ``i`` the name's position in
    ``names``."""
    if not names:
        return None
    gap = r"[\s-]+"  # between the words of a name: "air fryer", "air-fryer"
    alternatives = [rf"(?P<p{i}>\b{gap.join(map(re.escape, name.split()))}(?:e?s)?\b)"
                    for i, name in enumerate(names)]
    return re.compile("|".join(alternatives))


@dataclass(frozen=True)
class ArticleText:
    """An article's passages and sentences with their embeddings (all L2-normalised)."""

    rows: List[int]  # indices into Retriever.passages, in article order
    section_vectors: np.ndarray  # (len(rows), dim): the passages' index embeddings
    heading_vectors: np.ndarray  # (len(rows), dim)
    sentences: List[str]  # every sentence of the article, in order
    sentence_rows: List[int]  # for each sentence, its position in ``rows``
    sentence_vectors: np.ndarray  # (len(sentences), dim)


@dataclass(frozen=True)
class Hit:
    """One retrieved passage and why it ranked where it did."""

    passage: Passage
    score: float  # the fused RRF score (higher is better)
    dense: float  # cosine similarity of question and passage, in [-1, 1]
    bm25: float  # BM25 score (0 when no query word occurs in the passage)
    # cosine of the article's closest known question when it reaches QUESTION_MATCH, else 0
    question: float = 0.0

    def record(self) -> dict:
        """What the tracker stores for a source: id, slug, title, url and scores (rounded)."""
        record = {"id": self.passage.id, "slug": self.passage.slug, "title": self.passage.title,
                  "url": self.passage.url, "score": round(self.score, 5),
                  "dense": round(self.dense, 4), "bm25": round(self.bm25, 3)}
        if self.question:
            record["question"] = round(self.question, 4)
        return record


def tokenize(text: str) -> List[str]:
    """Lower-cased word tokens for BM25: Unicode word characters, no stemming, without
    bm25s's extended English stop words (179, NLTK's list: "how", "my", "on", ...).

    Question words must not vote: with Lucene's 33 stop words, "how much is
    delivery" ranked "How long card refunds take" first on the shared "how".
    """
    from bm25s.stopwords import STOPWORDS_EN_PLUS  # noqa: PLC0415 - with the index only

    return [w for w in WORD.findall(text.lower()) if w not in STOPWORDS_EN_PLUS]


def check_questions(passages: Sequence[Passage], questions: Sequence[KnownQuestion]) -> None:
    """Checks that each known question names an article and section that ``passages`` have.

    Raises:
        ValueError: naming the first question that does not, and the fix.
    """
    sections = {(p.slug, p.heading or "") for p in passages}
    for q in questions:
        if (q.slug, q.section) not in sections:
            raise ValueError(f"The known question {q.question!r} names article {q.slug!r}, "
                             f"section {q.section!r}, which the help center does not have; "
                             f"fix its slug or section, or the article.")


class Retriever:
    """Ranks help-center passages for a question (see module docstring).

    Build with ``Retriever.build(passages, encoder)``, store with ``save``, and
    read back with ``Retriever.load(folder, encoder)``. ``search`` is read-only
    and thread-safe.
    """

    def __init__(self, passages: Sequence[Passage], embeddings: np.ndarray, bm25,
                 encoder: Encoder, headings: np.ndarray,
                 sentences: Sequence[Tuple[int, str]], sentence_embeddings: np.ndarray,
                 questions: Sequence[KnownQuestion] = (),
                 question_embeddings: Optional[np.ndarray] = None) -> None:
        """Wraps a built index. ``embeddings`` and ``headings``: float32, shape
        (len(passages), dim); ``sentences``: (passage row, sentence) pairs;
        ``sentence_embeddings``: float32, shape (len(sentences), dim);
        ``question_embeddings``: float32, shape (len(questions), dim).

        Raises:
            ValueError: if the arrays do not match the passages, sentences or questions.
        """
        if question_embeddings is None:
            question_embeddings = np.zeros((0, embeddings.shape[1]), dtype=np.float32)
        if not len(passages) == embeddings.shape[0] == headings.shape[0] or \
                len(sentences) != sentence_embeddings.shape[0] or \
                len(questions) != question_embeddings.shape[0]:
            raise ValueError(f"{len(passages)} passages, {len(sentences)} sentences and "
                             f"{len(questions)} questions but {embeddings.shape[0]} / "
                             f"{headings.shape[0]} / {sentence_embeddings.shape[0]} / "
                             f"{question_embeddings.shape[0]} embeddings; rebuild the index "
                             f"with `rasa train`.")
        self.passages = list(passages)
        self.embeddings = embeddings
        self.bm25 = bm25
        self.encoder = encoder
        self.headings = headings
        self.sentences = [(int(row), text) for row, text in sentences]
        self.sentence_embeddings = sentence_embeddings
        self.questions = list(questions)
        self.question_embeddings = question_embeddings
        self._rows_by_slug: Dict[str, List[int]] = {}
        for i, passage in enumerate(self.passages):
            self._rows_by_slug.setdefault(passage.slug, []).append(i)
        self._sentences_by_row: Dict[int, List[int]] = {}
        for j, (row, _) in enumerate(self.sentences):
            self._sentences_by_row.setdefault(row, []).append(j)
        self._product_names = sorted({n for p in self.passages for n in p.products})
        self._products = product_pattern(self._product_names)

    @classmethod
    def build(cls, passages: Sequence[Passage], encoder: Encoder,
              questions: Sequence[KnownQuestion] = ()) -> "Retriever":
        """Embeds and indexes ``passages`` and the known ``questions``.

        Raises:
            ValueError: if ``passages`` is empty, or a question names an article or
                section that no passage has (the message names the question and the fix).
        """
        check_questions(passages, questions)
        import bm25s  # noqa: PLC0415 - only needed where an index is built or loaded

        if not passages:
            raise ValueError("No passages to index: the help center is empty.")
        texts = [p.search_text() for p in passages]
        embeddings = np.asarray(encoder(texts), dtype=np.float32)
        bm25 = bm25s.BM25()
        bm25.index([tokenize(t) for t in texts], show_progress=False)
        headings = np.asarray(encoder([p.heading or p.title for p in passages]), dtype=np.float32)
        sentences = [(i, s) for i, p in enumerate(passages) for s in split_sentences(p.text)]
        sentence_embeddings = np.asarray(encoder([s for _, s in sentences]), dtype=np.float32)
        question_embeddings = (np.asarray(encoder([q.question for q in questions]),
                                          dtype=np.float32) if questions else None)
        # Search reads where each question points; its written answer trains the
        # generator (train.passage_examples) and is not part of the index.
        questions = [replace(q, answer="") for q in questions]
        return cls(passages, embeddings, bm25, encoder, headings, sentences, sentence_embeddings,
                   questions, question_embeddings)

    def save(self, folder: Path) -> None:
        """Writes the index into ``folder`` (created if missing)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / PASSAGES_FILE).write_text(
            json.dumps([asdict(p) for p in self.passages], ensure_ascii=False, indent=1),
            encoding="utf-8")
        np.save(folder / EMBEDDINGS_FILE, self.embeddings)
        self.bm25.save(str(folder / BM25_DIR))
        np.save(folder / HEADINGS_FILE, self.headings)
        (folder / SENTENCES_FILE).write_text(json.dumps(self.sentences, ensure_ascii=False),
                                             encoding="utf-8")
        np.save(folder / SENTENCE_EMBEDDINGS_FILE, self.sentence_embeddings)
        (folder / QUESTIONS_FILE).write_text(
            json.dumps([asdict(q) for q in self.questions], ensure_ascii=False, indent=1),
            encoding="utf-8")
        np.save(folder / QUESTION_EMBEDDINGS_FILE, self.question_embeddings)

    @classmethod
    def load(cls, folder: Path, encoder: Encoder) -> "Retriever":
        """Reads an index written by ``save``.

        Raises:
            FileNotFoundError: if a file of the index is missing.
        """
        import bm25s  # noqa: PLC0415 - see build

        folder = Path(folder)
        passages = [Passage(**{**p, "products": tuple(p.get("products", ()))}) for p in
                    json.loads((folder / PASSAGES_FILE).read_text(encoding="utf-8"))]
        embeddings = np.load(folder / EMBEDDINGS_FILE)
        for name in (BM25_DIR, HEADINGS_FILE, SENTENCES_FILE, SENTENCE_EMBEDDINGS_FILE,
                     QUESTIONS_FILE, QUESTION_EMBEDDINGS_FILE):
            if not (folder / name).exists():
                raise FileNotFoundError(f"{folder / name} is missing (an index of an older "
                                        f"version?); rebuild with `rasa train`.")
        bm25 = bm25s.BM25.load(str(folder / BM25_DIR))
        sentences = json.loads((folder / SENTENCES_FILE).read_text(encoding="utf-8"))
        questions = [KnownQuestion(**q) for q in
                     json.loads((folder / QUESTIONS_FILE).read_text(encoding="utf-8"))]
        return cls(passages, embeddings, bm25, encoder, np.load(folder / HEADINGS_FILE),
                   sentences, np.load(folder / SENTENCE_EMBEDDINGS_FILE), questions,
                   np.load(folder / QUESTION_EMBEDDINGS_FILE))

    def question_matches(self, vector: np.ndarray) -> Dict[str, float]:
        """Per article (slug), the cosine of its closest known question when it reaches
        ``QUESTION_MATCH``; articles without one are left out. Which section that
        question names is ``section_matches``'s to say.

        ``vector``: the question's embedding, float32, shape (dim,).
        """
        matches: Dict[str, float] = {}
        if not self.questions:
            return matches
        similarity = self.question_embeddings @ vector  # (len(questions),)
        for j in np.flatnonzero(similarity >= QUESTION_MATCH):
            slug = self.questions[j].slug
            matches[slug] = max(matches.get(slug, 0.0), float(similarity[j]))
        return matches

    def section_matches(self, vector: np.ndarray, slug: str) -> Dict[str, float]:
        """Per section (heading; "" for the opening paragraph) of the article ``slug``,
        the cosine of its closest known question when it reaches ``QUESTION_MATCH``.

        ``vector``: the question's embedding, float32, shape (dim,). Sections with no
        such known question are left out; so is every section without known questions.
        """
        matches: Dict[str, float] = {}
        if not self.questions:
            return matches
        similarity = self.question_embeddings @ vector  # (len(questions),)
        for j in np.flatnonzero(similarity >= QUESTION_MATCH):
            q = self.questions[j]
            if q.slug == slug:
                matches[q.section] = max(matches.get(q.section, 0.0), float(similarity[j]))
        return matches

    def _lexically_plausible(self, matches: Dict[str, float],
                             bm25: np.ndarray) -> Dict[str, float]:
        """``matches`` (``question_matches``) without those whose article's best BM25
        score is below ``QUESTION_MIN_BM25_SHARE`` of ``bm25.max()``: a known question
        about another product ("the skillet") is not the customer's question ("the
        stand mixer bowl"). ``bm25``: shape (len(passages),). All kept when no passage
        shares a word with the query."""
        best = float(bm25.max()) if len(bm25) else 0.0
        if not matches or best <= 0:
            return matches
        floor = QUESTION_MIN_BM25_SHARE * best
        return {slug: match for slug, match in matches.items()
                if float(bm25[self._rows_by_slug[slug]].max()) >= floor}

    def named_products(self, query: str) -> frozenset:
        """The product names (``Passage.products``) that ``query`` names, lower-cased:
        "My Air-Fryers smell" names {"air fryer"}; empty when it names none."""
        if self._products is None:
            return frozenset()
        return frozenset(self._product_names[int(m.lastgroup[1:])]
                         for m in self._products.finditer((query or "").lower()))

    def without_products(self, query: str) -> str:
        """``query`` lower-cased, with each product it names replaced by ``GENERIC_PRODUCT``:
        "can i pay for the Stand Mixer in instalments" -> "can i pay for the item in
        instalments" (see ``answers.retrieve``)."""
        text = (query or "").lower()
        return self._products.sub(GENERIC_PRODUCT, text) if self._products else text

    def _other_products(self, named: frozenset) -> np.ndarray:
        """Which passages are guides to a product not in ``named`` (bool, shape
        (len(passages),)); all False when ``named`` is empty."""
        if not named:
            return np.zeros(len(self.passages), dtype=bool)
        return np.array([bool(p.products) and named.isdisjoint(p.products)
                         for p in self.passages], dtype=bool)

    def _bm25_scores(self, query: str) -> np.ndarray:
        tokens = tokenize(query)
        if not tokens:
            return np.zeros(len(self.passages), dtype=np.float32)
        return np.asarray(self.bm25.get_scores(tokens), dtype=np.float32)

    def search(self, query: str, k: int = 3, mode: str = "hybrid",
               weights: Tuple[float, float, float] = RANKER_WEIGHTS,
               products: Optional[frozenset] = None) -> List[Hit]:
        """The ``k`` best passages for ``query``, best first, each from another article.

        Collapsed by article: a second passage of an article already in the list is
        skipped, so the ``k`` hits name ``k`` articles (on the questions of
        data/grounded/ this raised article hit@3 from 88.4% to 92.1%; hit@1 is
        unchanged, and the extractive answer reads only the first hit).

        ``mode``: "hybrid" (RRF of BM25, dense and, where one matches, the known
        questions, each vote times its ``weights`` entry: dense, BM25, known
        questions; without the guides to products other than the one the query
        names, ``named_products``, or those ``products`` names when given), "dense" or
        "bm25" (one ranker alone, for the benchmark). Empty,
        very long and non-Latin questions are answered (possibly with low scores),
        never refused.

        Raises:
            ValueError: on ``k`` < 1 or an unknown ``mode``.
        """
        if k < 1:
            raise ValueError(f"k has to be >= 1, got {k}.")
        if mode not in ("hybrid", "dense", "bm25"):
            raise ValueError(f"mode has to be 'hybrid', 'dense' or 'bm25', got {mode!r}.")
        query = (query or "")[:MAX_QUERY_CHARS]
        vector = self.query_vector(query)
        dense = self.embeddings @ vector  # (N,)
        bm25 = self._bm25_scores(query)  # (N,)
        matches: Dict[str, float] = {}
        if mode == "dense":
            fused = dense.astype(np.float64)
        elif mode == "bm25":
            fused = bm25.astype(np.float64) + 1e-6 * dense  # ties (no shared word) by meaning
        else:
            matches = self._lexically_plausible(self.question_matches(vector), bm25)
            known = np.array([matches.get(p.slug, 0.0) for p in self.passages])
            fused = np.zeros(len(self.passages))
            for weight, scores in zip(weights, (dense, bm25, known)):
                order = np.argsort(-scores, kind="stable")[:CANDIDATES]
                if scores is not dense:
                    order = order[scores[order] > 0]  # no query word / no known question: no vote
                fused[order] += weight / (RRF_K + 1 + np.arange(len(order)))
            fused += 1e-9 * dense  # equal fused scores: the closer meaning first
        if products is None:
            products = self.named_products(query)
        excluded = (self._other_products(products) if mode == "hybrid"
                    else np.zeros(len(self.passages), dtype=bool))
        best: List[int] = []
        for i in np.argsort(-fused, kind="stable"):
            if not excluded[i] and all(self.passages[j].slug != self.passages[i].slug
                                       for j in best):
                best.append(int(i))  # an article's best passage stands for it
                if len(best) == k:
                    break
        return [Hit(self.passages[i], float(fused[i]), float(dense[i]), float(bm25[i]),
                    matches.get(self.passages[i].slug, 0.0)) for i in best]

    def article(self, slug: str) -> ArticleText:
        """The article ``slug``'s passages and sentences, with their stored embeddings.

        Raises:
            KeyError: if no passage belongs to ``slug``.
        """
        rows = self._rows_by_slug[slug]
        picked = [(k, j) for k, row in enumerate(rows) for j in self._sentences_by_row.get(row, [])]
        return ArticleText(rows, self.embeddings[rows], self.headings[rows],
                           [self.sentences[j][1] for _, j in picked], [k for k, _ in picked],
                           self.sentence_embeddings[[j for _, j in picked]])

    def query_vector(self, query: str) -> np.ndarray:
        """``query``'s embedding as ``search`` uses it: float32, shape (dim,).

        Cut to ``MAX_QUERY_CHARS`` first, as ``replies.ReplyBank.nearest`` cuts it,
        so a ``CachedEncoder`` encodes a question once for both.
        """
        return np.asarray(self.encoder([(query or "")[:MAX_QUERY_CHARS]]), dtype=np.float32)[0]

    def relevant(self, query: str, k: int, min_similarity: float,
                 products: Optional[frozenset] = None) -> List[Hit]:
        """``search`` (``products`` as there), keeping the hits whose cosine similarity
        reaches ``min_similarity`` and those whose article has a known question that
        matches (``Hit.question``)."""
        return [h for h in self.search(query, k, products=products)
                if h.dense >= min_similarity or h.question]


class CachedEncoder:
    """An ``Encoder`` that keeps the vectors of the last ``size`` texts it encoded.

    One open-ended turn reads its question three times: the written replies
    (``replies.ReplyBank.nearest``), the retrieval (``Retriever.search``) and the
    extractive answer's sentence scores (``answers.extractive``). With one
    ``CachedEncoder`` behind all three the question is encoded once. Thread-safe
    (the decode worker and the server's event loop both call it); a call with
    several new texts encodes them in one batch.
    """

    def __init__(self, encode: Encoder, size: int = 256) -> None:
        """``encode``: the encoder to wrap; ``size``: texts kept (the least recently used go)."""
        self._encode = encode
        self._size = size
        self._vectors: "OrderedDict[str, np.ndarray]" = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """float32, shape (len(texts), dim)."""
        texts = list(texts)
        with self._lock:
            found = {t: self._vectors[t] for t in texts if t in self._vectors}
            for text in found:
                self._vectors.move_to_end(text)
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:  # encoded outside the lock: one slow call does not hold up the rest
            vectors = np.asarray(self._encode(missing), dtype=np.float32)
            found.update(zip(missing, vectors))
            with self._lock:
                self._vectors.update(zip(missing, vectors))
                while len(self._vectors) > self._size:
                    self._vectors.popitem(last=False)
        return np.stack([found[t] for t in texts]) if texts else np.zeros((0, 0), np.float32)


_SHARED: List[CachedEncoder] = []  # minilm_encoder's one instance, made on first call
_SHARED_LOCK = threading.Lock()


def minilm_encoder() -> Encoder:
    """The project's all-MiniLM-L6-v2 as an ``Encoder`` (loaded on first use, offline).

    Every call returns the same ``CachedEncoder``, so the retriever and the
    written replies share its cache.
    """
    from components.nlu import minilm  # noqa: PLC0415 - torch + transformers, loaded lazily

    def encode(texts: Sequence[str]) -> np.ndarray:
        with minilm.LOCK:  # the model is shared with the NLU featurizer (see minilm.LOCK)
            vectors = minilm.load().encode(list(texts), batch_size=64, normalize_embeddings=True,
                                           show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)

    with _SHARED_LOCK:
        if not _SHARED:
            _SHARED.append(CachedEncoder(encode))
        return _SHARED[0]


def top_passage(hits: Sequence[Hit]) -> Optional[Hit]:
    """The best hit, or None."""
    return hits[0] if hits else None
