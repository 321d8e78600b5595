"""bench/answers.py: what counts as correct, and as a word-for-word copy."""
from bench.answers import correct, fact_first, verbatim

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
