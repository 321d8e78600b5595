"""The one process-wide handle shared by the policy and the NLG step.

Rasa builds the NLG from endpoints.yml before the model archive is loaded, so
the NLG cannot receive the generator directly. The GPT policy registers the
generator it loaded from the archive here, together with its ``response``
option (config.yml), the help-center index (``retriever``) and the written
replies (``replies``), and the NLG
looks them up per reply: the response name
lives in one place, the policy's config, and the NLG answers whatever the
loaded policy predicts. The latest load wins, which is what ``rasa run`` does
when a new model is loaded into a running server.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from shared_names import GPT_RESPONSE

if TYPE_CHECKING:  # the registry itself needs neither torch nor transformers
    from components.generator.generator import Generator
    from components.generator.replies import ReplyBank
    from components.generator.retrieval import Retriever


@dataclass(frozen=True)
class ActiveGenerator:
    """What the loaded GPT policy registered."""

    generator: Optional["Generator"]  # None when the policy could not load its generator
    response: str  # the domain response the policy predicts (its `response` option)
    retriever: Optional["Retriever"] = None  # the help-center index; None without one
    replies: Optional["ReplyBank"] = None  # the written off-topic replies; None without them


_lock = threading.Lock()
_active: Optional[ActiveGenerator] = None  # None until a GPT policy is loaded


def set_active(generator: Optional["Generator"], response: str,
               retriever: Optional["Retriever"] = None,
               replies: Optional["ReplyBank"] = None) -> None:
    """Registers the loaded policy's generator and response, replacing any earlier one.

    Args:
        generator: the generator that answers open-ended turns; None when its
            load failed (replies then get the canned text of ``response``).
        response: the policy's ``response`` option, e.g. ``"utter_gpt_reply"``.
        retriever: the help-center index from the same archive; None when the
            model has none (open-ended turns are then answered without it).
        replies: the written replies for turns the help center cannot answer
            (``components.generator.replies``); None when the model has none.

    Raises:
        ValueError: if ``response`` is not a non-empty string.
    """
    if not isinstance(response, str) or not response:
        raise ValueError(f"response has to be the name of a domain response, e.g. "
                         f"{GPT_RESPONSE!r}, got {response!r}.")
    global _active
    with _lock:
        _active = ActiveGenerator(generator, response, retriever, replies)


def clear() -> None:
    """Forgets the registration, as in a process that has loaded no GPT policy."""
    global _active
    with _lock:
        _active = None


def current() -> Optional[ActiveGenerator]:
    """The registration as one snapshot, or None when no GPT policy is loaded."""
    with _lock:
        return _active


def active() -> Optional["Generator"]:
    """The registered generator, or None when no model with a loaded generator is active."""
    entry = current()
    return entry.generator if entry is not None else None


def retriever() -> Optional["Retriever"]:
    """The registered help-center index, or None."""
    entry = current()
    return entry.retriever if entry is not None else None


def replies() -> Optional["ReplyBank"]:
    """The registered written replies, or None."""
    entry = current()
    return entry.replies if entry is not None else None


def response() -> str:
    """The registered policy's response, or ``shared_names.GPT_RESPONSE`` when none is."""
    entry = current()
    return entry.response if entry is not None else GPT_RESPONSE
