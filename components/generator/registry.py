"""The one process-wide handle shared by the policy and the NLG step.

Rasa builds the NLG from endpoints.yml before the model archive is loaded, so
the NLG cannot receive the generator directly. The GPT policy registers the
generator it loaded from the archive here, and the NLG looks it up per reply.
The latest load wins, which is what ``rasa run`` does when a new model is
loaded into a running server.
"""
from __future__ import annotations

import threading

_lock = threading.Lock()
_active = None  # Optional[components.generator.generator.Generator]


def set_active(generator) -> None:
    """Makes ``generator`` the one that answers open-ended turns (None clears)."""
    global _active
    with _lock:
        _active = generator


def active():
    """The registered generator, or None when no model with a GPT policy is loaded."""
    with _lock:
        return _active
