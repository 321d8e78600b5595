"""Hybrid retrieval on the real all-MiniLM-L6-v2 encoder and BM25 (bm25s)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from components.generator.answers import AnswerConfig, extractive
from components.generator.knowledge import KnownQuestion, Passage
from components.generator import retrieval
from components.generator.retrieval import (QUESTION_MATCH, QUESTIONS_FILE, RANKER_WEIGHTS, RRF_K,
                                             CachedEncoder, Retriever, minilm_encoder, tokenize)

PASSAGES = [
    Passage("shipping-costs#0", "shipping-costs", "Shipping costs", "",
            "Standard shipping is free on orders over $50; below that it costs $4.95."),
    Passage("card-refund-timing#0", "card-refund-timing", "How long card refunds take", "",
            "A card refund can take up to 3 more business days to show after we send it."),
    Passage("kestrel-care-plus#0", "kestrel-care-plus", "Kestrel Care Plus", "",
            "Kestrel Care Plus adds accidental damage cover for 3 years."),
    Passage("damaged-box#0", "damaged-box", "A wet or damaged box", "",
            "Photograph a wet or crushed parcel before opening it, then contact us."),
]


@pytest.fixture(scope="module")
def encoder():
    return minilm_encoder()


@pytest.fixture(scope="module")
def retriever(encoder):
    return Retriever.build(PASSAGES, encoder)


@pytest.mark.parametrize("question,expected", [
    ("my money hasn't appeared on my visa yet", "card-refund-timing#0"),  # paraphrase: dense
    ("what does Kestrel Care Plus cover?", "kestrel-care-plus#0"),  # exact name: BM25 too
    ("the parcel came soaking wet", "damaged-box#0"),
    ("how much is delivery", "shipping-costs#0"),
])
def test_the_right_passage_ranks_first(retriever, question, expected):
    assert retriever.search(question, k=1)[0].passage.id == expected


@pytest.mark.parametrize("weights", [RANKER_WEIGHTS, (1.0, 1.0, 1.0), (1.0, 5.0, 1.0)])
def test_fusion_is_weighted_reciprocal_rank_fusion_of_both_rankings(retriever, encoder, weights):
    question = "Kestrel Care Plus accidental damage"
    hits = retriever.search(question, k=len(PASSAGES), weights=weights)
    dense = retriever.embeddings @ encoder([question])[0]
    bm25 = np.asarray(retriever.bm25.get_scores(tokenize(question)))
    for hit in hits:
        i = [p.id for p in PASSAGES].index(hit.passage.id)
        expected = weights[0] / (RRF_K + 1 + int(np.sum(dense > dense[i]))) + 1e-9 * dense[i]
        if bm25[i] > 0:
            expected += weights[1] / (RRF_K + 1 + int(np.sum(bm25 > bm25[i])))
        assert hit.score == pytest.approx(expected)
        assert hit.dense == pytest.approx(float(dense[i]), abs=1e-5)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


@pytest.mark.parametrize("question", ["", "   ", "x" * 50_000, "退款需要多长时间？",
                                      "Сколько стоит доставка?", "🙂🙂🙂", "\x00\x01"])
def test_odd_questions_retrieve_without_error(retriever, question):
    hits = retriever.search(question, k=2)
    assert len(hits) == 2 and all(-1.0 <= h.dense <= 1.0 for h in hits)


def test_save_and_load_give_the_same_ranking(retriever, encoder, tmp_path):
    retriever.save(tmp_path / "index")
    loaded = Retriever.load(tmp_path / "index", encoder)
    assert loaded.passages == PASSAGES
    for question in ["refund on my card", "free shipping", "wet box"]:
        assert [h.record() for h in loaded.search(question, 3)] == \
            [h.record() for h in retriever.search(question, 3)]
    for slug in {p.slug for p in PASSAGES}:  # what the extractive answer reads
        stored, built = loaded.article(slug), retriever.article(slug)
        assert (stored.rows, stored.sentences, stored.sentence_rows) == \
            (built.rows, built.sentences, built.sentence_rows)
        assert np.array_equal(stored.sentence_vectors, built.sentence_vectors)
        assert np.array_equal(stored.heading_vectors, built.heading_vectors)


def test_relevant_keeps_only_similar_passages(retriever):
    assert retriever.relevant("what's your favourite colour?", 3, min_similarity=0.5) == []
    assert retriever.relevant("is delivery free over $50", 3, 0.5)[0].passage.slug == \
        "shipping-costs"


@pytest.mark.parametrize("kwargs,message", [({"k": 0}, "k has to be >= 1"),
                                            ({"mode": "magic"}, "mode has to be")])
def test_bad_arguments_are_refused(retriever, kwargs, message):
    with pytest.raises(ValueError, match=message):
        retriever.search("hi", **kwargs)


def test_an_empty_help_center_or_a_broken_index_is_an_error(encoder, retriever, tmp_path):
    with pytest.raises(ValueError, match="help center is empty"):
        Retriever.build([], encoder)
    retriever.save(tmp_path / "index")
    (tmp_path / "index" / "sentence_embeddings.npy").unlink()  # as an older index lacks it
    with pytest.raises(FileNotFoundError, match="rebuild with `rasa train`"):
        Retriever.load(tmp_path / "index", encoder)
    (tmp_path / "index" / "embeddings.npy").unlink()
    with pytest.raises(FileNotFoundError):
        Retriever.load(tmp_path / "index", encoder)


def test_hits_are_collapsed_to_one_passage_per_article(encoder):
    two_sections = PASSAGES + [
        Passage("shipping-costs#1", "shipping-costs", "Shipping costs", "Express",
                "Express shipping costs $12.95 and is never free, even over $50."),
    ]
    retriever = Retriever.build(two_sections, encoder)
    hits = retriever.search("how much does shipping cost, standard or express?", k=3)
    slugs = [h.passage.slug for h in hits]
    assert slugs[0] == "shipping-costs" and len(set(slugs)) == 3  # three articles
    everything = retriever.search("shipping", k=len(two_sections))
    assert len(everything) == 4  # as many hits as articles, at most


# --- CachedEncoder ----------------------------------------------------------------------

class CountingEncoder:
    """Wraps an encoder and records every batch of texts it was asked to encode."""

    def __init__(self, encode):
        self.encode, self.calls = encode, []

    def __call__(self, texts):
        self.calls.append(list(texts))
        return self.encode(texts)


def test_the_cache_gives_the_encoders_vectors_and_encodes_each_text_once(encoder):
    counting = CountingEncoder(encoder)
    cached = CachedEncoder(counting, size=3)
    texts = ["where is my parcel", "refund timing", "where is my parcel"]
    np.testing.assert_allclose(cached(texts), encoder(texts), atol=1e-6)
    assert counting.calls == [["where is my parcel", "refund timing"]]
    np.testing.assert_allclose(cached(["refund timing", "new one"]),
                               encoder(["refund timing", "new one"]), atol=1e-6)
    assert counting.calls[1:] == [["new one"]]


def test_the_least_recently_used_text_leaves_the_cache(encoder):
    counting = CountingEncoder(encoder)
    cached = CachedEncoder(counting, size=2)
    cached(["a"]), cached(["b"]), cached(["a"]), cached(["c"])  # b is the oldest now
    cached(["a"]), cached(["b"])
    assert counting.calls == [["a"], ["b"], ["c"], ["b"]]


def test_a_question_is_encoded_once_for_the_search_and_the_extractive_answer():
    counting = CountingEncoder(minilm_encoder())
    retriever = Retriever.build(PASSAGES, CachedEncoder(counting))
    question = "my money hasn't appeared on my visa yet"
    before = len(counting.calls)
    hits = retriever.search(question, k=2)
    answer = extractive(question, hits, retriever, AnswerConfig())
    assert "3 more business days" in answer.text
    assert counting.calls[before:] == [[question]]


def test_minilm_encoder_is_one_shared_cache():
    assert minilm_encoder() is minilm_encoder()
    assert isinstance(minilm_encoder(), CachedEncoder)


# --- Known questions ---------------------------------------------------------------------

KNOWN = [KnownQuestion("when will the refund show on my card", "card-refund-timing", "",
                       answer="Card refunds show in 5-7 business days."),
         KnownQuestion("what does care plus cover", "kestrel-care-plus", "")]


@pytest.fixture(scope="module")
def with_questions(encoder):
    return Retriever.build(PASSAGES, encoder, KNOWN)


def test_a_close_paraphrase_of_a_known_question_marks_its_article(with_questions):
    hit = with_questions.search("when will my refund show on my card?", k=1)[0]
    assert hit.passage.slug == "card-refund-timing"
    assert hit.question >= QUESTION_MATCH
    assert with_questions.section_matches(with_questions.query_vector(
        "when will my refund show on my card?"), "card-refund-timing").keys() == {""}
    assert hit.record()["question"] == round(hit.question, 4)


def test_without_a_close_known_question_the_ranking_is_the_two_rankers_alone(
        retriever, with_questions):
    for question in ("the parcel came soaking wet", "how much is delivery", ""):
        plain, known = retriever.search(question, k=3), with_questions.search(question, k=3)
        assert known == plain
        assert all(h.question == 0.0 for h in known)
        assert "question" not in known[0].record()


def test_a_matched_known_question_passes_the_relevance_threshold(with_questions):
    question = "what does care plus cover"
    assert [h.passage.slug for h in with_questions.relevant(question, 3, 0.99)] == [
        "kestrel-care-plus"]


def test_the_known_question_ranker_votes_like_the_other_two(with_questions, encoder):
    question = "when will the refund show on my card"  # the known question itself
    vector = with_questions.query_vector(question)
    dense = with_questions.embeddings @ vector
    bm25 = with_questions._bm25_scores(question)
    expected = np.zeros(len(PASSAGES))
    for weight, scores in zip(RANKER_WEIGHTS, (dense, bm25)):
        order = np.argsort(-scores, kind="stable")
        if scores is bm25:
            order = order[scores[order] > 0]
        expected[order] += weight / (RRF_K + 1 + np.arange(len(order)))
    expected[1] += RANKER_WEIGHTS[2] / (RRF_K + 1)  # the one article with a match, ranked first
    hits = with_questions.search(question, k=4)
    for hit in hits:
        row = [p.id for p in PASSAGES].index(hit.passage.id)
        assert hit.score == pytest.approx(expected[row], abs=1e-6)


def test_a_known_question_must_name_a_section_the_help_center_has(encoder):
    with pytest.raises(ValueError, match=r"'no such section'.*fix its slug or section"):
        Retriever.build(PASSAGES, encoder,
                        [KnownQuestion("refund?", "card-refund-timing", "no such section")])


def test_known_questions_survive_save_and_load_and_are_required(with_questions, encoder,
                                                                 tmp_path):
    with_questions.save(tmp_path / "index")
    loaded = Retriever.load(tmp_path / "index", encoder)
    # The index keeps where each question points, not its written answer (training data).
    assert loaded.questions == [replace(q, answer="") for q in KNOWN] == with_questions.questions
    assert "5-7 business days" not in (tmp_path / "index" / QUESTIONS_FILE).read_text()
    np.testing.assert_array_equal(loaded.question_embeddings, with_questions.question_embeddings)
    (tmp_path / "index" / QUESTIONS_FILE).unlink()
    with pytest.raises(FileNotFoundError, match="rebuild with `rasa train`"):
        Retriever.load(tmp_path / "index", encoder)


PRODUCTS = [
    Passage("skillet-care#0", "skillet-care", "Cast Iron Skillet care", "",
            "Don't put the Cast Iron Skillet in the dishwasher, because it rusts."),
    Passage("stand-mixer#0", "stand-mixer", "Stand Mixer guide", "",
            "Wash the Stand Mixer bowl and its attachments by hand; wipe the mixer's base."),
]
SKILLET = [KnownQuestion("is the skillet dishwasher safe", "skillet-care", "")]


def test_a_known_question_about_another_product_does_not_vote(encoder, monkeypatch):
    index = Retriever.build(PRODUCTS, encoder, SKILLET)
    question = "is the stand mixer bowl dishwasher safe"
    vector = index.query_vector(question)
    assert "skillet-care" in index.question_matches(vector)  # close in meaning ...
    [hit] = index.search(question, k=1)  # ... but the mixer's guide holds its words
    assert hit.passage.slug == "stand-mixer" and hit.question == 0.0
    monkeypatch.setattr(retrieval, "QUESTION_MIN_BM25_SHARE", 0.0)  # without the rule
    assert index.search(question, k=1)[0].passage.slug == "skillet-care"
    # the known question itself still votes for its article
    assert index.search("is the skillet dishwasher safe", k=1)[0].question >= QUESTION_MATCH


GUIDES = [
    Passage("kettle-guide#1", "kettle-guide", "Electric Kettle guide", "Kettle lid",
            "If the kettle lid cracks or pops open, contact support for a replacement lid.",
            products=("kettle",)),
    Passage("blender-guide#0", "blender-guide", "Aero Blender guide", "",
            "Wash the blender jar in warm soapy water.", products=("blender", "aero blender")),
    Passage("fryer-guide#0", "fryer-guide", "Air Fryer guide", "",
            "Shake the basket halfway through.", products=("air fryer",)),
    Passage("faulty-item#0", "faulty-item", "A faulty item after 30 days", "",
            "A part that cracks within the warranty is replaced free of charge."),
]


@pytest.fixture(scope="module")
def guides(encoder):
    return Retriever.build(GUIDES, encoder)


@pytest.mark.parametrize("question,named", [
    ("my blender lid cracked", {"blender"}),
    ("My Aero Blender and my AIR-FRYERS", {"aero blender", "air fryer"}),
    ("do the blenders come in red", {"blender"}),
    ("the lid cracked", set()),
    ("a blendered soup", set()),  # whole words only
])
def test_named_products_are_whole_words_plural_or_hyphenated(guides, question, named):
    assert guides.named_products(question) == named


def test_a_question_naming_a_product_skips_the_guides_to_other_products(guides):
    question = "my blender lid cracked after two months, can i get a new one"
    # Ranked by meaning and words alone, the kettle guide's lid section comes first.
    assert guides.search(question, k=1, mode="dense")[0].passage.slug == "kettle-guide"
    slugs = [h.passage.slug for h in guides.search(question, k=4)]
    assert "kettle-guide" not in slugs and "fryer-guide" not in slugs
    assert set(slugs) == {"blender-guide", "faulty-item"}  # no product guide: kept
    # A question that names no product is ranked over every guide.
    assert guides.search("my lid cracked, can i get a new one", k=1)[0].passage.slug \
        == "kettle-guide"


def test_products_survive_save_and_load(guides, encoder, tmp_path):
    guides.save(tmp_path / "index")
    loaded = Retriever.load(tmp_path / "index", encoder)
    assert loaded.passages == GUIDES
    assert loaded.named_products("an aero blender") == {"aero blender"}
