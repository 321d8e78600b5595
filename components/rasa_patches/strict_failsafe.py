"""FailSafeTrackerStore re-raises database errors for stores that ask for it.

Rasa 3.6's Agent wraps every tracker store in ``FailSafeTrackerStore``, which on
a database error logs and falls back to memory: a failed ``retrieve`` gives an
empty tracker (the conversation starts over), a failed ``save`` keeps the turn
in memory only, and the customer gets a 200 either way. Rasa has no setting for
this. Seen in tests/test_scale_out.py while PostgreSQL restarted: acknowledged
turns were missing from the store.

``install_strict_failsafe`` makes the wrapper's two error hooks re-raise when the
wrapped store has ``raise_on_error`` true (components/stores/tracker_store.py,
the default there), so the turn fails as a whole and the REST channel answers
503. Other stores keep Rasa's behaviour. Called by ``URLSQLTrackerStore`` when
Rasa builds it from endpoints.yml; nothing happens at import time.
"""
from __future__ import annotations

from rasa.core.tracker_store import FailSafeTrackerStore

_MARK = "_kestrel_strict"


def install_strict_failsafe() -> None:
    """Makes FailSafeTrackerStore re-raise the errors of stores with ``raise_on_error``.

    Idempotent. Other stores keep Rasa's fall-back-to-memory behaviour.
    """
    for hook in ("on_tracker_store_error", "on_tracker_store_retrieve_error"):
        original = getattr(FailSafeTrackerStore, hook)
        if getattr(original, _MARK, False):
            continue

        def strict(self: FailSafeTrackerStore, error: Exception, _original=original) -> None:
            if getattr(self._tracker_store, "raise_on_error", False):
                raise error
            _original(self, error)

        setattr(strict, _MARK, True)
        setattr(FailSafeTrackerStore, hook, strict)
