"""components/generator/answers.py: the citation line, written by citation() and read by split_citation()."""
from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from components.generator.answers import (AnswerConfig, Citation, citation, split_citation,
                                          strip_citation)
from components.generator.knowledge import Passage
from components.generator.retrieval import Hit


def hit(title: str, slug: str = "shipping-costs") -> Hit:
    return Hit(Passage(f"{slug}#0", slug, title, "", "Orders over $50 ship free."), 0.1, 0.6, 2.0)


@pytest.mark.parametrize("title", [
    "Shipping costs",
    "Kestrel Care+ (2 years) plan",
    "Returns (opened items) (and gifts)",
    "Why (",
    "Price ) match",
    "Source: a title that starts like the label",
])
def test_split_citation_reads_back_what_citation_writes(title):
    config = AnswerConfig(help_center_url="http://localhost:8080/help/")
    answer = "Standard shipping is free on orders over $50.\nIt takes 3-5 days (business days)."
    body, cited = split_citation(f"{answer}\n{citation(hit(title), config)}")
    assert body == answer
    assert cited == Citation(title, "http://localhost:8080/help/shipping-costs")


@given(title=st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1)
       .map(str.strip).filter(bool),
       answer=st.text(min_size=1).map(str.strip).filter(bool))
def test_the_round_trip_holds_for_any_one_line_title(title, answer):
    body, cited = split_citation(f"{answer}\n{citation(hit(title), AnswerConfig())}")
    assert (body, cited) == (answer, Citation(title, "https://kestrelhome.example/help/"
                                                     "shipping-costs"))


@pytest.mark.parametrize("text", [
    "Standard shipping is free on orders over $50.",
    "Source: Shipping costs (https://kestrelhome.example/help/shipping-costs)",  # no answer
    "See below.\nSource: Shipping costs (javascript:alert(1))",  # not an http(s) link
    "See below.\nSource: Shipping costs (/help/shipping-costs)",
    "See below.\nSource: Shipping costs https://kestrelhome.example/help/shipping-costs",
    "See below.\nSource:  (https://kestrelhome.example/help/x)",  # no title
    "See below.\nSource: Costs (https://kestrelhome.example/help/a b)",
    "Source: Costs (https://kestrelhome.example/help/x)\nand then more text.",  # not last
    "",
])
def test_text_without_a_citation_line_comes_back_whole(text):
    assert split_citation(text) == (text, None)


def test_trailing_whitespace_after_the_citation_is_ignored():
    text = "Free over $50.\nSource: Shipping costs (https://kestrelhome.example/help/x)\n"
    assert split_citation(text) == (
        "Free over $50.", Citation("Shipping costs", "https://kestrelhome.example/help/x"))


def test_strip_citation_and_split_citation_agree():
    text = f"Free over $50.\n{citation(hit('Shipping costs'), AnswerConfig())}"
    assert strip_citation(text) == split_citation(text)[0] == "Free over $50."
