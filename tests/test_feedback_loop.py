"""The whole feedback loop against SQLite, driven through the trained Rasa agent.

1. simulated customers talk to the agent (real NLU, policies, action server,
   GenerativeNLG) and rate generated replies by button and by "yes"/"no";
2. export, 3. corrections, 4. fine-tune, 5. evaluate, 6. promote, 7. roll back,
each through the command line a support team uses
(``python -m components.feedback ...``); plus analytics.
"""
from __future__ import annotations

import asyncio
import csv
import json
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from components.nlg.config import read_nlg_config
from tests.e2e_fixtures import ROOT, rasa_env

pytestmark = pytest.mark.slow

# The first six are answered from the help center (so they carry rating buttons);
# the last two no article answers.
OPEN_QUESTIONS = [
    "do you sell gift cards?", "is there a discount for teachers?", "do you price match?",
    "do gift cards ever expire?", "how do I turn on two-step sign in?",
    "can I swap the color of my lamp after ordering",
    "what's your favourite colour?", "tell me a joke",
]


def feedback(*args: str, expect: int = 0) -> str:
    proc = subprocess.run([sys.executable, "-m", "components.feedback", *args], cwd=ROOT,
                          env=rasa_env(), capture_output=True, text=True, timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == expect, out[-3000:]
    return out


class Customer:
    def __init__(self, agent):
        self.agent, self.sender = agent, f"loop-{uuid.uuid4().hex[:8]}"

    async def say(self, text: str):
        return await self.agent.handle_text(text, sender_id=self.sender)


def rating_payload(replies, title: str) -> str:
    [button] = [b for r in replies for b in (r.get("buttons") or []) if b["title"] == title]
    return button["payload"]


@pytest.fixture(scope="module")
def store(trained_model, action_server, tmp_path_factory):
    """A fresh SQLite tracker store filled by customers talking to the agent."""
    from rasa.core.agent import Agent
    from rasa.core.utils import AvailableEndpoints
    from rasa.utils.endpoints import EndpointConfig

    from components.stores.tracker_store import URLSQLTrackerStore

    url = f"sqlite:///{tmp_path_factory.mktemp('loop') / 'tracker.db'}"
    endpoints = AvailableEndpoints.read_endpoints(str(ROOT / "endpoints.yml"))
    agent = Agent.load(trained_model, generator=endpoints.nlg,
                       tracker_store=URLSQLTrackerStore(url=url),
                       action_endpoint=EndpointConfig(url=action_server["url"]))
    seen = {"thanks": []}

    async def talk():
        await _conversations(agent, seen)

    with ThreadPoolExecutor(max_workers=1) as pool:  # its own event loop
        pool.submit(asyncio.run, talk()).result()
    return {"url": url, "seen": seen}


async def _conversations(agent, seen) -> None:
    """Eight customers ask open questions; six rate by button, one says "no"."""
    for i, question in enumerate(OPEN_QUESTIONS):
        customer = Customer(agent)
        await customer.say("hello there")
        replies = await customer.say(question)
        if i < 6:  # rated by button: five helpful, one not
            title = "Not helpful" if i == 5 else "Helpful"
            thanks = await customer.say(rating_payload(replies, title))
            seen["thanks"].append(" ".join(r.get("text") or "" for r in thanks))
        elif i == 6:  # rated in plain words, as in `rasa shell`
            await customer.say("no")
        # i == 7: ignores the rating and goes on with a scripted task
        await customer.say("where is my order KC-10423?")
        await customer.say("jane.doe@example.com")
    ghost = Customer(agent)
    unknown = await ghost.say('/rate_reply{"rating": "helpful", "reply_id": "doesnotexist"}')
    seen["unknown"] = " ".join(r.get("text") or "" for r in unknown)


def test_ratings_are_acknowledged(store):
    assert all(t.strip() for t in store["seen"]["thanks"])
    assert "couldn't find" in store["seen"]["unknown"].lower() \
        or "could not find" in store["seen"]["unknown"].lower()


def test_the_loop_export_to_rollback(store, trained_model, tmp_path):
    work = tmp_path
    # 2. export
    out = feedback("export", "--store", store["url"], "--out", str(work / "exports"))
    assert "Exported" in out
    [folder] = [p for p in (work / "exports").iterdir() if p.is_dir()]
    records = [json.loads(line) for line in (folder / "generated.jsonl").read_text().splitlines()]
    assert len(records) == len(OPEN_QUESTIONS)
    ratings = sorted(r["rating"] or "-" for r in records)
    assert ratings.count("helpful") == 5 and ratings.count("not_helpful") == 2
    answered = [r for r in records if r["mode"] == "extractive"]
    assert len(answered) >= 6  # the help-center questions, each with its cited article
    help_center = read_nlg_config(ROOT / "endpoints.yml").answers.help_center_url
    assert all(r["sources"] and r["sources"][0]["url"].startswith(help_center + "/")
               for r in answered)
    assert all(r["model_version"].startswith("kestrel-gpt-") for r in records
               if r["mode"] == "generated")
    exported = "".join(p.read_text() for p in folder.iterdir())
    assert "jane.doe@example.com" not in exported and "[email]" in exported
    assert "order_lookup_form" in (folder / "stories.yml").read_text()
    assert "nothing new" in feedback("export", "--store", store["url"],
                                     "--out", str(work / "exports"))

    # 3. corrections: the reviewer fixes the two bad replies
    feedback("review", "--exports", str(work / "exports"), "--out", str(work / "review.csv"))
    rows = list(csv.DictReader(open(work / "review.csv", encoding="utf-8")))
    for row in rows:
        if row["rating"] == "not_helpful":
            row["corrected_reply"] = ("Good question! I can help with orders, returns and "
                                      "shipping, and I'm happy to check anything for you.")
    with open(work / "review.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    out = feedback("dataset", "--exports", str(work / "exports"), "--corrections",
                   str(work / "review.csv"), "--out", str(work / "ds"), "--heldout", "0.3")
    manifest = json.loads((work / "ds" / "manifest.json").read_text())
    assert manifest["corrections_used"] == 2 and manifest["negatives"] == 0
    assert manifest["train"] + manifest["heldout"] == 7

    # 4. fine-tune the trained model's generator (registered as the baseline)
    versions = work / "generators"
    feedback("finetune", "--dataset", str(work / "ds"), "--out", str(work / "candidate"),
             "--archive", trained_model, "--versions", str(versions), "--no-replay",
             "--epochs", "3", "--learning-rate", "1e-4")
    meta = json.loads((work / "candidate" / "generator_meta.json").read_text())
    [baseline] = [p.name for p in versions.iterdir() if p.is_dir()]
    assert meta["base_version"] == baseline != meta["version"]

    # 5. evaluate
    out = feedback("evaluate", "--candidate", str(work / "candidate"), "--heldout",
                   str(work / "ds" / "heldout.jsonl"), "--out", str(work / "report"),
                   "--archive", trained_model, "--versions", str(versions),
                   "--store", store["url"])
    decision = json.loads((work / "report" / "decision.json").read_text())
    assert (work / "report" / "report.md").is_file()
    assert list((work / "report").glob("*.png"))
    assert decision["candidate_version"] == meta["version"]

    # 6. promote: refused without the report's approval, then forced if needed
    promote = ["promote", "--candidate", str(work / "candidate"), "--report",
               str(work / "report" / "decision.json"), "--versions", str(versions)]
    if not decision["promote"]:
        assert "does not recommend" in feedback(*promote, expect=1)
        assert not (versions / "current").exists()
        promote.append("--force")
    assert "Promoted" in feedback(*promote)
    assert (versions / "current").resolve().name == meta["version"]

    # 7. roll back to the baseline
    assert "Rolled back" in feedback("rollback", "--versions", str(versions))
    assert (versions / "current").resolve().name == baseline
    assert "rollback" in feedback("status", "--versions", str(versions))


def test_analytics(store, tmp_path):
    out = feedback("analytics", "--store", store["url"], "--plot", str(tmp_path / "a.png"))
    assert (tmp_path / "a.png").is_file()
    assert "helpful" in out.lower()
