"""`make serve` (scripts/serve.sh): all four servers up, URLs printed, Ctrl-C stops them all.

The script runs as a user runs it, in its own process group; Ctrl-C is
SIGINT to that group, as a terminal sends it. Ports come from PORT and
WEBCHAT_PORT; the action server takes 5055 as documented, so this test
needs that port free.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

from tests.e2e_fixtures import ROOT, free_port, rasa_env

pytestmark = pytest.mark.slow


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_serve_refuses_to_start_without_a_token():
    env = rasa_env()
    env.pop("RASA_AUTH_TOKEN", None)
    proc = subprocess.run(["scripts/serve.sh"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 1 and "set RASA_AUTH_TOKEN" in proc.stderr


def test_serve_starts_everything_and_ctrl_c_stops_everything(trained_model, action_server,
                                                              tmp_path):
    if port_open(5055):
        pytest.fail("port 5055 is taken; scripts/serve.sh starts the action server there")
    from components.console.users import hash_password

    port, page_port, console_port = free_port(), free_port(), free_port()
    env = rasa_env(RASA_AUTH_TOKEN="serve-test-token", PORT=str(port),
                   WEBCHAT_PORT=str(page_port), SUPPORT_DB_URL=action_server["db_url"],
                   TRACKER_STORE_URL=f"sqlite:///{tmp_path / 'tracker.db'}",
                   CONSOLE_PORT=str(console_port),
                   CONSOLE_DB_URL=f"sqlite:///{tmp_path / 'console.db'}",
                   CONSOLE_USERS=f"lead:lead:{hash_password('a long password')}")
    proc = subprocess.Popen(["scripts/serve.sh", trained_model], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    printed = []
    try:
        for line in proc.stdout:  # the script prints the URLs once everything answers
            printed.append(line)
            if line.startswith("  HTTP API"):
                break
        output = "".join(printed)
        assert "is up" in output, output
        assert f"http://localhost:{page_port}/?server=http://localhost:{port}" in output
        assert "  Help center:" in output
        assert f"  Console:       http://localhost:{console_port}/" in output
        login = urllib.request.urlopen(f"http://127.0.0.1:{console_port}/login", timeout=10)
        assert b"Kestrel console" in login.read()
        page = urllib.request.urlopen(f"http://127.0.0.1:{page_port}/", timeout=10).read()
        assert b"socket.io.min.js" in page
        status = urllib.request.urlopen(
            f"http://127.0.0.1:{port}/status?token=serve-test-token", timeout=30).status
        assert status == 200
        assert urllib.request.urlopen("http://127.0.0.1:5055/health", timeout=10).status == 200
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in the terminal
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail("scripts/serve.sh did not stop on Ctrl-C")
    deadline = time.monotonic() + 30
    ports = (port, page_port, console_port, 5055)
    while any(port_open(p) for p in ports) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not any(port_open(p) for p in ports), "a server outlived Ctrl-C"
    assert "Stopped." in proc.stdout.read()
