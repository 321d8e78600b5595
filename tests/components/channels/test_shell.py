"""`rasa shell` as a person uses it, driven in tmux (send-keys, capture-pane).

The shell runs the session's trained model with the project's endpoints.yml
(action server, GenerativeNLG, SQL tracker store on a temporary file) and
credentials.yml. A scripted reply, a generated reply with its rating invitation as
a line of text (not Rasa's button menu), a next question typed straight away (answered,
no rating stored), and a typed "yes" that rates the reply.
"""
from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import uuid

import pytest
import sqlalchemy as sa
import yaml

from tests.components.channels.helpers import wait_for
from tests.e2e_fixtures import RASA, ROOT, rasa_env, responses

pytestmark = pytest.mark.slow


class Tmux:
    """One detached tmux session on its own server socket."""

    def __init__(self, command: str, env: dict):
        if not shutil.which("tmux"):
            pytest.fail("tmux is missing: run scripts/install_test_tools.sh (Debian's tmux).")
        self.socket = f"kestrel-test-{uuid.uuid4().hex[:8]}"
        self.run("new-session", "-d", "-s", "shell", "-x", "160", "-y", "60", command, env=env)

    def run(self, *args: str, env=None) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], check=True, text=True,
                              capture_output=True, env=env).stdout

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-J", "-S", "-200", "-t", "shell")

    def send(self, *keys: str) -> None:
        self.run("send-keys", "-t", "shell", *keys)

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)



def shown(tmux: Tmux, texts: list) -> bool:
    screen = tmux.screen()
    return any(t in screen for t in texts)


@pytest.fixture()
def shell(trained_model, action_server, tmp_path):
    endpoints = yaml.safe_load((ROOT / "endpoints.yml").read_text())
    endpoints["action_endpoint"]["url"] = action_server["url"]
    (tmp_path / "endpoints.yml").write_text(yaml.safe_dump(endpoints))
    tracker = f"sqlite:///{tmp_path / 'tracker.db'}"
    # As scripts/chat.sh runs it: Rasa's stderr through scripts/terminal_log.py.
    log = shlex.quote(str(tmp_path / "shell.log"))
    command = (f"cd {shlex.quote(str(ROOT))} && exec {shlex.quote(RASA)} shell -m "
               f"{shlex.quote(trained_model)} --endpoints {shlex.quote(str(tmp_path / 'endpoints.yml'))}"
               f" 2> >({shlex.quote(sys.executable)} scripts/terminal_log.py {log} $(date +%s) >&2)")
    tmux = Tmux(f"bash -c {shlex.quote(command)}",
                rasa_env(TRACKER_STORE_URL=tracker, TERM="xterm-256color"))
    try:
        wait_for(lambda: "Bot loaded" in tmux.screen(), timeout=240, what="`rasa shell` to load",
                 show=tmux.screen)
        yield tmux, tracker
    finally:
        tmux.kill()


def ratings_in(tracker: str) -> list:
    with sa.create_engine(tracker).connect() as conn:
        rows = conn.execute(sa.text("select data from events where type_name = 'slot'")).all()
    slots = [json.loads(r[0]) for r in rows]
    return [s["value"] for s in slots if s["name"] == "reply_rating"]


def user_texts(tracker: str) -> list:
    with sa.create_engine(tracker).connect() as conn:
        rows = conn.execute(sa.text("select data from events where type_name = 'user'")).all()
    return [json.loads(r[0])["text"] for r in rows]


def test_the_start_is_quiet_and_says_when_it_is_ready(shell):
    tmux, _ = shell
    screen = tmux.screen()
    assert "Loading the NLU" in screen and "Loading the generator" in screen
    assert re.search(r"Ready in \d+ s\.", screen)
    for noise in ("DeprecationWarning", "Warning:", " INFO ", "jax"):
        assert noise not in screen, f"{noise!r} reached the terminal:\n{screen}"


def test_shell_scripted_generated_and_rated(shell):
    tmux, tracker = shell
    prompt = responses("utter_rating_prompt")
    tmux.send("hello there", "Enter")
    wait_for(lambda: shown(tmux, responses("utter_greet")), what="the greeting", show=tmux.screen)

    mark = len(tmux.screen())
    tmux.send("do you sell gift cards?", "Enter")
    # The answer (from the help center), then the rating invitation as a line of text.
    wait_for(lambda: any(p in tmux.screen()[mark:] for p in prompt),
             what="the generated reply's rating invitation", show=tmux.screen)
    screen = tmux.screen()[mark:]
    assert "Not helpful" not in screen, "Rasa's button menu is back"
    assert not any(t in screen for t in responses("utter_gpt_reply")), "canned fallback"

    # The customer ignores the invitation and asks the next question straight away.
    mark = len(tmux.screen())
    tmux.send("how do I clean the burr grinder on the coffee machine?", "Enter")
    wait_for(lambda: any(p in tmux.screen()[mark:] for p in prompt)
             or shown(tmux, responses("utter_rating_thanks")),
             what="the answer to the next question", show=tmux.screen)
    assert not shown(tmux, responses("utter_rating_thanks")), "the question was taken as a rating"
    assert ratings_in(tracker) == []
    assert "how do I clean the burr grinder on the coffee machine?" in user_texts(tracker)

    tmux.send("yes", "Enter")  # right after a generated reply: rates it
    wait_for(lambda: shown(tmux, responses("utter_rating_thanks")),
             what="the rating's thanks", show=tmux.screen)
    tmux.send("/stop", "Enter")

    ratings = ratings_in(tracker)
    assert [r["rating"] for r in ratings] == ["helpful"]
    assert all(r["mode"] in ("generated", "extractive") for r in ratings)
