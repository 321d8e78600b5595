"""``python -m components.console``: add-user and serve's refusal without users, as a user runs them."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.e2e_fixtures import ROOT


def run(args, tmp_path, stdin=""):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CONSOLE_USERS_FILE": str(tmp_path / "u.json"),
           "TRACKER_STORE_URL": f"sqlite:///{tmp_path / 'tracker.db'}"}
    env.pop("CONSOLE_USERS", None)
    return subprocess.run([sys.executable, "-m", "components.console", *args], input=stdin,
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)


def test_add_user_from_stdin_then_serve_refuses_a_bad_secret(tmp_path):
    added = run(["add-user", "lena", "--role", "lead", "--password-stdin"], tmp_path,
                "a long enough password\n")
    assert added.returncode == 0, added.stderr
    assert "lena (lead) can now log in" in added.stdout
    assert json.loads((tmp_path / "u.json").read_text())["lena"]["role"] == "lead"
    short = run(["add-user", "rita", "--role", "reviewer", "--password-stdin"], tmp_path, "short\n")
    assert short.returncode == 1 and "at least 10" in short.stderr


def test_serve_without_users_names_the_command_that_adds_one(tmp_path):
    proc = run(["serve", "--port", "1"], tmp_path)
    assert proc.returncode == 1
    assert "No console user yet" in proc.stderr
    assert "add-user NAME --role lead" in proc.stderr
