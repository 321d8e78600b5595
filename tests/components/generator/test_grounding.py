"""The groundedness check: tables of replies, sources and the expected verdict."""
from __future__ import annotations

import numpy as np
import pytest

from components.generator.grounding import (
    best_sentences, check, content_words, facts, normalise, split_sentences,
)

SOURCES = [
    "Kestrel Care Plus adds accidental damage cover for 3 years from delivery. It costs "
    "$24.99 for items under $100.",
    "Standard shipping is free on orders over $50; otherwise it costs $4.95 and takes "
    "3–5 business days. Email support@kestrelhome.example with questions.",
]


@pytest.mark.parametrize("sentence,expected", [
    ("Express costs $12.95 and takes 1-2 business days.", ["$12.95", "1-2"]),
    ("We're open 8:00-20:00, call +1 555 0100.", ["8:00", "20:00", "1", "555", "0100"]),
    ("Write to support@kestrelhome.example or see /help/returns.",
     ["support@kestrelhome.example", "/help/returns"]),
    ("The Aero Blender has a 2 year warranty.", ["2", "Aero Blender"]),
    ("Kestrel Care Plus costs $24.99.", ["$24.99", "Kestrel Care Plus"]),
    ("Happy to help!", []),
])
def test_facts(sentence, expected):
    assert facts(sentence) == expected


@pytest.mark.parametrize("reply,grounded,unsupported", [
    # copied or paraphrased from the sources: supported
    ("Kestrel Care Plus covers accidental damage for 3 years.", True, []),
    ("Shipping is free on orders over $50. Otherwise it costs $4.95.", True, []),
    ("Standard delivery takes 3-5 business days.", True, []),  # dash style does not matter
    ("Sorry about that! It costs $24.99 for items under $100.", True, []),
    # another sentence's subject with this one's price: to a lexical check, a swap
    ("Kestrel Care Plus costs $24.99 for items under $100.", False,
     ["Kestrel Care Plus costs $24.99 for items under $100."]),
    # a wrong number, price, name or address: unsupported
    ("Kestrel Care Plus covers accidental damage for 5 years.", False,
     ["Kestrel Care Plus covers accidental damage for 5 years."]),
    ("Standard shipping costs $5.95.", False, ["Standard shipping costs $5.95."]),
    ("Kestrel Care Max covers theft for 3 years.", False,
     ["Kestrel Care Max covers theft for 3 years."]),
    ("Email help@kestrel.example for help.", False, ["Email help@kestrel.example for help."]),
    # a claim without numbers, made of words the sources do not use
    ("We offer free gift wrapping with every birthday order.", False,
     ["We offer free gift wrapping with every birthday order."]),
    # one bad sentence fails the reply, and only it is reported
    ("Shipping is free over $50. Refunds take 2 days.", False, ["Refunds take 2 days."]),
    ("", False, []),
])
def test_check(reply, grounded, unsupported):
    verdict = check(reply, SOURCES)
    assert verdict.grounded is grounded
    assert verdict.unsupported == unsupported
    assert verdict.record() == {"grounded": grounded, "unsupported": unsupported}


@pytest.mark.parametrize("reply,grounded", [
    ("Hi! How can I help you today?", True),  # no claim
    ("I'm not sure about that, but I can pass you to a person.", True),
    ("Our kettles hold 1.7 litres.", False),  # a fact with no source
    ("Our warehouse team packs every parcel by hand in Ohio.", False),  # a claim, no source
])
def test_without_sources_only_replies_without_claims_pass(reply, grounded):
    assert check(reply, []).grounded is grounded


def test_missing_facts_and_overlap_are_reported():
    [sentence] = check("Kestrel Care Plus costs $29.99 for 3 years.", SOURCES).sentences
    assert sentence.factual and not sentence.supported
    assert sentence.missing_facts == ("$29.99",)
    assert sentence.overlap == 1.0  # every word is in the sources; only the price is not


def test_helpers():
    assert normalise("5\u20137  Business\tDays") == "5-7 business days"
    assert split_sentences("It costs $4.95. Express is $12.95! Ok? yes.") == [
        "It costs $4.95.", "Express is $12.95!", "Ok? yes."]
    assert content_words("The parcels arrived and it's raining") == ["parcel", "arriv",
                                                                     "rain"]


def test_best_sentences_keeps_the_most_similar_in_their_order():
    sentences = ["A is first.", "B is second.", "C is third."]
    vectors = np.eye(3)
    question = np.array([0.1, 0.5, 0.9])
    assert best_sentences(question, sentences, vectors, max_sentences=2) == [
        "B is second.", "C is third."]
    assert best_sentences(question, sentences, vectors, max_sentences=2, max_chars=15) == [
        "C is third."]
    assert best_sentences(question, [], np.zeros((0, 3))) == []


def test_best_sentences_can_open_with_the_best_unless_it_leans_back():
    sentences = ["A is first.", "B is second.", "C is third."]
    question = np.array([0.1, 0.5, 0.9])
    assert best_sentences(question, sentences, np.eye(3), max_sentences=3, best_first=True) == [
        "C is third.", "A is first.", "B is second."]
    for third in ("Then C is third.", "Below that, C is third.", "But C is third."):
        leaning = ["A is first.", "B is second.", third]  # reads only after the one before
        assert best_sentences(question, leaning, np.eye(3), max_sentences=3,
                              best_first=True) == leaning
    opening = ["A is first.", "B is second.", "In the rest of the time zone, that is C."]
    assert best_sentences(question, opening, np.eye(3), max_sentences=3,
                          best_first=True)[0] == opening[2]  # a long opening names its topic


def test_best_sentences_opens_with_the_best_score_and_keeps_its_group_together():
    sentences = ["A wet box.", "B crackles.", "C crackles loudly."]
    question = np.array([0.3, 0.9, 0.5])
    assert best_sentences(question, sentences, np.eye(3), max_sentences=3,
                          best_first=True) == ["B crackles.", "A wet box.", "C crackles loudly."]
    assert best_sentences(question, sentences, np.eye(3), max_sentences=3, best_first=True,
                          groups=[0, 1, 1]) == ["B crackles.", "C crackles loudly.", "A wet box."]
    # the bonus (a section that matched) decides the opening, not the cosine alone
    assert best_sentences(np.array([0.9, 0.5, 0.4]), sentences, np.eye(3), max_sentences=3,
                          best_first=True, bonus=np.array([0.0, 1.0, 0.0]))[0] == "B crackles."


def test_best_sentences_leaves_out_a_sentence_whose_sentence_before_is_left_out():
    sentences = ["Reset the bulb.", "Then add the bulb in the app again.",
                 "Keep the wall switch on.", "The bulb is dimmable."]
    vectors = np.eye(4)
    # the step it follows is chosen too: both stay, in their order
    assert best_sentences(np.array([0.5, 0.9, 0.4, 0.0]), sentences, vectors,
                          max_sentences=3) == sentences[:3]
    # the step it follows is not: "Then ..." would open the reply alone
    assert best_sentences(np.array([0.0, 0.9, 0.5, 0.3]), sentences, vectors,
                          max_sentences=2) == sentences[2:]
    # nothing else to send: it is kept all the same
    assert best_sentences(np.array([1.0]), sentences[1:2], np.eye(1)) == [sentences[1]]


def test_best_sentences_skips_a_sentence_that_repeats_a_chosen_one():
    sentences = ["No student discount online.", "No discount for students, sorry.",
                 "Ask support."]
    vectors = np.array([[1.0, 0.0], [0.96, 0.28], [0.6, 0.8]])  # unit rows
    question = np.array([1.0, 0.0])
    assert best_sentences(question, sentences, vectors, max_sentences=2) == sentences[:2]
    assert best_sentences(question, sentences, vectors, max_sentences=2,
                          max_similarity=0.9) == ["No student discount online.", "Ask support."]


def test_best_sentences_skips_a_sentence_a_chosen_one_holds_whole():
    sentences = ["There is no published student discount, and no discount for groups or "
                 "the military.", "There is no published student discount.",
                 "Refunds take 5 days.", "Refunds take 7 days."]
    vectors = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [0.0, 1.0]])  # unit rows
    question = np.array([1.0, 0.5])
    # the second says nothing the first does not; the last differs by its number
    assert best_sentences(question, sentences, vectors, max_sentences=3) == [
        sentences[0], sentences[2], sentences[3]]
    # the contained sentence scores best and is chosen first: the whole one replaces it
    closer = np.array([[0.6, 0.8], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    assert best_sentences(np.array([1.0, 0.0]), sentences, closer, max_sentences=2) == [
        sentences[0], sentences[2]]


POLARITY_SOURCES = [
    "Express shipping is never free; it costs $12.95 on every order. Opened items can be "
    "returned within 30 days. Don't soak the Bamboo Cutting Board, because water and heat "
    "make it warp. The warranty lasts three years.",
]


@pytest.mark.parametrize("reply,grounded,polarity", [
    # a negation added or dropped: unsupported, though every word occurs in the source
    ("Opened items cannot be returned within 30 days.", False, False),
    ("Express shipping is free on every order.", False, False),
    ("Soak the Bamboo Cutting Board to clean it.", False, False),
    # the same polarity as the source, or a leading answer particle: supported
    ("No, express shipping is never free.", True, True),
    ("Yes, opened items can be returned within 30 days.", True, True),
    ("Don't soak the Bamboo Cutting Board, as water and heat make it warp.", True, True),
])
def test_polarity(reply, grounded, polarity):
    verdict = check(reply, POLARITY_SOURCES)
    assert verdict.grounded is grounded
    assert all(s.polarity for s in verdict.sentences) is polarity


@pytest.mark.parametrize("reply,grounded", [
    ("The warranty lasts 3 years.", True),  # "three" in the source is the fact 3
    ("The warranty lasts two years.", False),  # "two" is the fact 2, not in the source
    ("The warranty lasts one year.", False),  # "one" before a unit is a number
])
def test_number_words_are_facts(reply, grounded):
    assert check(reply, POLARITY_SOURCES).grounded is grounded


def test_number_words_are_compared_as_digits():
    assert facts("A three-year warranty, or two business days.") == ["3", "2"]
    assert facts("Just reuse the old one.") == []


@pytest.mark.parametrize("reply", [
    "Oh no, I'm really sorry to hear that, happy to help.",
    "Thanks for the question, glad to help!",
])
def test_conversational_words_make_no_claim(reply):
    verdict = check(reply, [])
    assert verdict.grounded
    assert not any(s.factual for s in verdict.sentences)


PRICES = ["Standard shipping costs $4.95, and express shipping costs $12.95. "
          "Orders over $50 ship free."]


@pytest.mark.parametrize("reply,grounded", [
    # a copy that joins one clause's start to another's end moves the price
    ("Standard shipping costs $12.95.", False),
    ("Express shipping costs $4.95.", False),
    # each number where its source clause states it, alone or joined
    ("Standard shipping costs $4.95.", True),
    ("Express shipping costs $12.95 and orders over $50 ship free.", True),
    ("Yes, standard shipping costs $4.95 and express shipping costs $12.95.", True),
])
def test_numbers_have_to_sit_in_the_clause_they_belong_to(reply, grounded):
    verdict = check(reply, PRICES)
    assert verdict.grounded is grounded
    assert all(s.in_place for s in verdict.sentences) is grounded
