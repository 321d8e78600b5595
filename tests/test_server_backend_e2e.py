"""The assistant with an inference server writing its replies, end to end.

A real `rasa run` on the trained model, whose endpoints.yml names an
OpenAI-compatible server the way a user does it: `nlg.server` with `${LLM_URL}` and
`${LLM_MODEL}`, substituted by Rasa from the environment. The server is the local
fake of tests/components/generator/openai_server.py (its "model" copies the first
sentence of passage [1]); no real inference server is installed in CI (the README's
"Use your own model" says why). Over REST: a help-center question gets the server's
answer, cited and stored with the server's model name; a server that fails gets the
extractive answer instead, and the conversation goes on.
"""
from __future__ import annotations

import http.client
import json

import pytest
import sqlalchemy as sa
import yaml

from tests.components.generator.openai_server import FINGERPRINT, MODEL, FakeServer
from tests.e2e_fixtures import ROOT, rasa_server
from shared_names import GENERATION_KEY

pytestmark = pytest.mark.slow

QUESTION = "is there a discount for teachers?"


@pytest.fixture(scope="module")
def llm():
    with FakeServer() as server:
        yield server


@pytest.fixture(scope="module")
def assistant(trained_model, action_server, llm, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("server-backend")
    endpoints = yaml.safe_load((ROOT / "endpoints.yml").read_text())
    # The two lines of the README's recipe.
    endpoints["nlg"]["server"] = {"url": "${LLM_URL}", "model": "${LLM_MODEL}"}
    (tmp / "endpoints.yml").write_text(yaml.safe_dump(endpoints))
    with rasa_server(trained_model, action_server["url"], tmp, endpoints=tmp / "endpoints.yml",
                     env={"LLM_URL": llm.url, "LLM_MODEL": MODEL}) as running:
        yield running


def say(server, sender: str, text: str) -> list:
    conn = http.client.HTTPConnection("127.0.0.1", server["port"], timeout=60)
    conn.request("POST", "/webhooks/rest/webhook",
                 body=json.dumps({"sender": sender, "message": text}),
                 headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    assert response.status == 200
    return json.loads(response.read())


def last_generation(server, sender: str) -> dict:
    with sa.create_engine(server["tracker"]).connect() as conn:
        rows = conn.execute(sa.text("select data from events where sender_id = :s and "
                                    "type_name = 'bot' order by id"), {"s": sender}).fetchall()
    records = [json.loads(r.data).get("metadata", {}).get(GENERATION_KEY) for r in rows]
    return [r for r in records if r][-1]


def test_the_server_answers_help_center_questions_with_a_source(assistant, llm):
    llm.behaviour = "ok"
    replies = say(assistant, "server-ok", QUESTION)
    text = replies[0]["text"]
    # The fake model copies the first sentence of the passage it was given: the
    # extractive answer's sentences (answers.answer_hit).
    answer, source = text.split("\nSource: ")
    assert "no published discounts for groups such as teachers" in answer
    assert source.endswith("/help/student-and-group-discounts)")
    record = last_generation(assistant, "server-ok")
    assert (record["mode"], record["model_id"], record["model_version"]) == (
        "generated", MODEL, f"{MODEL}@{FINGERPRINT}")
    assert record["sources"] and record["groundedness"]["grounded"] is True
    request = llm.requests[-1]
    assert request["model"] == MODEL and request["messages"][0]["role"] == "system"
    assert request["messages"][-1] == {"role": "user", "content": QUESTION}


def test_a_failing_server_falls_back_to_the_extractive_answer(assistant, llm):
    llm.behaviour = "http_500"
    try:
        replies = say(assistant, "server-down", QUESTION)
    finally:
        llm.behaviour = "ok"
    assert "teachers" in replies[0]["text"] and "\nSource: " in replies[0]["text"]
    record = last_generation(assistant, "server-down")
    assert record["mode"] == "extractive"
    assert record["rejected"] == {"reason": "server_http_500", "text": ""}
    # The conversation goes on: the next turn is answered by the server again.
    say(assistant, "server-down", QUESTION)
    assert last_generation(assistant, "server-down")["mode"] == "generated"
