import pytest

from components.generator.prompt import Turn, build_prompt, last_turns
from components.generator.tokenizer import ASSISTANT, EOS, SYSTEM, USER


class PlainTokenizer:
    chat_template = None


def conversation(n: int):
    turns = []
    for i in range(n):
        turns += [Turn("user", f"question {i}"), Turn("assistant", f"answer {i}")]
    return turns + [Turn("user", "last question")]


def test_turn_rejects_unknown_role():
    with pytest.raises(ValueError, match="role"):
        Turn("system", "hi")


def test_last_turns_keeps_the_most_recent_and_starts_with_user():
    kept = last_turns(conversation(5), max_turns=4)
    assert kept[0].role == "user"
    assert kept[-1].text == "last question"
    assert len(kept) == 3  # the 4th-last turn was an assistant turn, dropped


def test_last_turns_requires_a_final_user_turn():
    with pytest.raises(ValueError, match="user turn"):
        last_turns([Turn("user", "hi"), Turn("assistant", "hello")], 4)


def test_plain_prompt_without_chat_template():
    prompt = build_prompt(PlainTokenizer(), conversation(1), max_turns=6, system_prompt="Be brief.")
    assert prompt.splitlines() == [
        "Be brief.", "User: question 0", "Assistant: answer 0",
        "User: last question", "Assistant:",
    ]


def test_chat_template_prompt(tiny_checkpoint):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_checkpoint, local_files_only=True)
    prompt = build_prompt(tok, conversation(1), max_turns=6, system_prompt="Be brief.")
    assert prompt == (f"{SYSTEM}Be brief.{USER}question 0{ASSISTANT}answer 0{EOS}"
                      f"{USER}last question{ASSISTANT}")


# --- help-center passages in the system message ---------------------------------------

def test_passages_are_numbered_after_the_grounded_instructions():
    from components.generator.prompt import (
        GROUNDED_INSTRUCTIONS, PASSAGES_HEADER, format_passage, system_message)

    passages = [format_passage("Returns", "", "Returns are accepted for 30 days."),
                format_passage("Returns", "Refunds", "Card refunds take 5-10 business days.")]
    assert system_message(None) is None and system_message("Be kind.") == "Be kind."
    text = system_message("Be kind.", passages)
    assert text == ("Be kind.\n\n" + GROUNDED_INSTRUCTIONS + "\n\n" + PASSAGES_HEADER
                    + "\n[1] Returns\nReturns are accepted for 30 days.\n\n"
                    + "[2] Returns - Refunds\nCard refunds take 5-10 business days.")


def test_build_messages_puts_the_passages_only_in_the_system_role():
    from components.generator.prompt import build_messages

    turns = [Turn("user", "hi"), Turn("assistant", "Hello!"), Turn("user", "refund time?")]
    messages = build_messages(turns, 6, None, ["Refunds\nCard refunds take 5-10 days."])
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert "Card refunds take 5-10 days." in messages[0]["content"]
    assert all("Card refunds" not in m["content"] for m in messages[1:])
    assert build_messages(turns, 1) == [{"role": "user", "content": "refund time?"}]


def test_a_plain_transcript_starts_with_the_passages(tiny_checkpoint):
    from transformers import AutoTokenizer

    from components.generator.prompt import GROUNDED_INSTRUCTIONS

    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    tokenizer.chat_template = None  # a GPT-2-style checkpoint without a template
    prompt = build_prompt(tokenizer, [Turn("user", "refund time?")], 6, None,
                          ["Refunds\nCard refunds take 5-10 days."])
    assert prompt.startswith(GROUNDED_INSTRUCTIONS)
    assert prompt.endswith("User: refund time?\nAssistant:")
