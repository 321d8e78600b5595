"""Ratings in `rasa shell` as a line of text, not a menu that takes over the next message.

Rasa's shell shows a message's buttons as a questionary menu and waits in it: a
customer who types the next question after a generated reply types into the
menu, and Enter picks the highlighted entry. A question typed there was stored
as a "helpful" rating and the question itself was lost. ``install`` wraps the
shell's ``_print_bot_output`` once per process: a message whose buttons are all
rating buttons (payload ``/rate_reply...``) is printed as its text and the
invitation line (domain.yml ``utter_rating_prompt``: "Was this helpful? yes /
no ..."), with no menu. The next line the customer types is an ordinary message:
yes or no right after a generated reply rates it (the rules in
data/rules/feedback.yml), anything else is answered as the next question.

Only the shell's printing changes: the reply, its buttons and its metadata are
stored as on every channel, and the web chat and Slack keep their buttons.
GenerativeNLG calls ``install`` when Rasa builds it; nothing happens at import
time.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional

import rasa.core.channels.console as console

from shared_names import RATE_INTENT

_MARK = "_kestrel_shell_ratings"


def is_rating_message(message: Dict[str, Any]) -> bool:
    """Whether every button of ``message`` rates a reply (and it has at least one)."""
    buttons = message.get("buttons") or []
    return bool(buttons) and all(
        str(b.get("payload", "")).startswith(f"/{RATE_INTENT}") for b in buttons)


def as_text(message: Dict[str, Any], prompt: str) -> Dict[str, Any]:
    """``message`` without its rating buttons and with ``prompt`` on a line under its text."""
    shown = {k: v for k, v in message.items() if k != "buttons"}
    shown["text"] = f"{message.get('text') or ''}\n{prompt}".lstrip("\n")
    return shown


def install(prompt: Callable[[], Optional[str]]) -> None:
    """Wraps ``console._print_bot_output`` (idempotent; a second call only changes ``prompt``).

    ``prompt`` returns the invitation's text when a message is printed (the NLG's
    ``utter_rating_prompt``, known once the model is loaded); without one, the
    shell shows Rasa's menu as before.
    """
    current = console._print_bot_output
    original = getattr(current, _MARK, None) or current

    def print_bot_output(message: Dict[str, Any], is_latest_message: bool = False,
                         *args: Any, **kwargs: Any):
        text = prompt() if is_rating_message(message) else None
        if text:
            message = as_text(message, text)
        return original(message, is_latest_message, *args, **kwargs)

    setattr(print_bot_output, _MARK, original)
    console._print_bot_output = print_bot_output
