"""Tests for actions/handoff.py: the summary and the ticket.

The texts are what the customer reads (conftest.rendered); the support hours come
from the ``support_hours`` slot of domain.yml.
"""

from sqlalchemy import select

from actions.db import Ticket
from actions.handoff import ActionHandoff, conversation_summary, ticket_reference, truncate

DB_DOWN = "I can't reach the order system right now, please try again in a few minutes."
HOURS = "Monday-Friday 8:00-20:00 and Saturday 9:00-17:00 Eastern Time (closed Sunday)"

CONVERSATION = [
    {"event": "action", "name": "action_listen"},
    {"event": "user", "text": "hi"},
    {"event": "bot", "text": "Hello! How can I help?"},
    {"event": "user", "text": "my blender makes a strange noise"},
    {"event": "user", "text": "x" * 500},
    {"event": "slot", "name": "email", "value": "jane.doe@example.com"},
    {"event": "user", "text": "I want to talk to a person"},
]


def test_summary_keeps_the_last_three_user_messages_in_order():
    lines = conversation_summary(CONVERSATION).splitlines()
    assert lines == ["- my blender makes a strange noise", f"- {'x' * 197}...",
                     "- I want to talk to a person"]


def test_truncate_cuts_to_the_limit():
    assert truncate("short") == "short"
    assert len(truncate("y" * 201)) == 200
    assert truncate("a  b\n c") == "a b c"


def test_summary_without_user_text():
    assert conversation_summary([{"event": "bot", "text": "hello"}]) == "(no messages)"


def test_handoff_opens_a_ticket(store, make_tracker, run_action, dispatcher, said, rows):
    tracker = make_tracker(slots={"email": "Jane.Doe@example.com"}, events=CONVERSATION,
                           sender_id="conv-42")
    events = run_action(ActionHandoff(), tracker)
    assert events == []
    [ticket] = rows(store, select(Ticket))
    assert (ticket.conversation_id, ticket.customer_email, ticket.status) == (
        "conv-42", "jane.doe@example.com", "open")
    assert "strange noise" in ticket.summary and "hi" not in ticket.summary.splitlines()
    message = said(dispatcher, tracker)[0]
    assert message == (
        f"I've opened ticket {ticket_reference(ticket.id)} and passed our conversation to the "
        "support team. A person will reply by email to jane.doe@example.com within one "
        f"business day. Our support hours are {HOURS}.")
    assert dispatcher.messages[0]["response"] == "utter_ticket_opened"


def test_support_hours_are_written_once_in_the_domain(domain):
    """The slot's initial value is the one source; the responses that state hours use it."""
    [hours] = [slot.initial_value for slot in domain.slots if slot.name == "support_hours"]
    assert hours == HOURS
    texts = [variation.get("text") or "" for variations in domain.responses.values()
             for variation in variations]
    assert not [text for text in texts if "8:00" in text or "Saturday" in text]
    for name in ("utter_opening_hours", "utter_contact_info", "utter_ticket_opened"):
        assert all("{support_hours}" in v["text"] for v in domain.responses[name]), name


def test_each_handoff_gets_its_own_ticket(store, make_tracker, run_action, dispatcher, said, rows):
    for sender in ("a", "b"):
        run_action(ActionHandoff(), make_tracker(slots={"email": "sam.okafor@example.org"},
                                                 events=CONVERSATION, sender_id=sender))
    tickets = rows(store, select(Ticket).order_by(Ticket.id))
    assert [t.conversation_id for t in tickets] == ["a", "b"]
    assert ticket_reference(tickets[1].id) in said(dispatcher)[1]


def test_handoff_without_email_asks_for_it(store, make_tracker, run_action, dispatcher, said,
                                           rows):
    run_action(ActionHandoff(), make_tracker(events=CONVERSATION))
    assert said(dispatcher) == ["I need your email address so our support team can reply to you."]
    assert rows(store, select(Ticket)) == []


def test_database_trouble_is_a_polite_message(broken_store, make_tracker, run_action, dispatcher,
                                              said, caplog):
    run_action(ActionHandoff(), make_tracker(slots={"email": "sam.okafor@example.org"}))
    assert said(dispatcher) == [DB_DOWN]
    assert any(record.levelname == "ERROR" for record in caplog.records)


def test_ticket_reference_is_zero_padded():
    assert ticket_reference(42) == "T-00042"
