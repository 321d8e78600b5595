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
