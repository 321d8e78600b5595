"""Fixtures for the console: a real Rasa tracker store, two users, the Flask app.

The store is written by Rasa's own ``SQLTrackerStore`` with events as the
running bot writes them: user messages with their intent, actions with the
policy that chose them, generated replies with their ``generation`` record,
ratings, a hand-off, PII and a customer message that is HTML.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, List

import pytest

from tests.components.feedback.helpers import save_conversations
from tests.e2e_fixtures import ROOT

T0 = 1_780_000_000.0  # 2026-05-28 20:26:40 UTC, s since epoch
DAY = 86_400.0
PASSWORDS = {"rita": "reviewer-pass-1", "lena": "lead-pass-123"}  # name -> password
ROLES = {"rita": "reviewer", "lena": "lead"}
XSS_TEXT = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'
EMAIL = "jane.doe@mail.example"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def generation(reply_id: str, **fields) -> Dict:
    """``metadata.generation`` of a help-center answer, as GenerativeNLG stores it."""
    return {"generated": False, "fallback": None, "mode": "extractive", "reply_id": reply_id,
            "model_id": "kestrel-gpt", "model_version": "kestrel-gpt-v1", "latency_ms": 41.0,
            "guardrails": ["cut_to_sentences"],
            "sources": [{"id": "gift-cards#0", "slug": "gift-cards", "title": "Gift cards",
                         "url": "/help/gift-cards", "score": 0.71}],
            "groundedness": {"grounded": True, "unsupported": []}, **fields}


def conversations() -> Dict[str, List]:
    """sender id -> Rasa events: four conversations, one of each kind the filters find."""
    from rasa.shared.core.events import (
        ActionExecuted, BotUttered, SessionStarted, SlotSet, UserUttered,
    )

    def user(text, intent, t, confidence=0.93, entities=()):
        return UserUttered(text, intent={"name": intent, "confidence": confidence},
                           entities=list(entities), timestamp=t)

    def act(name, policy, t, confidence=1.0):
        return ActionExecuted(name, policy=policy, confidence=confidence, timestamp=t)

    def reply(text, g, t):
        return BotUttered(text, metadata={"utter_action": "utter_gpt_reply", "generation": g},
                          timestamp=t)

    def rated(reply_id, value, t):
        return SlotSet("reply_rating", {"reply_id": reply_id, "rating": value,
                                        "model_version": "kestrel-gpt-v1", "rated_at": t},
                       timestamp=t)

    t = T0
    return {
        "alice-1": [
            act("action_session_start", None, t), SessionStarted(timestamp=t),
            act("action_listen", None, t),
            user(f"do you sell gift cards? my email is {EMAIL}", "policy_question", t + 1,
                 entities=[{"entity": "email", "value": EMAIL, "start": 34, "end": 55}]),
            act("utter_gpt_reply", "policy_2_GPTPolicy", t + 2, 0.88),
            reply("Gift cards come in 25, 50 and 100 dollars.\nSource: Gift cards",
                  generation("a1a1a1a1a1a1a1a1"), t + 2),
            rated("a1a1a1a1a1a1a1a1", "not_helpful", t + 30),
        ],
        "bob-2": [
            act("action_session_start", None, t + DAY), SessionStarted(timestamp=t + DAY),
            user("hi", "greet", t + DAY + 1),
            act("utter_greet", "policy_0_RulePolicy", t + DAY + 2),
            BotUttered("Hi! How can I help?", timestamp=t + DAY + 2),
            user("i want to talk to a person", "human_handoff", t + DAY + 3),
            act("action_handoff", "policy_0_RulePolicy", t + DAY + 4),
            BotUttered("Ticket T-00001 is open.", timestamp=t + DAY + 4),
        ],
        "carol-3": [
            user(XSS_TEXT, "nlu_fallback", t + 2 * DAY, 0.2),
            act("utter_gpt_reply", "policy_2_GPTPolicy", t + 2 * DAY + 1, 0.7),
            reply("I'm not sure I can answer that one.",
                  generation("c3c3c3c3c3c3c3c3", mode="fallback", fallback="unsupported",
                             sources=[]), t + 2 * DAY + 1),
        ],
        "dave-4": [
            user("how long do card refunds take", "policy_question", t + 3 * DAY),
            act("utter_gpt_reply", "policy_2_GPTPolicy", t + 3 * DAY + 1, 0.9),
            reply("Card refunds show up in 5 to 10 business days.",
                  generation("d4d4d4d4d4d4d4d4"), t + 3 * DAY + 1),
            rated("d4d4d4d4d4d4d4d4", "helpful", t + 3 * DAY + 20),
        ],
    }


def sqlite_store(folder: Path) -> str:
    """A new SQLite tracker store in ``folder`` holding ``conversations()``."""
    url = f"sqlite:///{folder / 'tracker.db'}"
    save_conversations(url, conversations())
    return url


@pytest.fixture(scope="session")
def users_env() -> str:
    """CONSOLE_USERS for rita (reviewer) and lena (lead); Argon2 hashing is slow, so once."""
    from components.console.users import hash_password

    return ";".join(f"{name}:{ROLES[name]}:{hash_password(pw)}" for name, pw in PASSWORDS.items())


@pytest.fixture(scope="module")
def store_url(tmp_path_factory) -> str:
    return sqlite_store(tmp_path_factory.mktemp("console-store"))


def project_root(folder: Path) -> Path:
    """A project folder for the loop's commands: the real domain.yml and data/, own outputs."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("domain.yml", "data"):
        if not (folder / name).exists():
            (folder / name).symlink_to(ROOT / name)
    return folder


def make_console(tmp_path: Path, store: str, users_env: str, db_url: str = ""):
    """(app, config) of a console over ``store`` with its own database and project folder."""
    from components.console.app import create_app
    from components.console.config import ConsoleConfig

    config = ConsoleConfig(store_url=store, db_url=db_url or f"sqlite:///{tmp_path / 'console.db'}",
                           users_file=tmp_path / "users.json", users_env=users_env,
                           root=project_root(tmp_path / "project"), page_size=2)
    app = create_app(config)
    app.config["TESTING"] = True
    return app, config


@pytest.fixture
def console(tmp_path, store_url, users_env):
    return make_console(tmp_path, store_url, users_env)


@pytest.fixture
def app(console):
    return console[0]


def token(client, path: str = "/login") -> str:
    """The CSRF token a page of ``path`` carries for this client's session."""
    found = CSRF.search(client.get(path).get_data(as_text=True))
    assert found, f"no CSRF token on {path}"
    return found.group(1)


def login(client, name: str):
    """Logs ``name`` in through the login form; returns the response."""
    return client.post("/login", data={"name": name, "password": PASSWORDS[name],
                                       "csrf_token": token(client)})
