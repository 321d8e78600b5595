"""Fuzzing the prompt builder and the post-processing with hypothesis."""
import re

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from transformers import AutoTokenizer

from components.generator.prompt import Turn, build_prompt
from components.generator.guardrails import GuardrailConfig, postprocess

SPECIAL_MARKERS = ["<|system|>", "<|user|>", "<|assistant|>", "<|endoftext|>", "<|pad|>"]
# Random Unicode with control characters, plus the template's own markers.
texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=300) | st.builds(
    lambda a, m, b: a + m + b, st.text(max_size=40), st.sampled_from(SPECIAL_MARKERS),
    st.text(max_size=40))


@pytest.fixture(scope="module")
def tokenizer(tiny_checkpoint):
    return AutoTokenizer.from_pretrained(tiny_checkpoint, local_files_only=True)


@settings(max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck))
@given(history=st.lists(texts, max_size=5), last=texts)
def test_user_text_never_becomes_a_special_token(tokenizer, history, last):
    turns = [Turn("user" if i % 2 == 0 else "assistant", t) for i, t in enumerate(history)]
    if turns and turns[-1].role == "user":
        turns.append(Turn("assistant", "ok"))
    turns.append(Turn("user", last))
    prompt = build_prompt(tokenizer, turns, max_turns=6)
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    special = set(tokenizer.all_special_ids)
    # Only the template's own markers: one role marker per kept turn plus the
    # assistant marker that opens the reply (and EOS separators, if any).
    template_only = build_prompt(tokenizer, [Turn(t.role, "x") for t in turns], max_turns=6)
    expected = [i for i in tokenizer(template_only, add_special_tokens=False)["input_ids"]
                if i in special]
    assert [i for i in ids if i in special] == expected


@settings(max_examples=3000, deadline=None)
@given(raw=texts, timed_out=st.booleans())
def test_postprocess_always_returns_a_sendable_reply(raw, timed_out):
    config = GuardrailConfig(max_chars=120)
    result = postprocess(raw, config, "FALLBACK", timed_out=timed_out)
    assert result.text.strip()
    assert len(result.text) <= 120 or result.text == "FALLBACK"
    assert not re.search(r"<\|[a-z_]+\|>", result.text)
    if timed_out:
        assert result.fallback == "timeout"


@settings(max_examples=50, deadline=None)
@given(raw=st.text(min_size=1, max_size=20).map(lambda s: s * 50_000))  # up to 1M characters
def test_postprocess_on_huge_input(raw):
    assert len(postprocess(raw, GuardrailConfig(), "FALLBACK").text) <= 320
