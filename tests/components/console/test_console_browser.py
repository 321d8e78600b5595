"""The console in a real browser: Debian's headless Chromium driven by playwright-core.

The console runs as `make console` runs it (``python -m components.console serve``,
waitress) over a real Rasa tracker store; console_driver.mjs logs in as a lead,
filters the list, opens a conversation with a generated turn, corrects the reply,
builds the dataset and sees the correction counted; opens a conversation whose
customer message is HTML; then a reviewer tries to promote. The screenshots go to
test-artifacts/ (the README's pictures are copies of them).

Needs /usr/bin/chromium and webchat/node_modules (scripts/install_test_tools.sh).
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.components.console.conftest import PASSWORDS, XSS_TEXT, project_root, sqlite_store
from tests.e2e_fixtures import ROOT

ARTIFACTS = ROOT / "test-artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(tmp_path, users_env):
    """(url, store URL, project folder) of a console served in its own process."""
    store = sqlite_store(tmp_path)
    project = project_root(tmp_path / "project")
    port = free_port()
    env = {**os.environ, "TRACKER_STORE_URL": store, "CONSOLE_USERS": users_env,
           "CONSOLE_DB_URL": f"sqlite:///{tmp_path / 'console.db'}",
           "CONSOLE_USERS_FILE": str(tmp_path / "none.json"),
           "PYTHONPATH": os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH"))))}
    log = open(tmp_path / "console.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "components.console", "serve", "--port",
                             str(port)], cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/login", timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.3)
    else:
        proc.kill()
    if proc.poll() is not None:
        pytest.fail(f"the console did not start:\n{(tmp_path / 'console.log').read_text()}")
    yield url, store, project
    proc.terminate()
    proc.wait(timeout=10)
    log.close()


def event_rows(store: str) -> int:
    engine = sa.create_engine(store)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT count(*) FROM events")).scalar()
    engine.dispose()
    return rows


def test_a_lead_corrects_a_reply_and_builds_the_dataset_a_reviewer_cannot_promote(served):
    url, store, project = served
    chromium = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    if not Path(chromium).exists() or not shutil.which("node"):
        pytest.fail(f"{chromium} or node is missing: run scripts/install_test_tools.sh.")
    before = event_rows(store)
    proc = subprocess.run(["node", str(ROOT / "tests/components/console/console_driver.mjs"),
                           url, str(ARTIFACTS), "lena", PASSWORDS["lena"], "rita",
                           PASSWORDS["rita"]], capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, f"browser driver failed:\n{proc.stdout}\n{proc.stderr[-4000:]}"
    seen = json.loads(proc.stdout.strip().splitlines()[-1])

    assert seen["anonymousLandedOn"] == "/login" and seen["afterLogin"] == "/conversations"
    assert seen["filteredTotal"] == "1 conversation"
    assert seen["conversationUrl"] == "/conversations/alice-1"
    assert {"mode: extractive", "model kestrel-gpt-v1", "41 ms"} <= set(seen["generationTags"])
    assert seen["flash"] == "Saved: reply a1a1a1a1a1a1a1a1 corrected."
    assert seen["reviewStatus"].startswith("corrected by lena")
    assert seen["jobUrl"] == "/jobs/1" and seen["jobStatus"] == "succeeded"
    assert seen["correctionsUsed"] == "1" and seen["corrected"] == "1"
    assert seen["xssShown"] == XSS_TEXT
    assert seen["xssRan"] is None and seen["injectedImages"] == 0 and seen["dialogs"] == []
    assert seen["promoteDisabled"] is True
    assert seen["forcedPromoteStatus"] == 403
    assert "may not promote" in seen["forcedPromoteMessage"]
    assert seen["reviewerAuditStatus"] == "Not allowed"
    assert not seen["consoleErrors"], seen["consoleErrors"]

    assert event_rows(store) == before  # the console never writes to the tracker store
    manifest = json.loads((project / "feedback/dataset/manifest.json").read_text())
    assert manifest["corrections_used"] == 1 and manifest["article_labels"] == 1
    for name in ("console-conversation.png", "console-dataset.png", "console-review.png"):
        assert (ARTIFACTS / name).stat().st_size > 10_000, name
