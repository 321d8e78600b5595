"""components/generator/answers.py: the citation line (citation() and split_citation()), follow-up questions and the extractive answer."""
from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from components.generator.answers import (FOLLOW_UP_CHAIN, HOW_TO, REPEAT_LEAD, AnswerConfig, Citation,
                                          citation, contextual_question, is_follow_up, repeated,
                                          repeats, split_citation, strip_citation)
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


# The extractive answer reads the best hit's whole article (real all-MiniLM-L6-v2).
STORES = [
    Passage("no-stores#0", "no-stores", "No physical stores", "",
            "Kestrel Home has no physical stores or showrooms; it sells online only."),
    Passage("no-stores#1", "no-stores", "No physical stores", "Seeing an item before buying",
            "Each product page shows photos and measurements. Unused items can be returned "
            "within 30 days of delivery."),
    Passage("shipping-costs#0", "shipping-costs", "Shipping costs", "",
            "Standard shipping is free on orders over $50; below that it costs $4.95."),
]


@pytest.fixture(scope="module")
def store_index():
    from components.generator.retrieval import Retriever, minilm_encoder

    return Retriever.build(STORES, minilm_encoder())


def test_the_answer_may_come_from_another_section_of_the_best_article(store_index):
    """The hit is the 'seeing an item' section; the opening paragraph answers."""
    from components.generator.answers import extractive

    section = Hit(STORES[1], 0.03, 0.5, 1.0)
    answer = extractive("is there a shop I can walk into?", [section], store_index,
                        AnswerConfig(max_sentences=1))
    body, cited = split_citation(answer.text)
    assert body == STORES[0].text
    assert cited.url.endswith("/no-stores")
    assert [s["id"] for s in answer.sources] == ["no-stores#0"]
    assert answer.groundedness["grounded"]


def test_sources_list_the_best_hit_first_and_never_another_article(store_index):
    from components.generator.answers import extractive

    best = Hit(STORES[0], 0.03, 0.6, 1.0)
    answer = extractive("do you have showrooms, and can I return an item?", [best],
                        store_index, AnswerConfig(max_sentences=3, max_chars=400))
    ids = [s["id"] for s in answer.sources]
    assert ids[0] == "no-stores#0" and set(ids) <= {"no-stores#0", "no-stores#1"}
    assert "$4.95" not in answer.text  # the other article is never read


def test_an_article_is_read_in_article_order_and_unknown_slugs_fail(store_index):
    assert store_index.article("no-stores").rows == [0, 1]
    with pytest.raises(KeyError):
        store_index.article("no-such-article")


def test_a_matched_known_questions_section_is_preferred(store_index):
    """The same question and hit, in an index without and with a known question of the
    'seeing an item' section that paraphrases it."""
    from components.generator.answers import extractive
    from components.generator.knowledge import KnownQuestion
    from components.generator.retrieval import QUESTION_MATCH, Retriever

    question = "do you have a shop I can visit?"
    known = Retriever.build(STORES, store_index.encoder, [KnownQuestion(
        "is there a shop I can visit to see things?", "no-stores",
        "Seeing an item before buying")])
    matched = known.section_matches(known.query_vector(question), "no-stores")
    assert list(matched) == ["Seeing an item before buying"] and matched[
        "Seeing an item before buying"] >= QUESTION_MATCH
    assert store_index.section_matches(store_index.query_vector(question), "no-stores") == {}
    best, config = Hit(STORES[0], 0.03, 0.5, 1.0), AnswerConfig(max_sentences=1)
    without, with_match = (split_citation(extractive(question, [best], index, config).text)[0]
                           for index in (store_index, known))
    assert without == STORES[0].text  # the opening paragraph wins on its own
    assert with_match in STORES[1].text and with_match != STORES[1].text  # one sentence of it


def test_only_the_best_articles_known_questions_count(store_index):
    """A known question of another article marks none of this one's sections."""
    from components.generator.knowledge import KnownQuestion
    from components.generator.retrieval import Retriever

    known = Retriever.build(STORES, store_index.encoder, [KnownQuestion(
        "is there a shop I can visit to see things?", "shipping-costs", "")])
    vector = known.query_vector("do you have a shop I can visit?")
    assert known.section_matches(vector, "no-stores") == {}
    assert list(known.section_matches(vector, "shipping-costs")) == [""]


@pytest.mark.parametrize("reply, needs_fact, mode, reason", [
    ("Orders over $50 ship free.", True, "generated", None),
    ("I'm not sure what's a free label.", False, "generated", None),  # chat: no fact, fine
    ("I'm not sure what's a free label.", True, "fallback", "not_an_answer"),
    ("Orders over $20 ship free.", True, "fallback", "unsupported"),
])
def test_a_reply_written_from_passages_has_to_state_one_of_their_facts(
        reply, needs_fact, mode, reason):
    from components.generator.answers import decide

    answer = decide(reply, [hit("Shipping costs")], AnswerConfig(cite=False), needs_fact)
    assert (answer.mode, answer.fallback) == (mode, reason)
    assert answer.text == (reply if mode == "generated" else "")


# --- Follow-up questions ----------------------------------------------------------


@pytest.mark.parametrize("message", [
    "and express?", "And what about the UK?", "how about for nurses", "what if it's faulty",
    "how much does it cost", "do i get a discount for that?", "is that counted from delivery?",
    "how often?", "How long?", "why not?", "what else?", "when",  # bare: they name nothing
    "how long should i wait?", "what should I do now?", "when can i expect it",  # generic
])
def test_a_message_that_points_back_is_a_follow_up(message):
    assert is_follow_up(message)


@pytest.mark.parametrize("message", [
    "how much is shipping", "do you ship to canada", "what does kestrel care cost",
    "", "android or iphone",  # "android" is no "and"
    "is there a student discount",  # "there" here points nowhere
    # long enough to name its own topic, although "it" points back
    "i bought a kettle last month and it stopped heating when i fill it to the top",
    # small talk, and bare-looking questions that name their topic
    "how are you?", "who are you", "what's up", "how often do you restock", "how long is delivery",
    "how long should i wait for a refund", "what do you sell",  # a noun or verb names the topic
])
def test_a_message_that_stands_alone_is_no_follow_up(message):
    assert not is_follow_up(message)


def test_a_follow_up_is_joined_to_the_message_before_it():
    assert contextual_question(["how much is shipping", "and express?"]) == \
        "how much is shipping and express?"
    assert contextual_question(["how much is shipping", "do you ship to canada"]) == \
        "do you ship to canada"
    assert contextual_question(["and express?"]) == "and express?"  # nothing before it
    assert contextual_question([]) == ""


def test_a_chain_of_follow_ups_reaches_back_to_its_question_and_no_further():
    messages = ["hi", "how much is shipping", "and express?", "and to canada?"]
    assert contextual_question(messages) == "how much is shipping and express? and to canada?"
    many = ["and that?"] * 10
    assert contextual_question(many) == " ".join(["and that?"] * FOLLOW_UP_CHAIN)


SHIPPING = ("Standard shipping costs $4.95. Express shipping costs $12.95.\n"
            "Source: Shipping costs (https://kestrelhome.example/help/shipping-costs)")


def test_a_reply_whose_every_sentence_was_just_sent_repeats_it():
    assert repeats(SHIPPING, SHIPPING)
    # the sentences alone, in another order, after a reply that already said so
    assert repeats("Express shipping costs $12.95.", repeated(SHIPPING))
    assert repeated(SHIPPING).startswith(REPEAT_LEAD + " Standard shipping")
    assert repeated(SHIPPING).endswith(SHIPPING)  # the citation stays last


@pytest.mark.parametrize("text, previous", [
    (SHIPPING, "Standard shipping costs $4.95."),  # one sentence is new
    (SHIPPING, ""),  # nothing was said before
    ("", SHIPPING),  # nothing to send
])
def test_a_reply_with_anything_new_does_not_repeat(text, previous):
    assert not repeats(text, previous)


@given(st.lists(st.text(max_size=40), min_size=1, max_size=6))
def test_the_last_message_always_ends_the_question(messages):
    question = contextual_question(messages)
    assert question.strip().endswith(messages[-1].strip())
    assert question == messages[-1] or is_follow_up(messages[-1])
    assert len(question) <= sum(len(m) + 1 for m in messages)


def test_follow_ups_is_a_boolean_setting():
    assert AnswerConfig().follow_ups is True
    assert AnswerConfig.from_dict({"follow_ups": False}).follow_ups is False
    with pytest.raises(ValueError, match="follow_ups has to be true or false, got 'yes'"):
        AnswerConfig(follow_ups="yes")


@pytest.mark.parametrize("question, steps", [
    ("how do i descale the kettle", True),
    ("How can I reset my password?", True),
    ("how to pair the speaker", True),
    ("what are the steps to return something", True),
    ("how much is shipping", False),
    ("how long do refunds take", False),
    ("is there a discount for teachers?", False),
])
def test_a_how_to_question_keeps_the_article_order(question, steps):
    assert bool(HOW_TO.match(question)) is steps


# --- suggestion: the closest article linked after the canned reply ----------------------

def test_a_close_article_is_suggested_only_between_the_two_thresholds(store_index):
    from components.generator.answers import suggestion

    question = "can I see the sheets somewhere before I buy them?"
    dense = store_index.search(question, 1)[0].dense
    between = AnswerConfig(min_similarity=dense + 0.01, min_suggest_similarity=dense - 0.01)
    assert suggestion(store_index, question, between).passage.slug == "no-stores"
    too_far = AnswerConfig(min_similarity=dense + 0.01, min_suggest_similarity=dense + 0.005)
    assert suggestion(store_index, question, too_far) is None
    relevant = AnswerConfig(min_similarity=dense - 0.01, min_suggest_similarity=dense - 0.02)
    assert suggestion(store_index, question, relevant) is None  # retrieve() answers it
    assert suggestion(None, question, between) is None  # no help center


@given(st.text(min_size=1, max_size=80).filter(lambda t: "\n" not in t and t.strip()))
def test_a_suggestion_keeps_the_canned_text_and_ends_with_a_citation(fallback):
    from components.generator.answers import SUGGESTION_LEAD, suggested

    text = suggested(fallback, hit("Shipping costs"), AnswerConfig())
    body, cited = split_citation(text)
    assert body == f"{fallback.rstrip()} {SUGGESTION_LEAD}"
    assert cited == Citation("Shipping costs", "https://kestrelhome.example/help/shipping-costs")


def test_min_suggest_similarity_is_a_cosine():
    assert AnswerConfig().min_suggest_similarity < AnswerConfig().min_similarity
    with pytest.raises(ValueError, match="min_suggest_similarity is a cosine similarity in "
                                         r"\[-1, 1\], got 1.5; set it to min_similarity"):
        AnswerConfig(min_suggest_similarity=1.5)


# A product's name draws a policy question towards the product's guide.
SHOP = [
    Passage("mixer-guide#0", "mixer-guide", "Stand Mixer set-up and cleaning", "",
            "Wash the Stand Mixer bowl by hand and wipe the base with a damp cloth.",
            products=("mixer", "stand mixer")),
    Passage("instalments#0", "instalments", "Pay later and instalments", "",
            "Kestrel Home doesn't offer instalment plans or pay later services."),
]


@pytest.fixture(scope="module")
def shop_index():
    from components.generator.retrieval import Retriever, minilm_encoder

    return Retriever.build(SHOP, minilm_encoder())


def test_a_question_naming_a_product_is_asked_again_about_the_item(shop_index):
    from components.generator.answers import retrieve

    question = "can i pay for the Stand Mixer in instalments"
    assert shop_index.without_products(question) == "can i pay for the item in instalments"

    def instalments_cosine(text):
        return next(h.dense for h in shop_index.search(text, 2) if h.passage.slug == "instalments")

    named = instalments_cosine(question)
    generic = instalments_cosine(shop_index.without_products(question))
    assert generic > named  # the product's name pulled the question away
    between = AnswerConfig(min_similarity=(named + generic) / 2)
    assert [h.passage.slug for h in retrieve(shop_index, question, between)] == ["instalments"]
    # Above both, nothing is relevant either way; a question that names no product is
    # searched once, as it is.
    assert retrieve(shop_index, question, AnswerConfig(min_similarity=generic + 0.01)) == []
    unnamed = "can i pay for the thing in instalments"
    assert shop_index.named_products(unnamed) == set()
    assert retrieve(shop_index, unnamed, AnswerConfig(min_similarity=1.0)) == []


LIDS = [
    Passage("kettle-guide#1", "kettle-guide", "Electric Kettle guide", "Kettle lid",
            "If the kettle lid cracks, contact support for a new lid.", products=("kettle",)),
    Passage("blender-guide#0", "blender-guide", "Aero Blender guide", "",
            "Wash the blender jar in warm soapy water.", products=("blender",)),
]


def test_the_second_search_still_skips_the_guides_to_other_products():
    from components.generator.answers import retrieve
    from components.generator.retrieval import Retriever, minilm_encoder

    index = Retriever.build(LIDS, minilm_encoder())
    question = "my blender lid cracked, can i get a new one"
    generic = index.without_products(question)
    kettle = next(h for h in index.search(generic, 2) if h.passage.slug == "kettle-guide")
    # Above what the question itself reaches, below what "my item lid" reaches in the
    # kettle guide: only the second search could find it, and it is not the blender's.
    config = AnswerConfig(min_similarity=kettle.dense - 0.01)
    assert index.relevant(question, 2, config.min_similarity) == []
    assert [h.passage.slug for h in index.relevant(generic, 2, config.min_similarity)] \
        == ["kettle-guide"]
    assert retrieve(index, question, config) == []
