"""PII redaction of exports: slot-held values, emails, phones, card numbers."""
from __future__ import annotations

from hypothesis import given, strategies as st

from components.feedback.redact import Redactor, pseudonym


def test_slot_values_and_patterns_are_masked():
    events = [{"event": "slot", "name": "new_address", "value": "12 Elm Street, Springfield"},
              {"event": "slot", "name": "email", "value": "jane.doe@example.com"}]
    r = Redactor.for_events(events)
    text = r.text("Ship to 12 elm street, springfield please, mail JANE.DOE@example.com "
                  "or call +1 415 555 0199; card 4111 1111 1111 1112")
    assert "Elm" not in text and "elm" not in text and "jane" not in text.lower()
    assert "[address]" in text and "[email]" in text and "[phone]" in text
    assert "[card number]" in text  # masked even though it fails the Luhn check


def test_short_slot_values_do_not_mask_words():
    r = Redactor({"new_address": ["no"]})
    assert r.text("no problem") == "no problem"


def test_nested_values():
    r = Redactor({"email": ["a@b.co"]})
    assert r.value({"x": ["mail a@b.co"], "n": 3}) == {"x": ["mail [email]"], "n": 3}


@given(st.emails())
def test_any_email_is_masked(email):
    assert email not in Redactor({}).text(f"my mail is {email} thanks")


def test_pseudonyms_are_stable_and_salted():
    assert pseudonym("U123", "a") == pseudonym("U123", "a") != pseudonym("U123", "b")
    assert "U123" not in pseudonym("U123", "a")
