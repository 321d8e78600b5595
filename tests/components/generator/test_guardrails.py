import pytest

from components.generator.guardrails import (
    GuardrailConfig, blocked_reason, collapse_repetitions, cut_to_sentences, mask_pii,
    postprocess, sentence_key, sentence_keys, strip_prompt_echo, strip_special_tokens,
    unknown_sentences,
)

FALLBACK = "Sorry, I can't help with that."


@pytest.mark.parametrize("raw, expected", [
    ("Hello <|endoftext|>", "Hello  "),
    ("<|assistant|>Sure.<|pad|><|pad|>", " Sure.  "),
    ("no tokens here", "no tokens here"),
])
def test_strip_special_tokens(raw, expected):
    assert strip_special_tokens(raw) == expected


@pytest.mark.parametrize("raw, expected", [
    ("We ship to Canada. User: and to Mexico?", "We ship to Canada. "),
    ("Yes.<|user|>what else", "Yes."),
    ("Sure! Assistant: Sure!", "Sure! "),
    ("customer: hi", ""),
    ("The user guide is online.", "The user guide is online."),
])
def test_strip_prompt_echo(raw, expected):
    assert strip_prompt_echo(raw) == expected


@pytest.mark.parametrize("raw, expected", [
    ("the the the kettle", "the kettle"),
    ("We can help. We can help. We can help.", "We can help."),
    ("Yes! yes! Of course.", "Yes! Of course."),
    ("Thanks for waiting.", "Thanks for waiting."),
])
def test_collapse_repetitions(raw, expected):
    assert collapse_repetitions(raw) == expected


@pytest.mark.parametrize("raw, limit, expected", [
    ("One. Two. Three", 100, "One. Two."),
    ("First sentence here. Second sentence is longer.", 25, "First sentence here."),
    ("no punctuation at all", 100, "no punctuation at all"),
    ("a very long sentence without any end that keeps going", 20, "a very long…"),
])
def test_cut_to_sentences(raw, limit, expected):
    assert cut_to_sentences(raw, limit) == expected


@pytest.mark.parametrize("raw, expected", [
    ("write to jane.doe@example.com today", "write to [email] today"),
    ("call 555-123-4567 or +44 20 7946 0958", "call [phone] or [phone]"),
    ("card 4111 1111 1111 1111 expires", "card [card number] expires"),
    ("card 4111-1111-1111-1111", "card [card number]"),
    ("support@kestrelhome.example or +1 555 0100", "support@kestrelhome.example or +1 555 0100"),
    ("order KC-10423 costs $54.90 on 2024-05-01", "order KC-10423 costs $54.90 on 2024-05-01"),
    ("1234 5678 9012 3456 is not a valid card", "1234 5678 9012 3456 is not a valid card"),
])
def test_mask_pii(raw, expected):
    assert mask_pii(raw) == expected


def test_blocked_reason_uses_the_configured_list():
    assert blocked_reason("You should buy stocks now", GuardrailConfig().blocklist)
    assert blocked_reason("Our kettles are great", GuardrailConfig().blocklist) is None
    assert blocked_reason("Try our competitor", [r"\bcompetitor\b"]) == r"\bcompetitor\b"


@pytest.mark.parametrize("raw, fallback, text", [
    ("Yes, we ship to Canada.<|endoftext|>", None, "Yes, we ship to Canada."),
    ("", "empty", FALLBACK),
    ("<|pad|> ... ", "empty", FALLBACK),
    ("Here is my system prompt: be nice.", "blocked", FALLBACK),
    ("Email me at bob@example.org. Thanks!", None, "Email me at [email]. Thanks!"),
])
def test_postprocess_chain(raw, fallback, text):
    result = postprocess(raw, GuardrailConfig(), FALLBACK)
    assert result.fallback == fallback
    assert result.text == text


def test_postprocess_timeout_always_falls_back():
    result = postprocess("A perfectly fine reply.", GuardrailConfig(), FALLBACK, timed_out=True)
    assert (result.text, result.fallback) == (FALLBACK, "timeout")


def test_postprocess_records_what_it_changed():
    result = postprocess("Hi hi there. Hi there. User: next", GuardrailConfig(), FALLBACK)
    assert result.text == "Hi there."
    assert result.actions == ["strip_prompt_echo", "collapse_repetitions"]


def test_guardrail_config_validation():
    with pytest.raises(ValueError, match="not a valid regex"):
        GuardrailConfig(blocklist=("(unclosed",))
    with pytest.raises(ValueError, match="max_chars"):
        GuardrailConfig(max_chars=5)
    with pytest.raises(ValueError, match="Unknown guardrail"):
        GuardrailConfig.from_dict({"max_char": 100})
    extended = GuardrailConfig.from_dict({"extra_blocklist": [r"\bcompetitor\b"]})
    assert extended.blocklist[-1] == r"\bcompetitor\b"
    assert len(extended.blocklist) == len(GuardrailConfig().blocklist) + 1


def test_sentence_keys_ignore_case_and_punctuation_but_keep_words_and_apostrophes():
    assert sentence_key("Sorry to hear that!") == sentence_key("sorry to hear  that") \
        == "sorry to hear that"
    assert sentence_key("I'm here — for orders.") == "i'm here for orders"
    assert sentence_keys(["Hi there! What can I do for you?", "Hi there."]) == {
        "hi there", "what can i do for you"}


@pytest.mark.parametrize("reply,unknown", [
    ("Sorry to hear that! What can I do for you?", []),          # both sentences known
    ("What can I do for you? Sorry to hear that!", []),          # any order of them
    ("I'm not sure a few days of delivery. I can help with?",    # the built-in model's
     ["I'm not sure a few days of delivery.", "I can help with?"]),  # word salad
    ("Sorry to hear that! I can help with?", ["I can help with?"]),
])
def test_the_fluency_gate_names_every_sentence_the_model_did_not_learn(reply, unknown):
    known = sentence_keys(["Sorry to hear that! What can I do for you?"])
    assert unknown_sentences(reply, known) == unknown
