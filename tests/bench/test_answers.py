"""bench/answers.py: what counts as correct, as a word-for-word copy, and the ceilings."""
import pytest

from bench.answers import ceilings, correct, fact_first, facts_fit, verbatim

GIVEN = ("Standard shipping costs $4.95 and takes 3-5 business days. "
         "Orders over $50 ship free.")


def test_a_reply_of_the_given_sentences_is_verbatim_whatever_their_order_or_case():
    assert verbatim("orders over $50 ship free.  Standard shipping costs $4.95 and takes "
                    "3\u20135 business days.", GIVEN)


def test_a_reply_with_a_word_of_its_own_is_not_verbatim():
    assert not verbatim("Yes, orders over $50 ship free.", GIVEN)
    assert not verbatim("Orders over $50 ship free. Happy to help!", GIVEN)


def test_correct_needs_every_key_fact_and_no_number_the_article_lacks():
    assert correct("Orders over $50 ship free.", ["$50"], GIVEN)
    assert not correct("Orders over $50 ship free in 2 days.", ["$50"], GIVEN)
    assert not correct("Standard shipping is cheap.", ["$4.95"], GIVEN)


def test_fact_first_reads_the_first_sentence_only():
    assert fact_first("Orders over $50 ship free. It costs $4.95 otherwise.", ["$50"])
    assert not fact_first("It costs $4.95 otherwise. Orders over $50 ship free.", ["$50"])
    assert not fact_first("", ["$50"])


SENTENCES = ["Standard shipping costs $4.95.", "It takes 3-5 business days.",
             "Orders over $50 ship free.", "Express costs $12.95."]


def test_facts_fit_when_few_enough_sentences_hold_them_all():
    assert facts_fit(SENTENCES, ["$4.95", "$50"], k=2, max_chars=480)
    assert facts_fit(SENTENCES, ["$4.95"], k=1, max_chars=480)
    assert not facts_fit(SENTENCES, ["$4.95", "$50", "$12.95"], k=2, max_chars=480)


def test_facts_fit_keeps_the_character_budget_and_needs_every_fact_somewhere():
    assert not facts_fit(SENTENCES, ["$4.95", "$50"], k=2, max_chars=40)
    assert not facts_fit(SENTENCES, ["next-day"], k=3, max_chars=480)
    assert facts_fit(SENTENCES, ["3\u20135 business days"], k=1, max_chars=480)  # dash style


@pytest.fixture(scope="module")
def shipping_index():
    """Two articles indexed with the real all-MiniLM-L6-v2."""
    from components.generator.knowledge import Passage
    from components.generator.retrieval import Retriever, minilm_encoder

    return Retriever.build([
        Passage("shipping-costs#0", "shipping-costs", "Shipping costs", "", " ".join(SENTENCES)),
        Passage("returns#0", "returns", "Returns", "",
                "Unused items can be returned within 30 days of delivery."),
    ], minilm_encoder())


def test_ceilings_answer_from_the_answering_article_whatever_retrieval_ranks(shipping_index):
    from components.generator.answers import AnswerConfig

    articles = {"shipping-costs": " ".join(SENTENCES)}
    # worded for the returns article, which retrieval would rank first
    returns_worded = {"question": "can I return it within 30 days", "slug": "shipping-costs",
                      "facts": ["$12.95"]}
    express = {"question": "how much is express shipping", "slug": "shipping-costs",
               "facts": ["$12.95"]}
    assert shipping_index.search(returns_worded["question"], 1)[0].passage.slug == "returns"
    assert ceilings(shipping_index, [express], articles, AnswerConfig(max_sentences=1)) == {
        "right_article": 1, "facts_fit": 1}
    every_price = {**express, "facts": ["$4.95", "$50", "$12.95"]}
    assert ceilings(shipping_index, [every_price], articles, AnswerConfig(max_sentences=2)) == {
        "right_article": 0, "facts_fit": 0}
    assert ceilings(shipping_index, [every_price], articles,
                    AnswerConfig(max_sentences=4))["facts_fit"] == 1
    # the whole article fits in 4 sentences: answered although retrieval ranks returns first
    assert ceilings(shipping_index, [returns_worded], articles, AnswerConfig(max_sentences=4)) == {
        "right_article": 1, "facts_fit": 1}
