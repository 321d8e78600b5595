"""Session fixtures of the end-to-end tests: the project trained once, the action server, the agent.

The model is trained once per test session from config.yml, domain.yml and
data/ (NLU, dialogue and the generator), exactly as `rasa train` does. The
action server is a real `rasa run actions` process on a temporary SQLite
store database; the tracker store is a temporary SQLite file. Loaded by
tests/conftest.py, so every test module shares the one training.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional, Sequence

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
RASA = str(Path(sys.executable).parent / "rasa")


def responses(name: str) -> list:
    """The texts of a response in domain.yml, to compare replies with."""
    domain = yaml.safe_load((ROOT / "domain.yml").read_text())
    return [r["text"] for r in domain["responses"][name]]


def wait_until_up(url: str, proc: subprocess.Popen, log: Path, seconds: float) -> None:
    """Polls ``url`` until it answers; fails with the log's tail if ``proc`` dies or time is up."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"{url} did not come up:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)


# credentials.yml reads these; empty leaves the Slack channel off, as the Makefile does.
SLACK_VARS = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_CHANNEL", "SLACK_DEDUPE_URL")


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def start_service(command: list, port: int, name: str, seconds: int = 90) -> None:
    """Starts a machine service (the commands of the machine page) if its port is closed."""
    if port_open(port):
        return
    subprocess.run(command, check=False, capture_output=True)
    deadline = time.monotonic() + seconds
    while not port_open(port):
        if time.monotonic() > deadline:
            pytest.fail(f"{name} is not listening on {port} and could not be started.")
        time.sleep(1)


def start_redis() -> None:
    """The machine's Redis on 127.0.0.1:6379, started if it is down."""
    start_service(["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1",
                   "--port", "6379", "--save", "", "--appendonly", "no"], 6379, "Redis")


def rasa_env(**extra: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", **extra}
    for name in SLACK_VARS:
        env.setdefault(name, "")
    return env


def stop(proc: subprocess.Popen, log, seconds: float) -> None:
    """SIGTERM ``proc``, SIGKILL it if it has not exited after ``seconds`` s, close ``log``."""
    proc.terminate()
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()


@contextmanager
def rasa_server(model: str, action_url: str, tmp: Path, *, env: Optional[dict] = None,
                credentials: Optional[dict] = None, args: Sequence[str] = (),
                endpoints: Path = ROOT / "endpoints.yml", name: str = "rasa") -> Iterator[dict]:
    """A real `rasa run` with the project's endpoints.yml, as a user deploys it.

    The action endpoint of ``endpoints`` points at ``action_url``; the tracker
    store is a new SQLite file in ``tmp`` unless ``env`` sets TRACKER_STORE_URL;
    ``credentials`` (default: credentials.yml as it is) is written to ``tmp``.
    Yields {"port", "url", "tracker", "log", "process"}; the server is stopped
    on exit. Fails the test if it does not answer in 180 s.
    """
    config = yaml.safe_load(endpoints.read_text())
    config["action_endpoint"]["url"] = action_url
    (tmp / f"{name}-endpoints.yml").write_text(yaml.safe_dump(config))
    creds = tmp / f"{name}-credentials.yml"
    creds.write_text(yaml.safe_dump(credentials) if credentials is not None
                     else (ROOT / "credentials.yml").read_text())
    env = {"TRACKER_STORE_URL": f"sqlite:///{tmp / 'tracker.db'}", **(env or {})}
    tracker = env["TRACKER_STORE_URL"]
    port = free_port()
    log_path = tmp / f"{name}.log"
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [RASA, "run", "-m", model, "-p", str(port), "--credentials", str(creds),
         "--endpoints", str(tmp / f"{name}-endpoints.yml"), *args],
        cwd=ROOT, env=rasa_env(**env),
        stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_until_up(f"{url}/webhooks/rest/", proc, log_path, seconds=180)
    try:
        yield {"port": port, "url": url, "tracker": tracker, "log": log_path, "process": proc}
    finally:
        stop(proc, log, seconds=30)


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory) -> str:
    """Trains the project with its own config into a temporary folder.

    ``KESTREL_TEST_MODEL=models/kestrel.tar.gz`` reuses an archive instead, to
    iterate on the end-to-end tests without a 6-minute training; CI never sets it.
    """
    from rasa.model_training import train

    if os.environ.get("KESTREL_TEST_MODEL"):
        return str(Path(os.environ["KESTREL_TEST_MODEL"]).resolve())
    out = tmp_path_factory.mktemp("models")
    os.environ["RASA_CACHE_DIRECTORY"] = str(tmp_path_factory.mktemp("rasa-cache"))
    cwd = os.getcwd()
    os.chdir(ROOT)  # config.yml names the generator corpus relative to the project
    try:
        result = train(domain="domain.yml", config="config.yml", training_files=["data"],
                       output=str(out), fixed_model_name="e2e")
    finally:
        os.chdir(cwd)
    assert result.code == 0, "rasa train failed"
    return result.model


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def run_action_server(tmp: Path) -> Iterator[dict]:
    """`rasa run actions` on a freshly seeded SQLite store database in ``tmp``.

    Yields {"url" (the webhook), "db_url", "process"}; the server is stopped on
    exit. Fails if it does not answer /health in 120 s.
    """
    db_url = f"sqlite:///{tmp / 'store.db'}"
    env = rasa_env(SUPPORT_DB_URL=db_url)
    subprocess.run([sys.executable, "-m", "actions.seed", "--url", db_url], check=True,
                   cwd=ROOT, env=env, capture_output=True)
    port = free_port()
    log = open(tmp / "actions.log", "w")
    proc = subprocess.Popen([RASA, "run", "actions", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/health", proc, tmp / "actions.log", seconds=120)
        yield {"url": f"{url}/webhook", "db_url": db_url, "process": proc}
    finally:
        stop(proc, log, seconds=20)


@pytest.fixture(scope="session")
def action_server(tmp_path_factory):
    """`rasa run actions` on a freshly seeded SQLite store database."""
    with run_action_server(tmp_path_factory.mktemp("actions")) as server:
        yield server


@pytest.fixture(scope="session")
def tracker_db(tmp_path_factory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('tracker') / 'tracker.db'}"


@pytest.fixture(scope="session")
def agent(trained_model, action_server, tracker_db):
    """The agent as `rasa run` builds it from endpoints.yml, on temporary databases."""
    from rasa.core.agent import Agent
    from rasa.core.utils import AvailableEndpoints
    from rasa.utils.endpoints import EndpointConfig

    from components.stores.tracker_store import URLSQLTrackerStore

    endpoints = AvailableEndpoints.read_endpoints(str(ROOT / "endpoints.yml"))
    return Agent.load(
        trained_model,
        generator=endpoints.nlg,
        tracker_store=URLSQLTrackerStore(url=tracker_db),
        action_endpoint=EndpointConfig(url=action_server["url"]),
    )


class Chat:
    """One conversation with the agent; ``say`` returns the bot's texts."""

    def __init__(self, agent):
        self.agent = agent
        self.sender = f"e2e-{uuid.uuid4().hex[:8]}"

    async def say(self, text: str) -> str:
        replies = await self.agent.handle_text(text, sender_id=self.sender)
        return " | ".join(r.get("text") or "" for r in replies)

    async def events(self):
        """Every stored event, earlier sessions' too (``retrieve`` gives the last session)."""
        tracker = await self.agent.tracker_store.retrieve_full_tracker(self.sender)
        return list(tracker.events)


