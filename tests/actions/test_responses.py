"""The responses the actions send: each is in domain.yml, with every variable it needs.

The actions say nothing in their own words: every message is a domain.yml response,
sent as ``dispatcher.utter_message(response="utter_...", name=value, ...)`` or as
``Reply(response="utter_...", name=value, ...)`` (actions/common.py). Rasa fills the
response's ``{name}`` placeholders from those values, else from the slots, and
sends a placeholder it cannot fill as it is, or nothing at all for a response the
domain lacks. This module reads every such call in actions/*.py and checks, call by
call, that it cannot happen.
"""

import ast
import re
from pathlib import Path
from typing import Dict, List, NamedTuple, Set

import pytest

import actions
from shared_names import GPT_RESPONSE, RATING_PROMPT_RESPONSE

ACTIONS_DIR = Path(actions.__file__).parent
PLACEHOLDER = re.compile(r"{([^\n{}]+?)}")  # as rasa.core.nlg.interpolator reads them
RESPONSE_NAME = re.compile(r"utter_[a-z0-9_]+")
# Keys of the message itself (rasa_sdk's utter_message, Rasa's bot message and output
# channels): a variable with one of these names would change the message, not fill it.
RESERVED = {"text", "image", "json_message", "template", "response", "attachment",
            "buttons", "elements", "custom", "quick_replies", "recipient_id", "timestamp",
            "utter_action", "domain_responses", "metadata"}
# Responses neither the data nor the actions send: the GPT policy's (shared_names.GPT_RESPONSE,
# filled by the NLG), the one sent when the action server fails
# (endpoints.yml: nlg.action_failure_response) and the rating line `rasa shell` prints
# (shared_names.RATING_PROMPT_RESPONSE).
SENT_BY_THE_RASA_SERVER = {GPT_RESPONSE, "utter_service_unavailable", RATING_PROMPT_RESPONSE}


class Sent(NamedTuple):
    """One call in actions/ with ``response="utter_..."``."""

    where: str  # "orders.py:57"
    response: str
    variables: Set[str]  # passed by name
    splat: bool  # passes **something as well


def sent_responses() -> List[Sent]:
    """Every call in actions/*.py that passes a literal ``response="utter_..."``."""
    found = []
    for path in sorted(ACTIONS_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            keywords = {k.arg: k.value for k in node.keywords}
            value = keywords.get("response")
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                found.append(Sent(f"{path.name}:{node.lineno}", value.value,
                                  {name for name in keywords if name not in (None, "response")},
                                  None in keywords))
    return found


def responses_sent_by_actions() -> Set[str]:
    """The names of the responses the actions send (for tools that list unused ones)."""
    return {sent.response for sent in sent_responses()}


def placeholders(variations: List[Dict]) -> Set[str]:
    """The ``{names}`` in the texts of a response's variations."""
    return {name for variation in variations
            for name in PLACEHOLDER.findall(variation.get("text") or "")}


SENT = sent_responses()


def test_the_scan_finds_the_actions_responses():
    names = responses_sent_by_actions()
    assert len(SENT) > 40
    assert {"utter_order_status_shipped", "utter_ticket_opened", "utter_rating_thanks",
            "utter_database_unavailable", "utter_order_id_hint"} <= names


def test_every_response_name_in_actions_is_sent_by_a_response_keyword():
    """No response name hides in a constant or a variable, where the scan would miss it."""
    scanned = {(sent.where.split(":")[0], sent.response) for sent in SENT}
    loose = []
    for path in sorted(ACTIONS_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and RESPONSE_NAME.fullmatch(node.value)
                    and (path.name, node.value) not in scanned):
                loose.append(f"{path.name}:{node.lineno}: {node.value}")
    assert loose == []


def test_actions_send_no_text_of_their_own():
    """``utter_message(text=...)`` would put wording outside domain.yml."""
    calls = []
    for path in sorted(ACTIONS_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "utter_message"):
                keywords = {k.arg for k in node.keywords}
                if node.args or "response" not in keywords or keywords & {"text", "json_message"}:
                    calls.append(f"{path.name}:{node.lineno}")
    assert calls == []


@pytest.mark.parametrize("sent", SENT, ids=[f"{s.where}:{s.response}" for s in SENT])
def test_the_response_exists_and_gets_every_variable(sent, domain):
    assert sent.response in domain.responses, f"{sent.where}: {sent.response} is not in domain.yml"
    assert not sent.splat, f"{sent.where}: pass the variables by name, so they can be checked"
    constant_slots = {slot.name for slot in domain.slots if slot.initial_value is not None}
    needed = placeholders(domain.responses[sent.response])
    # A slot the conversation fills may hold what the customer typed, not what the
    # action checked (an order id before normalising): only constant slots may fill.
    missing = needed - sent.variables - constant_slots
    assert not missing, f"{sent.where}: {sent.response} needs {sorted(missing)}"
    unused = sent.variables - needed
    assert not unused, f"{sent.where}: {sent.response} has no {sorted(unused)}"
    assert not sent.variables & RESERVED, f"{sent.where}: reserved name"


def test_every_response_is_sent_by_someone(domain):
    """A response that nothing sends is left over (its words would be out of date)."""
    root = ACTIONS_DIR.parent
    data = " ".join(path.read_text(encoding="utf-8") for path in (root / "data").rglob("*.yml"))
    used_in_data = set(RESPONSE_NAME.findall(data))
    asked_by_forms = {name for name in domain.responses if name.startswith("utter_ask_")}
    unsent = (set(domain.responses) - used_in_data - asked_by_forms
              - responses_sent_by_actions() - SENT_BY_THE_RASA_SERVER)
    assert unsent == set(), ("not used in data/, by a form or by an action; if the Rasa "
                             "server's own code sends it, add it to SENT_BY_THE_RASA_SERVER")
