"""Turning a conversation into the text a causal language model continues.

When the tokenizer carries a chat template (the built-in model's does, as do
most instruct checkpoints) the prompt comes from ``apply_chat_template``; for
plain checkpoints such as GPT-2 a "User: / Assistant:" transcript is used.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence

ROLES = ("user", "assistant")

# Markers of the plain transcript format; guardrails cut a reply at any of them.
PLAIN_USER = "User:"
PLAIN_ASSISTANT = "Assistant:"


@dataclass(frozen=True)
class Turn:
    """One message of a conversation: ``role`` is "user" or "assistant"."""

    role: str
    text: str

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"Turn role has to be one of {ROLES}, got {self.role!r}.")


def last_turns(turns: Sequence[Turn], max_turns: int) -> List[Turn]:
    """The last ``max_turns`` turns, starting with a user turn where possible.

    Raises:
        ValueError: if ``max_turns`` < 1 or the last turn is not a user turn.
    """
    if max_turns < 1:
        raise ValueError(f"max_turns has to be >= 1, got {max_turns}.")
    if not turns or turns[-1].role != "user":
        raise ValueError("The conversation has to end with a user turn to be answered.")
    kept = list(turns[-max_turns:])
    while len(kept) > 1 and kept[0].role != "user":
        kept = kept[1:]
    return kept


def defuse_special_tokens(text: str, tokenizer) -> str:
    """``text`` with every special-token string broken up by a space.

    A customer who types ``<|system|>`` or ``<|endoftext|>`` would otherwise
    get the real special token in the prompt (tokenizers match special tokens
    inside text) and could fake a system or assistant turn. "<|system|>"
    becomes "< |system|>": the same characters to read, never the token.
    """
    for token in getattr(tokenizer, "all_special_tokens", None) or ():
        if len(token) > 1 and token in text:
            text = text.replace(token, f"{token[0]} {token[1:]}")
    return text


def build_prompt(
    tokenizer,
    turns: Sequence[Turn],
    max_turns: int = 6,
    system_prompt: Optional[str] = None,
) -> str:
    """Builds the prompt for the reply to the last user turn.

    Args:
        tokenizer: a ``transformers`` tokenizer; its ``chat_template`` is used
            when set.
        turns: the conversation, oldest first, ending with a user turn.
        max_turns: how many of the most recent turns to keep.
        system_prompt: optional instructions placed before the conversation.

    Returns:
        The prompt text, ending where the assistant's reply begins.

    Turn texts go through ``defuse_special_tokens`` first.

    Raises:
        ValueError: if the conversation does not end with a user turn.
    """
    kept = [Turn(t.role, defuse_special_tokens(t.text, tokenizer))
            for t in last_turns(turns, max_turns)]
    if getattr(tokenizer, "chat_template", None):
        messages = [{"role": t.role, "content": t.text} for t in kept]
        if system_prompt:
            messages.insert(0, {"role": "system", "content": system_prompt})
        return tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )
    lines = [system_prompt] if system_prompt else []
    for t in kept:
        lines.append(f"{PLAIN_USER if t.role == 'user' else PLAIN_ASSISTANT} {t.text}")
    lines.append(PLAIN_ASSISTANT)
    return "\n".join(lines)
