"""PII redaction for everything the feedback loop writes.

Two passes, in order:

1. values the conversation stored in PII slots (``PII_SLOTS``: the customer's
   email and postal address) are replaced wherever they appear, whatever
   their shape, e.g. "12 Elm Street, Springfield" -> "[address]";
2. ``components.generator.guardrails.mask_pii`` masks emails, phone and card numbers,
   and any remaining run of 13-19 digits is masked as a card number even if
   it fails the Luhn check: an export is stricter than a live reply.

Sender ids (Slack user ids, phone numbers on some channels) are replaced by a
salted SHA-256 prefix, stable within one store so turns still group.
"""
from __future__ import annotations

import hashlib
import re
from typing import Any, Dict, Iterable, Mapping, Sequence

from components.generator.guardrails import PUBLIC_CONTACTS, mask_pii

# Slot name -> placeholder. Slots of domain.yml that hold personal data.
PII_SLOTS: Mapping[str, str] = {
    "email": "[email]",
    "verified_email": "[email]",
    "new_address": "[address]",
}
_ANY_CARD = re.compile(r"\b\d(?:[ -]?\d){12,18}\b")
# RFC 5322 "atext" local parts (e.g. o'neil+x/y@...), wider than the live guardrail's.
_ANY_EMAIL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_MIN_VALUE_CHARS = 3  # shorter slot values ("no", "1") would mask ordinary words


class Redactor:
    """Masks one conversation's PII; build one per conversation with its slot values."""

    def __init__(self, slot_values: Mapping[str, Iterable[Any]],
                 pii_slots: Mapping[str, str] = PII_SLOTS) -> None:
        """``slot_values``: slot name -> every value the conversation set for it."""
        pairs = []
        for slot, placeholder in pii_slots.items():
            for value in slot_values.get(slot, ()):
                if isinstance(value, str) and len(value.strip()) >= _MIN_VALUE_CHARS:
                    pairs.append((value.strip(), placeholder))
        # Longest first, so "12 Elm Street, Springfield" wins over "12 Elm Street".
        pairs.sort(key=lambda p: -len(p[0]))
        self._patterns = [(re.compile(re.escape(v), re.IGNORECASE), p) for v, p in pairs]

    @classmethod
    def for_events(cls, events: Sequence[Dict[str, Any]],
                   pii_slots: Mapping[str, str] = PII_SLOTS) -> "Redactor":
        """A redactor for the slot values set by ``events`` (stored event dicts)."""
        values: Dict[str, list] = {}
        for event in events:
            if event.get("event") == "slot" and event.get("name") in pii_slots:
                values.setdefault(event["name"], []).append(event.get("value"))
        return cls(values, pii_slots)

    def text(self, text: str) -> str:
        """``text`` with slot-held PII, emails, phone and card numbers masked."""
        for pattern, placeholder in self._patterns:
            text = pattern.sub(placeholder, text)
        text = mask_pii(text)  # keeps the store's own published contacts
        text = _ANY_EMAIL.sub(lambda m: m.group(0) if m.group(0).lower() in PUBLIC_CONTACTS
                              else "[email]", text)
        return _ANY_CARD.sub("[card number]", text)

    def value(self, value: Any) -> Any:
        """Redacts strings inside a JSON-like value (dicts and lists recursively)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        return value


def pseudonym(sender_id: str, salt: str) -> str:
    """A stable 16-hex-digit pseudonym of a sender id (SHA-256 of salt + id)."""
    return hashlib.sha256(f"{salt}:{sender_id}".encode()).hexdigest()[:16]
